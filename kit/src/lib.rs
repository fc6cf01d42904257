//! What both Bookstore services run on, so each service crate holds only its own logic.
//!
//! Layout, one job per module:
//! - [`app`]: the application builder: `Listeners::bind(config)` first, then
//!   `App::new(listeners, Service)`, `local_addr()`,
//!   `run_until_stopped(shutdown)`; one lifecycle for `main`, `bookstore up` and tests.
//! - Serving: [`server`] (the tonic server's limits, reflection, the layers around every call),
//!   [`call_log`] (one log line and the metrics of each call), [`grpc_web`] and [`cors`]
//!   (gRPC-Web beside gRPC, browsers from `--cors-origins`), [`connections`] (the connection
//!   cap, the first-request deadline, the open-file limit), [`health`] (grpc.health.v1
//!   statuses, set in one place), [`http`] (the HTTP side door), [`tls`], [`signal`] (SIGTERM,
//!   Ctrl-C) and [`waiting`] (NOT_SERVING while the database is not reachable yet).
//! - Tokens: [`auth`] (the tonic interceptor that verifies bearer tokens with
//!   `bookstore_contract::token` before a request body is decoded) and [`revoked`] (the revoked
//!   tokens every verifier holds, fed by auth-service's stream).
//! - [`storage`]: the one boundary to the database: URL → backend, connecting, migrations,
//!   secrets, error classification, the SQLite group commit, reads written once for both
//!   backends (`storage::read`, with the `columns!` row mappings).
//! - Outgoing calls: [`channel`] (the one place an outgoing connection is configured) and
//!   [`healthcheck`] (the client of the `healthcheck` subcommands).
//! - [`paging`]: page sizes, tamper-evident keyset page tokens, and finishing a page.
//! - [`clock`]: the one time model, injectable in tests; protobuf timestamps.
//! - [`config`]: the serving flags both services share and how a command line is parsed.
//! - [`telemetry`], [`metrics`]: log and trace setup with the sink as a parameter (and
//!   [`log_writer`]: lines gathered in memory and written on a timer), Prometheus metrics.
//!
//! A call to a protected RPC flows: [`cors`] → [`grpc_web`] (a gRPC-Web call becomes gRPC) →
//! [`call_log`] → [`auth::Authenticator`] (verifies the bearer token) → the service's handler,
//! which finds the claims in the request extensions and works on its `db.rs` through
//! [`storage::Database`].

pub mod app;
pub mod auth;
pub mod call_log;
pub mod channel;
pub mod clock;
pub mod config;
pub mod connections;
pub mod cors;
pub mod grpc_web;
pub mod health;
pub mod healthcheck;
pub mod http;
pub mod log_writer;
pub mod metrics;
pub mod paging;
pub mod revoked;
pub mod server;
pub mod signal;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod waiting;

pub use app::{stop_signal, App, Listeners, Service, Stopping};

/// Lower-case hex of `bytes` (digests stored or compared as text).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
