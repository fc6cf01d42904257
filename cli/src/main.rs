//! `bookstore`: runs the services (`up`) and calls them (every other command).
//!
//! Layout: `args` (the command line), `up` (both services in one process), `commands` (the
//! client commands), `session` (stored tokens and refresh), `client` (connections), `output`
//! (tables, proto3 JSON, prices, one-line errors).

mod args;
mod client;
mod commands;
mod output;
mod session;
mod tls;
mod up;
mod web;

use std::process::ExitCode;

use args::{Cli, Command};
use clap::Parser;
use client::Urls;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let urls = Urls {
        auth: cli.auth_url,
        book: cli.book_url,
        tls: bookstore_kit::config::ClientTls {
            ca_cert: cli.ca_cert,
            ..Default::default()
        },
    };
    let result = match cli.command {
        Command::Up(args) => {
            let _telemetry = bookstore_kit::telemetry::init(std::io::stderr(), "bookstore");
            up::run(args).await
        }
        command => {
            // With OTEL_EXPORTER_OTLP_ENDPOINT set, each command is one client span whose
            // context travels with its calls (`traceparent`), so the services' spans join it.
            let _telemetry = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").map(|_| {
                bookstore_kit::telemetry::init_with_level(std::io::stderr(), "bookstore", "warn")
            });
            let span = tracing::info_span!(
                "bookstore command",
                otel.name = command.name(),
                otel.kind = "client"
            );
            let run = async {
                match command {
                    Command::Register(credentials) => commands::register(&urls, credentials).await,
                    Command::Login(credentials) => commands::login(&urls, credentials).await,
                    Command::Logout => commands::logout(&urls).await,
                    Command::Whoami => commands::whoami(&urls).await,
                    Command::Token { scopes } => commands::token(&urls, &scopes).await,
                    Command::Books(command) => commands::books(&urls, command).await,
                    Command::Up(_) => unreachable!("handled above"),
                }
            };
            tracing::Instrument::instrument(run, span).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", output::error_line(&error));
            ExitCode::FAILURE
        }
    }
}
