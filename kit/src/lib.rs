//! What both Bookstore services run on, so each service crate holds only its own logic.
//!
//! Layout:
//! - [`app`]: the application builder: `Listeners::bind(config)` first, then
//!   `App::new(listeners, Service)`, `local_addr()`,
//!   `run_until_stopped(shutdown)`; one lifecycle for `main`, `bookstore up` and tests.
//! - [`server`]: the tonic server's limits, reflection, the per-call log line, the shutdown
//!   signal and the `healthcheck` client.
//! - [`connections`]: the connection cap, the first-request deadline, the open-file limit.
//! - [`health`]: grpc.health.v1 statuses of a service, set in one place.
//! - [`auth`]: the tonic interceptor that verifies bearer tokens (with
//!   `bookstore_contract::token`) before a request body is decoded, with a verified-token cache.
//! - [`storage`]: the database seam: URL → backend, connecting, migrations, secrets, error
//!   mapping, for SQLite and PostgreSQL.
//! - [`group_commit`]: on SQLite, writes that arrive together share one transaction and fsync.
//! - [`read`]: reads written once for both backends (SQL, arguments, one row mapping);
//!   [`readers`]: SQLite's read-only connections, on rusqlite, run from the calling task.
//! - [`waiting`]: health NOT_SERVING while the database is not reachable yet, with backoff.
//! - [`paging`]: page sizes, tamper-evident keyset page tokens, and finishing a page.
//! - [`client`]: the one place outgoing connections are configured.
//! - [`clock`]: the one time model, injectable in tests; protobuf timestamps.
//! - [`config`]: the serving flags both services share and how a command line is parsed.
//! - [`telemetry`]: log setup with the sink as a parameter; [`log_writer`]: lines gathered in
//!   memory and written on a timer, off the calls' path.
//!
//! A call to a protected RPC flows: [`server`]'s call-log layer → [`auth::Authenticator`]
//! (verifies the bearer token) → the service's handler, which finds the claims in the request
//! extensions and works on its `db.rs` through [`storage::Database`].

pub mod app;
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod connections;
pub mod cors;
pub mod group_commit;
pub mod grpc_web;
pub mod health;
pub mod http;
pub mod log_writer;
pub mod metrics;
pub mod paging;
pub mod read;
pub mod readers;
pub mod revocation;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod waiting;

pub use app::{stop_signal, App, Listeners, Service, Stopping};

/// Lower-case hex of `bytes` (digests stored or compared as text).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
