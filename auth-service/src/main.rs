//! The `auth-service` binary: parses the command line and runs one subcommand.

use std::{io::BufRead, process::ExitCode};

use auth_service::{
    admin::{self, Admin},
    config::{AdminAction, ClientsAction, Command, KeysAction},
    error::Error,
    startup, Cli,
};
use bookstore_kit::{healthcheck, signal, telemetry, waiting};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::from_args();
    let _telemetry = telemetry::init(std::io::stderr(), "auth-service");
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("auth-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let name = "auth-service";
            if !waiting::until_database_reachable(&mut config.serve, name, startup::SERVICE_NAMES)
                .await?
            {
                return Ok(ExitCode::SUCCESS);
            }
            let app = startup::build(config).await?;
            app.run_until_stopped(signal::shutdown_signal()).await?;
        }
        Command::Admin {
            action: AdminAction::Create { username, .. },
        } => {
            let password = read_password_line()?;
            if let Err(Error::Invalid(violations)) = admin::check_new_admin(&username, &password) {
                for (field, problem) in violations.iter() {
                    eprintln!("{field}: {problem}");
                }
                return Ok(ExitCode::FAILURE);
            }
            let user = Admin::open(&config)
                .await?
                .create_admin(&username, password)
                .await?;
            println!("created admin {} ({})", user.username, user.id);
        }
        Command::Admin {
            action: AdminAction::Promote { username },
        } => {
            let admin = Admin::open(&config).await?;
            if !admin.promote(&username).await? {
                anyhow::bail!("no user named {username}");
            }
            println!("{username} is now an admin (from their next access token)");
        }
        Command::Admin {
            action: AdminAction::Disable { username },
        } => {
            if !Admin::open(&config)
                .await?
                .set_disabled(&username, true)
                .await?
            {
                anyhow::bail!("no user named {username}");
            }
            println!("{username} is disabled; every token they held is revoked");
        }
        Command::Admin {
            action: AdminAction::Enable { username },
        } => {
            if !Admin::open(&config)
                .await?
                .set_disabled(&username, false)
                .await?
            {
                anyhow::bail!("no user named {username}");
            }
            println!("{username} is enabled again");
        }
        Command::Keys {
            action: KeysAction::Rotate,
        } => {
            let kid = Admin::open(&config).await?.rotate_keys().await?;
            println!("new signing key {kid}");
        }
        Command::Clients { action } => return clients(&config, action).await,
        Command::Healthcheck { addr, tls } => {
            return Ok(healthcheck::healthcheck_exit(&addr, &tls).await);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `clients` subcommands. Bad input prints its violations and exits 1, changing nothing.
async fn clients(config: &auth_service::Config, action: ClientsAction) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(config).await?;
    let done = match action {
        ClientsAction::Create {
            name,
            scopes,
            secret_stdin,
        } => {
            let secret = secret_stdin.then(read_password_line).transpose()?;
            admin
                .create_client(&name, &scopes, secret)
                .await
                .map(|(client, secret)| {
                    println!("client_id: {}", client.id);
                    println!("client_secret: {secret}");
                    println!("scopes: {}", client.scopes);
                })
        }
        ClientsAction::Ensure {
            name,
            scopes,
            secret_file,
        } => {
            admin.ensure_client(&name, &scopes, &secret_file).await?;
            println!(
                "client {name} ready; its secret is in {}",
                secret_file.display()
            );
            Ok(())
        }
        ClientsAction::List => admin.list_clients().await.map(|clients| {
            for client in clients {
                println!("{}\t{}\t{}", client.name, client.id, client.scopes);
            }
        }),
        ClientsAction::Delete { name } => admin
            .delete_client(&name)
            .await
            .map(|()| println!("deleted {name}; its tokens are revoked")),
        ClientsAction::RotateSecret {
            name,
            grace,
            secret_stdin,
        } => {
            let secret = secret_stdin.then(read_password_line).transpose()?;
            admin
                .rotate_client_secret(&name, grace, secret)
                .await
                .map(|(client, secret)| {
                    println!("client_id: {}", client.id);
                    println!("client_secret: {secret}");
                })
        }
    };
    match done {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Error::Invalid(violations)) => {
            for (field, problem) in violations.iter() {
                eprintln!("{field}: {problem}");
            }
            Ok(ExitCode::FAILURE)
        }
        Err(Error::ClientNotFound) => anyhow::bail!("no client with that name"),
        Err(Error::ClientNameTaken) => anyhow::bail!("a client with that name exists"),
        Err(e) => Err(e.into()),
    }
}

/// One line from stdin, without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_string())
}
