//! Tests, benchmarks and the soak of the two services together. Its `tests/api` binary starts
//! the real auth-service and book-service on ephemeral ports and talks to them with generated
//! tonic clients (book CRUD, paging, races, crashes, key rotation, forgery, the end-to-end flow);
//! `benches/` holds the benchmarks (BENCHMARKS.md); `src/bin/soak` runs five service processes
//! under injected faults and checks the history of every call (RELIABILITY.md).
//!
//! It is the only crate that depends on both services, so neither service depends on the other.
