//! The `book-service` binary: parses the command line and runs one subcommand.

use std::process::ExitCode;

use book_service::{config::Command, startup, Cli};
use bookstore_common::{server, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = cli.config;
            let run = async {
                let listener = tokio::net::TcpListener::bind(config.listen).await?;
                startup::serve(config, listener, server::shutdown_signal()).await
            };
            match run.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("book-service: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Healthcheck { addr } => server::healthcheck_exit(&addr).await,
    }
}
