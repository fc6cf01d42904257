//! Tests and benchmarks of the two services together. This crate has no code of its own: its
//! `tests/api` binary starts the real auth-service and book-service on ephemeral ports and talks
//! to them with generated tonic clients (book CRUD, paging, races, crashes, key rotation,
//! forgery, the end-to-end flow); `benches/load.rs` is the load benchmark.
//!
//! It is the only crate that depends on both services, so neither service depends on the other.
