//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the real binary exports one server span per
//! call over OTLP/gRPC, named `package.Service/Method` with the RPC attributes, continuing an
//! incoming W3C `traceparent`; the call's log line carries the trace id. The receiver is a real
//! OTLP TraceService built from the OpenTelemetry protobuf definitions.

use std::time::Duration;

use bookstore_contract::proto::auth::{auth_service_client::AuthServiceClient, RegisterRequest};
use bookstore_testkit::{
    otlp::{attribute, hex, string, Receiver, Value},
    ChildService,
};
use tonic::Request;

use crate::helpers::{binary, PASSWORD};

#[tokio::test]
async fn each_call_is_a_server_span_continuing_the_callers_trace() {
    let (receiver, otlp) = Receiver::start().await;

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

    let (service, span) = receiver
        .wait_for(Duration::from_secs(10), |_, span| {
            span.name == "bookstore.auth.v1.AuthService/Register"
        })
        .await;
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

    let is_the_line = |line: &String| {
        serde_json::from_str::<serde_json::Value>(line).is_ok_and(|e| {
            e["message"] == "handled"
                && e["method"] == "/bookstore.auth.v1.AuthService/Register"
                && e["span"]["trace_id"] == trace_id
        })
    };
    let lines = process
        .wait_for_log(|lines| lines.iter().any(is_the_line))
        .await;
    assert!(
        lines.iter().any(is_the_line),
        "the call's log line carries the trace id:\n{}",
        lines.join("\n")
    );
}
