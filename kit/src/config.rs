//! Flags every service takes, defined once, and how a service's command line is parsed.
//!
//! Each flag also reads an environment variable named after the service and the flag
//! (`AUTH_LISTEN`, `BOOK_DATABASE_URL`, ...). The names are not written on each field: the
//! service's command is built with [`command`], which gives every value-taking flag of the
//! top-level command its `PREFIX_FLAG` variable and the service's defaults. That keeps the shared
//! flags ([`ServeConfig`]) in one place while each service keeps its own variable names, and lets
//! tests build a config from the same defaults without reading the environment at all.

use std::{net::SocketAddr, path::PathBuf};

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches};

use crate::tls::ServerTls;

/// How a service serves: where it listens and what it stores in. Flattened into each
/// service's `Config`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address of the gRPC listener (`--listen`, `<PREFIX>_LISTEN`). Port 0 picks a free port;
    /// `App::local_addr` tells which.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Where the service keeps its data (`--database-url`, `<PREFIX>_DATABASE_URL`):
    /// `sqlite://FILE`, created if missing.
    #[arg(long)]
    pub database_url: String,
    /// Address of the HTTP side door with `/metrics` and `/healthz` (`--http-listen`,
    /// `<PREFIX>_HTTP_LISTEN`; off by default).
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// PEM certificate chain: serve gRPC over TLS (`--tls-cert`, `<PREFIX>_TLS_CERT`; needs
    /// `--tls-key`; reloaded when the file changes).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert` (`--tls-key`, `<PREFIX>_TLS_KEY`).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: require a client certificate signed by one of them (mTLS)
    /// (`--tls-client-ca`, `<PREFIX>_TLS_CLIENT_CA`; needs `--tls-cert`).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Most connections open at once, gRPC and HTTP side door together; past that a new
    /// connection is closed at once (`--max-connections`, `<PREFIX>_MAX_CONNECTIONS`, default
    /// 10000). Each is a file descriptor: the open-file soft limit is raised to the hard limit
    /// at start.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Origins whose web pages may call this service with gRPC-Web (`--cors-origins`,
    /// `<PREFIX>_CORS_ORIGINS`): comma-separated exact origins such as
    /// `http://127.0.0.1:8080`. None by default, so browsers are refused; gRPC-Web itself is
    /// always served, to any client that is not a browser.
    #[arg(long, value_delimiter = ',', value_parser = crate::cors::parse_origin)]
    pub cors_origins: Vec<String>,
}

impl ServeConfig {
    /// The listener's TLS settings, if it serves TLS.
    pub fn tls(&self) -> Option<ServerTls> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        }
    }
}

/// How to reach a TLS peer: the CA to trust and, for mTLS, our certificate. As flags
/// (`--ca-cert`, `--client-cert`, `--client-key`) on the `healthcheck` subcommands; book-service
/// fills it from its `--auth-*` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ClientTls {
    /// PEM CA certificates that sign the server's certificate, for `https://` addresses (else
    /// the public web roots).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// PEM certificate to present (mTLS), with `--client-key`.
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `--client-cert`.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// Where the environment comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    /// Flags fall back to `PREFIX_FLAG` variables, then to the defaults (binaries).
    Read,
    /// Flags fall back to the defaults only (tests: nothing from the developer's shell).
    Ignore,
}

/// `C`'s command with `defaults` (flag id, value) and, with [`Env::Read`], an environment
/// variable `PREFIX_FLAG_ID` for every value-taking top-level flag.
pub fn command<C: CommandFactory>(
    prefix: &str,
    defaults: &[(&str, &'static str)],
    env: Env,
) -> clap::Command {
    let mut command = C::command();
    for (id, value) in defaults {
        command = command.mut_arg(*id, |arg| arg.default_value(*value).required(false));
    }
    if env == Env::Read {
        command = command.mut_args(|arg| {
            if arg.get_action().takes_values() && !arg.is_positional() {
                let name = format!("{prefix}_{}", arg.get_id().as_str().to_uppercase());
                arg.env(clap::builder::Str::from(name))
            } else {
                arg
            }
        });
    }
    command
}

/// Parses `matches` of a [`command`] into `C`, exiting with clap's message on a bad value (only
/// binaries call this with real input).
pub fn from_matches<C: FromArgMatches>(matches: &ArgMatches) -> C {
    C::from_arg_matches(matches).unwrap_or_else(|e| e.exit())
}

/// `C` from the command line and environment of this process.
pub fn from_args<C: CommandFactory + FromArgMatches>(
    prefix: &str,
    defaults: &[(&str, &'static str)],
) -> C {
    from_matches(&command::<C>(prefix, defaults, Env::Read).get_matches())
}

/// `C` built from `defaults` alone, as if the binary had been started with no flags, reading
/// the environment only with [`Env::Read`].
pub fn from_defaults<C: CommandFactory + FromArgMatches>(
    prefix: &str,
    defaults: &[(&str, &'static str)],
    env: Env,
) -> C {
    let matches = command::<C>(prefix, defaults, env)
        .no_binary_name(true)
        .try_get_matches_from(std::iter::empty::<String>())
        .unwrap_or_else(|e| e.exit());
    from_matches(&matches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Demo {
        #[command(flatten)]
        serve: ServeConfig,
        #[arg(long)]
        issuer: String,
    }

    const DEFAULTS: &[(&str, &str)] = &[
        ("listen", "127.0.0.1:1"),
        ("database_url", "sqlite://demo.db"),
        ("issuer", "me"),
        ("max_connections", "10"),
    ];

    #[test]
    fn every_value_flag_gets_a_prefixed_environment_variable() {
        let command = command::<Demo>("DEMO", DEFAULTS, Env::Read);
        let mut envs: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        envs.sort();
        assert_eq!(
            envs,
            [
                "DEMO_CORS_ORIGINS",
                "DEMO_DATABASE_URL",
                "DEMO_HTTP_LISTEN",
                "DEMO_ISSUER",
                "DEMO_LISTEN",
                "DEMO_MAX_CONNECTIONS",
                "DEMO_TLS_CERT",
                "DEMO_TLS_CLIENT_CA",
                "DEMO_TLS_KEY"
            ]
        );
    }

    #[test]
    fn defaults_without_the_environment_read_no_variable() {
        let command = command::<Demo>("DEMO", DEFAULTS, Env::Ignore);
        assert!(command.get_arguments().all(|a| a.get_env().is_none()));
        let demo: Demo = from_defaults("DEMO", DEFAULTS, Env::Ignore);
        assert_eq!(demo.serve.listen.port(), 1);
        assert_eq!(demo.serve.database_url, "sqlite://demo.db");
        assert_eq!(demo.issuer, "me");
    }
}
