//! One log line per call, and every call counted in the service's metrics: a tower layer
//! around the services' routes ([`crate::server`] puts it below the gRPC-Web translation, so a
//! gRPC-Web call is logged and counted as the gRPC call it becomes).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use opentelemetry::trace::TraceContextExt;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    metrics::{CountedBody, Metrics},
    telemetry::HeaderExtractor,
};

/// Tower layer that writes one log line per call (method, gRPC code, latency and, when the
/// [`crate::auth::Authenticator`] ran, the user id) and counts every call in the service's
/// [`Metrics`]. It never reads request bodies or headers other than the path, so neither
/// passwords nor tokens can reach the log through it.
#[derive(Debug, Clone)]
pub struct CallLogLayer {
    metrics: Metrics,
}

impl CallLogLayer {
    /// Counts calls in `metrics`.
    pub fn new(metrics: Metrics) -> CallLogLayer {
        CallLogLayer { metrics }
    }
}

impl<S> Layer<S> for CallLogLayer {
    type Service = CallLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CallLog {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service made by [`CallLogLayer`].
#[derive(Debug, Clone)]
pub struct CallLog<S> {
    inner: S,
    metrics: Metrics,
}

/// The target of the call lines, which `RUST_LOG` filters on (`bookstore_kit::server=warn`
/// silences them): the name operators know, whichever module writes them.
const TARGET: &str = "bookstore_kit::server";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for CallLog<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + Send + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<CountedBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let call = self.metrics.start(request.uri().path());
        let user = CallUser::default();
        request.extensions_mut().insert(user.clone());
        let uri = request.uri().clone();
        if !crate::telemetry::exporting_traces() {
            // No span per call without trace export: the line carries the method and the user
            // id itself. Created, entered on every poll and closed, the span cost more than
            // the line it decorated.
            return Box::pin(logged(self.inner.call(request), uri, user, call));
        }
        // One server span per call, named and attributed as OpenTelemetry's RPC conventions
        // say; an incoming W3C `traceparent` makes it a child of the caller's span. Of its
        // fields only `trace_id` shows in text log lines ([`crate::telemetry`]).
        let path = loggable_path(uri.path());
        let span = tracing::info_span!(
            "call",
            trace_id = tracing::field::Empty,
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %call.service(),
            rpc.method = %call.method(),
            rpc.grpc.status_code = tracing::field::Empty,
            enduser.id = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        let _ = span.set_parent(parent);
        let trace = span.context().span().span_context().clone();
        if trace.is_valid() {
            span.record("trace_id", tracing::field::display(trace.trace_id()));
        }
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(logged(future, uri, user, call).instrument(span))
    }
}

/// Awaits the answer of the call to `uri`, then writes its log line and counts it. An error
/// answer is "trailers-only": grpc-status is in the headers. A successful answer sends it in
/// the trailers instead: the log line says OK for it now (shortcut: it does not wait for the
/// trailers), the metrics read the trailers when the body ends.
async fn logged<F, RB, E>(
    future: F,
    uri: http::Uri,
    user: CallUser,
    mut call: crate::metrics::Call,
) -> Result<http::Response<CountedBody<RB>>, E>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let result = future.await;
    // Whole microseconds: a shorter line than all the digits of an f64.
    let latency_ms = start.elapsed().as_micros() as f64 / 1000.0;
    let method = loggable_path(uri.path());
    let user_id = user.0.get();
    match result {
        Ok(response) => {
            let early = crate::metrics::status_in(response.headers());
            let code = early.unwrap_or(tonic::Code::Ok);
            if crate::telemetry::exporting_traces() {
                tracing::Span::current().record("rpc.grpc.status_code", code as i32);
            }
            handled(method, user_id, code, latency_ms);
            let call = match early {
                Some(code) => {
                    call.finish(code);
                    None
                }
                None => Some(call),
            };
            Ok(response.map(|body| CountedBody::new(body, call)))
        }
        Err(e) => {
            tracing::warn!(target: TARGET, method = %method, user_id = user_id.map(tracing::field::display), error = %e, latency_ms, "transport error");
            call.finish(tonic::Code::Unavailable);
            Err(e)
        }
    }
}

/// Writes the line of a call answered `code` (the `info` line every call gets; the bench
/// `cargo bench -p bookstore-kit --bench log_line` measures it).
pub fn handled(
    method: &str,
    user_id: Option<impl std::fmt::Display>,
    code: tonic::Code,
    latency_ms: f64,
) {
    let user_id = user_id.map(tracing::field::display);
    tracing::info!(target: TARGET, method = %method, user_id, code = ?code, latency_ms, "handled");
}

/// Longest method path a log line or span carries: the path is the client's to choose, and an
/// unknown method's is logged as its first bytes only.
pub const MAX_LOGGED_PATH_BYTES: usize = 128;

/// `path` cut to [`MAX_LOGGED_PATH_BYTES`] (at a character boundary).
pub fn loggable_path(path: &str) -> &str {
    if path.len() <= MAX_LOGGED_PATH_BYTES {
        return path;
    }
    let mut end = MAX_LOGGED_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// The caller's user id, for the call's log line: [`CallLog`] puts an empty one into each
/// request's extensions and the [`crate::auth::Authenticator`] fills it once the token verified.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallUser(Arc<OnceLock<String>>);

impl CallUser {
    /// Records `user_id` as the caller (the first one recorded stays).
    pub(crate) fn set(&self, user_id: &str) {
        let _ = self.0.set(user_id.to_owned());
    }
}
