//! auth-service black-box tests: real servers on ephemeral ports, generated tonic clients.
//! One test binary (see zero-to-production): `helpers` starts servers, each module is a concern.

mod accounts;
mod concurrency;
mod connections;
mod crash;
mod defences;
mod floods;
mod forgery;
mod grpcurl;
mod helpers;
mod http;
mod log_flood;
mod overlap;
mod replicas;
mod scopes;
mod serving;
mod sessions;
mod throttle;
mod tls;
mod traces;
