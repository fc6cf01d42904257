//! The `book-service` binary: parses the command line and runs one subcommand.

use std::process::ExitCode;

use book_service::{config::Command, startup, Cli};
use bookstore_kit::{healthcheck, signal, telemetry, waiting};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::from_args();
    let _telemetry = telemetry::init(std::io::stderr(), "book-service");
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let run = async {
                let mut config = cli.config;
                let name = "book-service";
                let serve = &mut config.serve;
                if !waiting::until_database_reachable(serve, name, startup::SERVICE_NAMES).await? {
                    return Ok(());
                }
                let app = startup::build(config).await?;
                app.run_until_stopped(signal::shutdown_signal()).await
            };
            match run.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("book-service: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Healthcheck { addr, tls } => healthcheck::healthcheck_exit(&addr, &tls).await,
    }
}
