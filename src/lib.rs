//! What both Bookstore services share, and nothing else.
//!
//! Layout:
//! - [`proto`]: the tonic/prost code generated from `proto/` by the root `build.rs`, and
//!   [`FILE_DESCRIPTOR_SET`], which server reflection serves.
//! - [`token`]: access-token claims, the public key set and the one token verifier
//!   (EdDSA only, strict header and claim checks).
//! - [`auth`]: the tonic interceptor that runs the verifier before a request body is decoded and
//!   puts the [`token::Claims`] into the request extensions.
//! - [`error`]: builders for `tonic::Status` with google.rpc rich details, so every error of
//!   both services has the same shape.
//! - [`paging`]: page sizes and tamper-evident keyset page tokens.
//! - [`server`]: serving plumbing (HTTP/2 limits, health, reflection, per-call log line,
//!   graceful shutdown) and the `healthcheck` client.
//! - [`sqlite`]: the SQLite setup (WAL, `synchronous=FULL`, one writer) and database error mapping.
//! - [`telemetry`]: log setup from `RUST_LOG` and `LOG_FORMAT`.
//!
//! A request to a protected RPC flows: [`server`]'s call log layer → [`auth::Authenticator`]
//! (verifies the bearer token) → the service's handler, which finds the claims in the
//! request extensions.

pub mod auth;
pub mod error;
#[cfg(feature = "test-support")]
pub mod forgery;
pub mod paging;
pub mod server;
pub mod sqlite;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod token;

/// Generated protobuf bindings (messages, clients and servers).
pub mod proto {
    /// `bookstore.auth.v1`: AuthService and UserService.
    pub mod auth {
        tonic::include_proto!("bookstore.auth.v1");
    }
    /// `bookstore.book.v1`: BookService.
    pub mod book {
        tonic::include_proto!("bookstore.book.v1");
    }
}

/// Encoded `FileDescriptorSet` of every file under `proto/` and its imports, with comments,
/// for server reflection (so `grpcurl describe` works without .proto files).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bookstore_descriptor");

/// Seconds since the Unix epoch: the time unit of every token claim and stored timestamp.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Lower-case hex of `bytes` (digests stored or compared as text).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Converts Unix seconds to a protobuf `Timestamp`.
pub fn timestamp(unix_seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix_seconds,
        nanos: 0,
    }
}
