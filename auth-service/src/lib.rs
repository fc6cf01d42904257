//! auth-service: registers users, checks passwords and issues tokens.
//!
//! Layout:
//! - [`config`]: flags and environment variables (`Cli`, `Config`).
//! - [`startup`]: builds the state and the kit's `App`; used by `main`, `bookstore up` and tests.
//! - [`admin`]: what the `admin` and `keys` subcommands do, on the database directly.
//! - [`service`]: thin gRPC handlers for AuthService and UserService.
//! - [`accounts`]: the work behind each RPC (register, login, refresh, logout, ...).
//! - [`password`]: password policy and argon2id hashing on threads of its own, one per core.
//! - [`throttle`]: failed-login and Register throttling, reserved atomically before the work;
//!   [`counter`]: its arithmetic (the rules of each layer), free of clock and database.
//! - [`clients`]: service clients (machine identities): secrets, rotation, IssueClientToken.
//! - [`caller`]: who is calling: the client address (behind `--trusted-proxies`), IPv6 per /64.
//! - [`fair`]: the hashing gate, fair between client addresses.
//! - [`revocation_feed`]: one reader of the revocations table per process (the feed), serving every
//!   WatchRevocations stream and this service's own copy for its interceptor.
//! - [`keys`]: Ed25519 signing keys (created on first start, rotation, publication).
//! - [`tokens`]: issuing access tokens and refresh tokens.
//! - [`db`]: every SQL statement.
//! - [`error`]: what a caller can be told, mapped to gRPC statuses in one place.
//!
//! A Login flows: `service::Handlers::login` validates → `accounts::Accounts::login` checks the
//! throttle, verifies the password (against a dummy hash for unknown users), records the
//! outcome, stores a new refresh-token family and signs an access token. UserService calls pass
//! the kit's `bookstore_kit::auth::Authenticator` interceptor first.

pub mod accounts;
pub mod admin;
pub mod caller;
pub mod clients;
pub mod config;
pub mod counter;
pub mod db;
pub mod error;
pub mod fair;
pub mod keys;
pub mod password;
pub mod revocation_feed;
pub mod service;
pub mod startup;
pub mod throttle;
pub mod tokens;

pub use config::{Cli, Config};
pub use startup::build;
