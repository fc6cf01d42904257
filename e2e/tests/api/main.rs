//! book-service black-box tests: the real auth-service and the real book-service on ephemeral
//! ports, generated tonic clients. One test binary; `helpers` starts the servers.

mod concurrency;
mod crash;
mod crud;
mod disk_full;
mod end_to_end;
mod forgery;
mod helpers;
mod keys;
mod limits;
mod paging;
mod postgres;
mod replicas;
mod revocation;
mod scopes;
mod tls;
mod traces;
