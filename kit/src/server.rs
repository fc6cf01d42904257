//! How the gRPC server is set up: explicit HTTP/2 and connection limits, health and
//! reflection beside the service's routes, one log line per call. Also the shutdown signal and
//! the `healthcheck` client both binaries use.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bookstore_contract::FILE_DESCRIPTOR_SET;
use tonic::{
    body::Body,
    service::Routes,
    transport::{server::Router, Server},
};
use tonic_health::pb::health_client::HealthClient;
use tonic_web::GrpcWebLayer;
use tower::{
    layer::util::{Identity, Stack},
    util::MapResponseLayer,
    Layer, Service,
};
use tracing::Instrument;

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    config::ClientTls,
    cors::CorsLayer,
    grpc_web::GrpcWebAnswersLayer,
    health::Health,
    metrics::{CountedBody, Metrics},
    telemetry::HeaderExtractor,
};

/// HTTP/2 streams one connection may have open at once (tonic's default is unlimited).
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// Requests one connection may have in flight; more are shed with UNAVAILABLE. Equal to
/// [`MAX_CONCURRENT_STREAMS`], so a well-behaved HTTP/2 client queues extra calls on its side
/// instead of being shed.
pub const CONCURRENCY_PER_CONNECTION: usize = 128;
/// Streams a peer may make us reset before the connection is closed (CVE-2023-44487 class).
pub const MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// Longest any call may run before it is answered CANCELLED (a client's shorter deadline wins).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 PING interval and how long to wait for the answer before closing a dead connection.
pub const HTTP2_KEEPALIVE: (Duration, Duration) =
    (Duration::from_secs(30), Duration::from_secs(10));
/// TCP keepalive on accepted sockets.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// After a shutdown signal, how long in-flight calls get to finish before the server stops.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A tonic server builder with every limit above and nothing else: what the services serve
/// with (plus their layers and routes), and the bare echo server the benchmark compares them to.
pub fn limits() -> Server {
    Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .load_shed(true)
        .timeout(REQUEST_TIMEOUT)
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE.0))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE.1))
}

/// The layers around every call, outermost first: CORS for browsers from the allowed origins,
/// gRPC-Web translated to gRPC ([`crate::grpc_web`]), then the call log. The log and the
/// metrics below the translation see every call as gRPC, whichever protocol the client spoke.
type Layers = Stack<
    CallLogLayer,
    Stack<
        MapResponseLayer<fn(Logged) -> http::Response<Body>>,
        Stack<GrpcWebLayer, Stack<GrpcWebAnswersLayer, Stack<CorsLayer, Identity>>>,
    >,
>;
type Logged = http::Response<CountedBody<Body>>;

/// The tonic server with every limit above, gRPC-Web beside gRPC (HTTP/1.1 as well as HTTP/2,
/// CORS for `cors_origins`), the per-call log line, and beside `routes`: grpc.health.v1 from
/// `health` and reflection v1 and v1alpha (none behind a token).
pub(crate) fn grpc_server(
    routes: Routes,
    health: &Health,
    metrics: &Metrics,
    cors_origins: &[String],
) -> Router<Layers> {
    // Reflection lists exactly what this server serves, and can describe the google.rpc
    // error details, so grpcurl decodes ErrorInfo, BadRequest and RetryInfo too.
    let reflection = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
            .include_reflection_service(false);
        health
            .services()
            .iter()
            .chain(&[
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ])
            .fold(builder, |b, name| b.with_service_name(*name))
    };
    // The descriptor sets are built into the binary; failing to parse them is a build bug.
    let reflection_v1 = reflection()
        .build_v1()
        .expect("embedded descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("embedded descriptor sets are valid");

    limits()
        .accept_http1(true)
        .layer(CorsLayer::new(cors_origins))
        .layer(GrpcWebAnswersLayer)
        .layer(GrpcWebLayer::new())
        // gRPC-Web takes the body type tonic serves with.
        .layer(MapResponseLayer::new(
            (|response: Logged| response.map(Body::new)) as fn(Logged) -> _,
        ))
        .layer(CallLogLayer {
            metrics: metrics.clone(),
        })
        .add_routes(routes)
        .add_service(health.server())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Asks the grpc.health.v1 service at `addr` (`host:port` or a URL) for the overall status.
/// Used by the `healthcheck` subcommands (docker-compose healthchecks): `Ok(true)` if SERVING.
pub async fn healthcheck(addr: &str, tls: &ClientTls) -> anyhow::Result<bool> {
    let channel = crate::client::endpoint(addr, tls)?
        .timeout(Duration::from_secs(3))
        .connect()
        .await?;
    let response = HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(response.into_inner().status
        == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
}

/// The `healthcheck` subcommand of both binaries: exit 0 when `addr` reports SERVING, else 1
/// with the reason on stderr.
pub async fn healthcheck_exit(addr: &str, tls: &ClientTls) -> std::process::ExitCode {
    match healthcheck(addr, tls).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{addr}: NOT_SERVING");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{addr}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Tower layer that writes one log line per call (method, gRPC code, latency and, when the
/// [`crate::auth::Authenticator`] ran, the user id) and counts every call in the service's
/// [`Metrics`]. It never reads request bodies or headers other than the path, so neither
/// passwords nor tokens can reach the log through it.
#[derive(Debug, Clone)]
pub struct CallLogLayer {
    metrics: Metrics,
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
    let user_id = user.0.get().map(tracing::field::display);
    match result {
        Ok(response) => {
            let early = crate::metrics::status_in(response.headers());
            let code = early.unwrap_or(tonic::Code::Ok);
            if crate::telemetry::exporting_traces() {
                tracing::Span::current().record("rpc.grpc.status_code", code as i32);
            }
            tracing::info!(method = %method, user_id, code = ?code, latency_ms, "handled");
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
            tracing::warn!(method = %method, user_id, error = %e, latency_ms, "transport error");
            call.finish(tonic::Code::Unavailable);
            Err(e)
        }
    }
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
