//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the real binary exports one server span per
//! call over OTLP/gRPC, named `package.Service/Method` with the RPC attributes, continuing an
//! incoming W3C `traceparent`; the call's log line carries the trace id. The receiver is a real
//! OTLP TraceService built from the OpenTelemetry protobuf definitions.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bookstore_contract::proto::auth::{auth_service_client::AuthServiceClient, RegisterRequest};
use bookstore_testkit::ChildService;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        trace_service_server::{TraceService, TraceServiceServer},
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    },
    common::v1::{any_value::Value, KeyValue},
    trace::v1::Span,
};
use tonic::{Request, Response, Status};

use crate::helpers::{binary, PASSWORD};

/// An OTLP trace receiver that keeps every span it is sent, with its service name.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut kept = self.0.lock().expect("lock");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| string(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    kept.push((service.clone(), span));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn each_call_is_a_server_span_continuing_the_callers_trace() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let otlp = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().expect("dir");
    let db = crate::helpers::database_url(dir.path());
    let process = ChildService::start_with_env(
        &binary(),
        &["--listen", "127.0.0.1:0", "--database-url", &db],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let mut request = Request::new(RegisterRequest {
        username: "traced".into(),
        password: PASSWORD.into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01")
            .parse()
            .expect("metadata"),
    );
    AuthServiceClient::connect(process.url())
        .await
        .expect("connect")
        .register(request)
        .await
        .expect("register");

    let deadline = Instant::now() + Duration::from_secs(10);
    let (service, span) = loop {
        let found = receiver
            .0
            .lock()
            .expect("lock")
            .iter()
            .find(|(_, span)| span.name == "bookstore.auth.v1.AuthService/Register")
            .cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no span exported within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(service, "auth-service");
    assert_eq!(
        hex(&span.trace_id),
        trace_id,
        "the caller's trace continues"
    );
    assert_eq!(hex(&span.parent_span_id), parent_id);
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        string(&span.attributes, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        string(&span.attributes, "rpc.service").as_deref(),
        Some("bookstore.auth.v1.AuthService")
    );
    assert_eq!(
        string(&span.attributes, "rpc.method").as_deref(),
        Some("Register")
    );
    assert!(
        matches!(
            attribute(&span.attributes, "rpc.grpc.status_code"),
            Some(Value::IntValue(0))
        ),
        "{:?}",
        span.attributes
    );

    let logged = process.log_lines().iter().any(|line| {
        serde_json::from_str::<serde_json::Value>(line)
            .is_ok_and(|e| e["message"] == "handled" && e["span"]["trace_id"] == trace_id)
    });
    assert!(
        logged,
        "the call's log line carries the trace id:\n{}",
        process.log_lines().join("\n")
    );
}
