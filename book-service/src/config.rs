//! Command line and environment: every flag also reads a `BOOK_*` environment variable
//! (docs/operations.md, "Configuration"). The serving flags shared with auth-service come from
//! `bookstore_kit::config`.

use std::path::PathBuf;

use bookstore_kit::{
    clock::Clock,
    config::{self, ClientTls, Env, ServeConfig},
};
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
        /// host:port of the service, or an `https://` URL for a TLS listener.
        #[arg(long, default_value = "127.0.0.1:50052")]
        addr: String,
        /// `--ca-cert`, `--client-cert`, `--client-key` for an `https://` address.
        #[command(flatten)]
        tls: ClientTls,
    },
}

/// Environment variables are `BOOK_` and the flag's name (`--auth-url` reads `BOOK_AUTH_URL`).
const ENV_PREFIX: &str = "BOOK";

/// Every default, by flag id: what a fresh checkout runs with.
const DEFAULTS: &[(&str, &str)] = &[
    ("listen", "127.0.0.1:50052"),
    ("database_url", "sqlite://books.db"),
    ("auth_url", "http://127.0.0.1:50051"),
    ("issuer", "bookstore-auth"),
    ("audience", "bookstore"),
    ("max_books_per_user", "100000"),
    ("max_connections", "10000"),
];

impl Cli {
    /// The command line and `BOOK_*` environment of this process (`main`); exits with clap's
    /// message on a bad value.
    pub fn from_args() -> Cli {
        config::from_args(ENV_PREFIX, DEFAULTS)
    }
}

/// How book-service runs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// `--listen` (`BOOK_LISTEN`, default 127.0.0.1:50052) and `--database-url`
    /// (`BOOK_DATABASE_URL`, default sqlite://books.db, created if missing).
    #[command(flatten)]
    pub serve: ServeConfig,
    /// auth-service, where the public keys come from (`--auth-url`, `BOOK_AUTH_URL`,
    /// default http://127.0.0.1:50051).
    #[arg(long)]
    pub auth_url: String,
    /// PEM CA certificates that sign auth-service's certificate, for an `https://` auth URL
    /// (`--auth-ca-cert`, `BOOK_AUTH_CA_CERT`; else the public web roots).
    #[arg(long)]
    pub auth_ca_cert: Option<PathBuf>,
    /// PEM certificate book-service presents to auth-service (mTLS) (`--auth-client-cert`,
    /// `BOOK_AUTH_CLIENT_CERT`; needs `--auth-client-key`).
    #[arg(long, requires = "auth_client_key")]
    pub auth_client_cert: Option<PathBuf>,
    /// PEM private key of `--auth-client-cert` (`--auth-client-key`, `BOOK_AUTH_CLIENT_KEY`).
    #[arg(long, requires = "auth_client_cert")]
    pub auth_client_key: Option<PathBuf>,
    /// The service client book-service authenticates as for the revocation stream (its id or
    /// name; it needs the `revocations:watch` scope) (`--auth-client-id`,
    /// `BOOK_AUTH_CLIENT_ID`; not needed with an mTLS client certificate).
    #[arg(long, requires = "auth_client_secret_file")]
    pub auth_client_id: Option<String>,
    /// File holding that client's secret on its first line (`--auth-client-secret-file`,
    /// `BOOK_AUTH_CLIENT_SECRET_FILE`); read at start.
    #[arg(long, requires = "auth_client_id")]
    pub auth_client_secret_file: Option<PathBuf>,
    /// Required `iss` of access tokens (`--issuer`, `BOOK_ISSUER`, default bookstore-auth).
    #[arg(long)]
    pub issuer: String,
    /// Required `aud` of access tokens (`--audience`, `BOOK_AUDIENCE`, default bookstore).
    #[arg(long)]
    pub audience: String,
    /// Most books one user may own; CreateBook beyond is RESOURCE_EXHAUSTED (`QUOTA_EXCEEDED`)
    /// (`--max-books-per-user`, `BOOK_MAX_BOOKS_PER_USER`, default 100000).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_books_per_user: i64,
    /// Source of "now" for book times; the system clock except in tests.
    #[arg(skip)]
    pub clock: Clock,
}

impl Config {
    /// How book-service reaches auth-service over TLS.
    pub fn auth_tls(&self) -> ClientTls {
        ClientTls {
            ca_cert: self.auth_ca_cert.clone(),
            client_cert: self.auth_client_cert.clone(),
            client_key: self.auth_client_key.clone(),
        }
    }

    /// The defaults alone, reading no environment variable: what tests start from.
    pub fn defaults() -> Self {
        config::from_defaults::<Cli>(ENV_PREFIX, DEFAULTS, Env::Ignore).config
    }

    /// The defaults overridden by `BOOK_*` variables: what `bookstore up` starts from, so it
    /// honours the same environment as the binary.
    pub fn from_env() -> Self {
        config::from_defaults::<Cli>(ENV_PREFIX, DEFAULTS, Env::Read).config
    }
}
