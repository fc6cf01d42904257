//! How the gRPC server is set up: explicit HTTP/2 and connection limits, gRPC-Web and CORS,
//! health and reflection beside the service's routes, and the per-call log
//! ([`crate::call_log`]).

use std::time::Duration;

use bookstore_contract::FILE_DESCRIPTOR_SET;
use tonic::{
    body::Body,
    service::Routes,
    transport::{server::Router, Server},
};
use tonic_web::GrpcWebLayer;
use tower::{
    layer::util::{Identity, Stack},
    util::MapResponseLayer,
};

use crate::{
    call_log::CallLogLayer,
    cors::CorsLayer,
    grpc_web::GrpcWebAnswersLayer,
    health::Health,
    metrics::{CountedBody, Metrics},
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
        .layer(CallLogLayer::new(metrics.clone()))
        .add_routes(routes)
        .add_service(health.server())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
}
