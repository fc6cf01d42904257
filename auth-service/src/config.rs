//! Command line and environment: every flag also reads an `AUTH_*` environment variable
//! (docs/operations.md, "Configuration"). The serving flags shared with book-service come from
//! `bookstore_kit::config`.

use std::time::Duration;

use ipnet::IpNet;

use bookstore_kit::{
    clock::Clock,
    config::{self, ClientTls, Env, ServeConfig},
};
use clap::{Args, Parser, Subcommand};

use crate::caller;

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
    /// Manage service clients (machine identities that call IssueClientToken).
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Exit 0 when the service at --addr reports SERVING on grpc.health.v1, 1 otherwise.
    Healthcheck {
        /// host:port of the service, or an `https://` URL for a TLS listener.
        #[arg(long, default_value = "127.0.0.1:50051")]
        addr: String,
        /// `--ca-cert`, `--client-cert`, `--client-key` for an `https://` address.
        #[command(flatten)]
        tls: ClientTls,
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
    /// Disable a user: they cannot log in or refresh, and every token they hold is revoked
    /// (running services refuse it within about a second).
    Disable {
        /// Username to disable.
        username: String,
    },
    /// Enable a disabled user again (they log in anew; revoked tokens stay revoked).
    Enable {
        /// Username to enable.
        username: String,
    },
}

/// `clients` subcommands. Secrets are printed once and stored only as a hash.
#[derive(Debug, Subcommand)]
pub enum ClientsAction {
    /// Register a client; prints `client_id: ID` and `client_secret: SECRET` (shown only now).
    Create {
        /// Its name (3-64 characters of a-z, 0-9, '_', '.', '-'); IssueClientToken accepts it
        /// in place of the id.
        name: String,
        /// The scopes it may hold, space-separated: books:read books:write books:admin
        /// users:read revocations:watch.
        #[arg(long, required = true)]
        scopes: String,
        /// Take the secret from one line of stdin (at least 32 characters) instead of making
        /// one.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Make sure a client exists and its secret is the one in `--secret-file` (a file that
    /// holds one is taken as the secret; a missing one gets a fresh secret, written 0600): for
    /// provisioning, as the compose files and the Kubernetes manifests do.
    Ensure {
        /// The client's name.
        name: String,
        /// The scopes it may hold, if it has to be created.
        #[arg(long, required = true)]
        scopes: String,
        /// Where its secret is kept.
        #[arg(long, required = true)]
        secret_file: std::path::PathBuf,
    },
    /// Print each client's name, id and scopes (never a secret).
    List,
    /// Delete a client; every token it holds is revoked (felt within about a second).
    Delete {
        /// The client's name.
        name: String,
    },
    /// Give a client a new secret (printed once); the old one keeps working for `--grace`,
    /// then its tokens are revoked.
    RotateSecret {
        /// The client's name.
        name: String,
        /// How long the old secret keeps working (e.g. `0s`, `2s`, `1h`).
        #[arg(long, default_value = "1h", value_parser = parse_duration_or_zero)]
        grace: Duration,
        /// Take the new secret from one line of stdin instead of making one.
        #[arg(long)]
        secret_stdin: bool,
    },
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Add a new active signing key; the old one stays published until its tokens expire.
    /// A running auth-service picks the new key up within seconds.
    Rotate,
}

/// Environment variables are `AUTH_` and the flag's name (`--access-token-ttl` reads
/// `AUTH_ACCESS_TOKEN_TTL`).
const ENV_PREFIX: &str = "AUTH";

/// Every default, by flag id: what a fresh checkout runs with.
const DEFAULTS: &[(&str, &str)] = &[
    ("listen", "127.0.0.1:50051"),
    ("database_url", "sqlite://auth.db"),
    ("issuer", "bookstore-auth"),
    ("audience", "bookstore"),
    ("access_token_ttl", "15m"),
    ("refresh_token_ttl", "30d"),
    ("register_limit", "100"),
    ("max_connections", "10000"),
];

impl Cli {
    /// The command line and `AUTH_*` environment of this process (`main`); exits with clap's
    /// message on a bad value.
    pub fn from_args() -> Cli {
        config::from_args(ENV_PREFIX, DEFAULTS)
    }
}

/// How auth-service runs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// `--listen` (`AUTH_LISTEN`, default 127.0.0.1:50051) and `--database-url`
    /// (`AUTH_DATABASE_URL`, default sqlite://auth.db, created if missing).
    #[command(flatten)]
    pub serve: ServeConfig,
    /// `iss` of issued tokens (`--issuer`, `AUTH_ISSUER`, default bookstore-auth).
    #[arg(long)]
    pub issuer: String,
    /// `aud` of issued tokens (`--audience`, `AUTH_AUDIENCE`, default bookstore).
    #[arg(long)]
    pub audience: String,
    /// Access-token lifetime, e.g. 15m (`--access-token-ttl`, `AUTH_ACCESS_TOKEN_TTL`, default 15m).
    #[arg(long, value_parser = parse_duration)]
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime, absolute from login (`--refresh-token-ttl`,
    /// `AUTH_REFRESH_TOKEN_TTL`, default 30d).
    #[arg(long, value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,
    /// Proxies whose `x-forwarded-for` names the client, as comma-separated CIDRs or addresses
    /// (`--trusted-proxies`, `AUTH_TRUSTED_PROXIES`, default none: the header is ignored).
    #[arg(long, value_delimiter = ',', value_parser = caller::parse_network)]
    pub trusted_proxies: Vec<IpNet>,
    /// Register calls allowed per client address per hour (`--register-limit`,
    /// `AUTH_REGISTER_LIMIT`, default 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub register_limit: u32,
    /// Source of "now" for throttling and token times; the system clock except in tests.
    #[arg(skip)]
    pub clock: Clock,
}

impl Config {
    /// The defaults alone, reading no environment variable: what tests start from.
    pub fn defaults() -> Self {
        config::from_defaults::<Cli>(ENV_PREFIX, DEFAULTS, Env::Ignore).config
    }

    /// The defaults overridden by `AUTH_*` variables: what `bookstore up` starts from, so it
    /// honours the same environment as the binary.
    pub fn from_env() -> Self {
        config::from_defaults::<Cli>(ENV_PREFIX, DEFAULTS, Env::Read).config
    }
}

/// A duration such as `0s`, `2s` or `1h` (zero allowed).
fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}
