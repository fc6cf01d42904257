//! The `auth-service` binary: parses the command line and runs one subcommand.

use std::{io::BufRead, process::ExitCode};

use auth_service::{
    accounts::{check_new_account, normalize_username},
    config::{AdminAction, Command, KeysAction},
    keys, startup, Cli,
};
use bookstore_common::{error::Violations, server, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("auth-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            startup::serve(config, listener, server::shutdown_signal()).await?;
        }
        Command::Admin {
            action: AdminAction::Create { username, .. },
        } => {
            let username = normalize_username(&username);
            let password = read_password_line()?;
            let mut violations = Violations::default();
            check_new_account(
                &mut violations,
                Some(("username", &username)),
                ("password", &password),
            );
            if !violations.is_empty() {
                for (field, problem) in violations.iter() {
                    eprintln!("{field}: {problem}");
                }
                return Ok(ExitCode::FAILURE);
            }
            let accounts = startup::accounts(&config).await?;
            let user = accounts.register(username, password, true).await?;
            println!("created admin {} ({})", user.username, user.id);
        }
        Command::Admin {
            action: AdminAction::Promote { username },
        } => {
            let accounts = startup::accounts(&config).await?;
            let username = normalize_username(&username);
            if !accounts.db.promote(&username).await? {
                anyhow::bail!("no user named {username}");
            }
            println!("{username} is now an admin (from their next access token)");
        }
        Command::Keys {
            action: KeysAction::Rotate,
        } => {
            let accounts = startup::accounts(&config).await?;
            let kid = keys::rotate(&accounts.db, config.clock.now()).await?;
            println!("new signing key {kid}");
        }
        Command::Healthcheck { addr } => {
            return Ok(server::healthcheck_exit(&addr).await);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line from stdin, without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_string())
}
