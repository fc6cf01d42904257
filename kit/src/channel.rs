//! Outgoing connections: the one place an `Endpoint` is configured, for book-service's calls to
//! auth-service, the `healthcheck` subcommands and the CLI, with TLS for `https://` URLs.

use std::{path::Path, time::Duration};

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::config::ClientTls;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// HTTP/2 PING interval on idle connections, and how long the answer may take: a dead peer
/// is noticed (and a long-lived stream fails over) within seconds, not at the TCP timeout.
const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(5));

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A tonic interceptor that puts the current span's W3C trace context (`traceparent`) into an
/// outgoing request, so the callee's spans join the caller's trace. Does nothing while traces
/// are off (the global propagator is then a no-op).
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateTrace;

impl tonic::service::Interceptor for PropagateTrace {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
        });
        Ok(request)
    }
}

/// The bearer token a service presents on its calls to another (book-service's service-client
/// token for WatchRevocations), kept fresh by whoever holds the other end; `None` until the
/// first one arrives (cheap to clone).
pub type SharedBearer = std::sync::Arc<std::sync::RwLock<Option<String>>>;

/// A tonic interceptor that propagates the trace ([`PropagateTrace`]) and, when `bearer` holds
/// a token, sends it as `authorization: Bearer <token>`.
#[derive(Debug, Clone, Default)]
pub struct WithBearer {
    /// The token to send.
    pub bearer: SharedBearer,
}

impl tonic::service::Interceptor for WithBearer {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = PropagateTrace.call(request)?;
        let token = self
            .bearer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(value) = token.and_then(|t| format!("Bearer {t}").parse().ok()) {
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// Writes W3C trace context into gRPC metadata.
struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl opentelemetry::propagation::Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// An endpoint for `url` (`http://host:port`, `https://host:port`, or a bare `host:port`).
/// For `https://`, the server certificate must chain to `tls.ca_cert` (or to the public web
/// roots when none is given), and `tls.client_cert`/`client_key` are presented when set
/// (mTLS). A bare `host:port` means TLS when any TLS option is given (as grpcurl's `-cacert`
/// does) and plaintext otherwise; a TLS option given with an `http://` URL is an error naming
/// the flag, never silently ignored. Add `.timeout(...)` for unary calls; leave it off for
/// streams, which would otherwise be cut at that timeout.
pub fn endpoint(url: &str, tls: &ClientTls) -> anyhow::Result<Endpoint> {
    endpoint_with_flags(url, tls, "")
}

/// [`endpoint`] for options whose flags are named `--{flag_prefix}ca-cert` and so on
/// (book-service's `--auth-ca-cert`), so that an error names the flag the user typed.
pub fn endpoint_with_flags(
    url: &str,
    tls: &ClientTls,
    flag_prefix: &str,
) -> anyhow::Result<Endpoint> {
    let given = [
        ("ca-cert", tls.ca_cert.is_some()),
        ("client-cert", tls.client_cert.is_some()),
        ("client-key", tls.client_key.is_some()),
    ]
    .into_iter()
    .find_map(|(flag, set)| set.then_some(flag));
    let url = match (url.split_once("://"), given) {
        (Some(("http", _)), Some(flag)) => anyhow::bail!(
            "--{flag_prefix}{flag} was given but {url} is plaintext: use https:// or drop --{flag_prefix}{flag}"
        ),
        (Some(_), _) => url.to_string(),
        (None, Some(_)) => format!("https://{url}"),
        (None, None) => format!("http://{url}"),
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .with_context(|| format!("{url} is not a valid URL"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE.0)
        .keep_alive_timeout(KEEPALIVE.1)
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let mut config = ClientTlsConfig::new();
        config = match &tls.ca_cert {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => config.with_webpki_roots(),
        };
        match (&tls.client_cert, &tls.client_key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => anyhow::bail!("a client certificate needs both its certificate and its key"),
        }
        endpoint = endpoint
            .tls_config(config)
            .with_context(|| format!("TLS settings for {url}"))?;
    }
    Ok(endpoint)
}
