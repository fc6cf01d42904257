//! Outgoing connections: the one place an `Endpoint` is configured, for book-service's calls to
//! auth-service, the `healthcheck` subcommands and the CLI. TLS settings belong here too when
//! they come.

use std::time::Duration;

use tonic::transport::Endpoint;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// HTTP/2 PING interval on idle connections, and how long the answer may take: a dead peer
/// is noticed (and a long-lived stream fails over) within seconds, not at the TCP timeout.
const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(5));

/// An endpoint for `url` (`http://host:port`, or a bare `host:port`). Add `.timeout(...)` for
/// unary calls; leave it off for streams, which would otherwise be cut at that timeout.
pub fn endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    Ok(Endpoint::from_shared(url)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE.0)
        .keep_alive_timeout(KEEPALIVE.1)
        .keep_alive_while_idle(true))
}
