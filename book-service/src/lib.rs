//! book-service: each user's books (on SQLite or PostgreSQL), behind a local token check.
//!
//! Layout:
//! - [`config`]: flags and environment variables.
//! - [`startup`]: builds the state and the kit's `App`; used by `main`, `bookstore up` and tests.
//! - [`jwks`]: fetches and refreshes auth-service's public keys.
//! - [`credentials`]: book-service's service client, whose token opens the revocation stream.
//! - [`service`]: thin gRPC handlers for BookService.
//! - [`books`]: the work behind each RPC (idempotent create, paging, etag checks).
//! - [`validate`]: book field rules; [`isbn`]: ISBN-10/13 check digits and conversion.
//! - [`total_sizes`]: ListBooks' `total_size` per filter, kept between pages.
//! - [`db`]: every SQL statement.
//! - [`error`]: what a caller can be told, mapped to gRPC statuses in one place.
//!
//! A call flows: the kit's call-log layer → `bookstore_kit::auth::Authenticator` (verifies
//! the bearer token with the cached public keys, before the body is decoded) →
//! `service::Handlers` (validation) → `books::Books` → `db::Db`.

pub mod books;
pub mod config;
pub mod credentials;
pub mod db;
pub mod error;
pub mod isbn;
pub mod jwks;
pub mod service;
pub mod startup;
pub mod total_sizes;
pub mod validate;

pub use config::{Cli, Config};
pub use startup::build;
