//! Command line and environment: every flag also reads an environment variable (SPEC section 2).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clap::{Args, Parser, Subcommand};

/// auth-service: registers users, checks passwords and issues Ed25519 JWT access tokens and
/// rotating refresh tokens. Logs: level from RUST_LOG, format from LOG_FORMAT=json|pretty.
#[derive(Debug, Parser)]
#[command(name = "auth-service", version)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` (also accepted without the subcommand).
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands beside the default `serve`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Manage accounts directly in the database.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Exit 0 when the service at --addr reports SERVING on grpc.health.v1, 1 otherwise.
    Healthcheck {
        /// host:port of the service.
        #[arg(long, default_value = "127.0.0.1:50051")]
        addr: String,
    },
}

/// `admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an admin user; the password is read as one line from stdin, never from argv.
    Create {
        /// Username of the new admin.
        username: String,
        /// Read the password from stdin (required: passwords are never taken from argv).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Make an existing user an admin (takes effect in their next access token).
    Promote {
        /// Username to promote.
        username: String,
    },
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Add a new active signing key; the old one stays published until its tokens expire.
    /// A running auth-service picks the new key up within seconds.
    Rotate,
}

/// How auth-service runs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (`--listen`, `AUTH_LISTEN`, default 127.0.0.1:50051).
    #[arg(long, env = "AUTH_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// SQLite database, created if missing (`--database-url`, `AUTH_DATABASE_URL`,
    /// default sqlite://auth.db).
    #[arg(long, env = "AUTH_DATABASE_URL", default_value = "sqlite://auth.db")]
    pub database_url: String,
    /// `iss` of issued tokens (`--issuer`, `AUTH_ISSUER`, default bookstore-auth).
    #[arg(long, env = "AUTH_ISSUER", default_value = "bookstore-auth")]
    pub issuer: String,
    /// `aud` of issued tokens (`--audience`, `AUTH_AUDIENCE`, default bookstore).
    #[arg(long, env = "AUTH_AUDIENCE", default_value = "bookstore")]
    pub audience: String,
    /// Access-token lifetime, e.g. 15m (`--access-token-ttl`, `AUTH_ACCESS_TOKEN_TTL`, default 15m).
    #[arg(long, env = "AUTH_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime, absolute from login (`--refresh-token-ttl`,
    /// `AUTH_REFRESH_TOKEN_TTL`, default 30d).
    #[arg(long, env = "AUTH_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,
    /// Source of "now" for throttling and token times; the system clock except in tests.
    #[arg(skip)]
    pub clock: Clock,
}

impl Config {
    /// Defaults with another database: what tests and `bookstore up` start from.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        let mut config = Cli::parse_from(["auth-service"]).config;
        config.database_url = database_url.into();
        config
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// Unix seconds "now". Injectable so throttling and expiry are tested without sleeping.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// A clock that reads `f`.
    pub fn new(f: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    /// The current time in Unix seconds.
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new(bookstore_common::unix_now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
