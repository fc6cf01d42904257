//! Command line and environment: every flag also reads an environment variable (SPEC section 2).

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// book-service: each user's books, behind a token check with auth-service's public keys.
/// Logs: level from RUST_LOG, format from LOG_FORMAT=json|pretty.
#[derive(Debug, Parser)]
#[command(name = "book-service", version)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` (also accepted without the subcommand).
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Exit 0 when the service at --addr reports SERVING on grpc.health.v1, 1 otherwise.
    Healthcheck {
        /// host:port of the service.
        #[arg(long, default_value = "127.0.0.1:50052")]
        addr: String,
    },
}

/// How book-service runs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (`--listen`, `BOOK_LISTEN`, default 127.0.0.1:50052).
    #[arg(long, env = "BOOK_LISTEN", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,
    /// SQLite database, created if missing (`--database-url`, `BOOK_DATABASE_URL`,
    /// default sqlite://books.db).
    #[arg(long, env = "BOOK_DATABASE_URL", default_value = "sqlite://books.db")]
    pub database_url: String,
    /// auth-service, where the public keys come from (`--auth-url`, `BOOK_AUTH_URL`,
    /// default http://127.0.0.1:50051).
    #[arg(long, env = "BOOK_AUTH_URL", default_value = "http://127.0.0.1:50051")]
    pub auth_url: String,
    /// Required `iss` of access tokens (`--issuer`, `BOOK_ISSUER`, default bookstore-auth).
    #[arg(long, env = "BOOK_ISSUER", default_value = "bookstore-auth")]
    pub issuer: String,
    /// Required `aud` of access tokens (`--audience`, `BOOK_AUDIENCE`, default bookstore).
    #[arg(long, env = "BOOK_AUDIENCE", default_value = "bookstore")]
    pub audience: String,
}

impl Config {
    /// Defaults with another database and auth-service: what tests and `bookstore up` start from.
    pub fn new(database_url: impl Into<String>, auth_url: impl Into<String>) -> Self {
        let mut config = Cli::parse_from(["book-service"]).config;
        config.database_url = database_url.into();
        config.auth_url = auth_url.into();
        config
    }
}
