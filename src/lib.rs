//! The contract between Bookstore's services and everyone who calls them, and nothing else: no
//! storage, no serving, no tests helpers (those live in `bookstore-kit` and `bookstore-testkit`).
//!
//! Layout:
//! - [`proto`]: the tonic/prost code generated from `proto/` by the root `build.rs`, and
//!   [`FILE_DESCRIPTOR_SET`], which server reflection serves.
//! - [`token`]: access-token claims, the public key set and the one token verifier
//!   (EdDSA only, strict header and claim checks), plus the signer auth-service uses.
//! - [`scope`]: the scopes a token may carry, what each RPC needs, and the refusal.
//! - [`error`]: the error vocabulary: `tonic::Status` builders with google.rpc rich details, so
//!   every error of both services has the same shape.
//!
//! The CLI and the generated-client tests depend on this crate alone for the wire types.

pub mod error;
pub mod scope;
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
