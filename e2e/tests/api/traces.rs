//! Traces across the pair: book-service's calls to auth-service carry its trace context, so
//! auth-service's server span is the child of book-service's client span in the same trace.

use std::time::Duration;

use bookstore_testkit::{
    otlp::{hex, Receiver},
    workspace_binary, ChildService,
};

use crate::helpers::wait_serving;

#[tokio::test]
async fn book_service_calls_to_auth_service_continue_its_trace() {
    let (receiver, otlp) = Receiver::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let auth_db = bookstore_testkit::database_url(dir.path(), "auth.db");
    let auth = ChildService::start_with_env(
        &workspace_binary("auth-service"),
        &["--listen", "127.0.0.1:0", "--database-url", &auth_db],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let books_db = bookstore_testkit::database_url(dir.path(), "books.db");
    let auth_url = auth.url();
    let book = crate::helpers::start_book_child(
        &books_db,
        &auth_url,
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    wait_serving(book.addr.parse().expect("addr"), Duration::from_secs(10)).await;

    let (_, client) = receiver
        .wait_for(Duration::from_secs(10), |service, span| {
            service == "book-service" && span.name == "refresh public keys"
        })
        .await;
    let (_, server) = receiver
        .wait_for(Duration::from_secs(10), |service, span| {
            service == "auth-service"
                && span.name == "bookstore.auth.v1.AuthService/GetJwks"
                && span.trace_id == client.trace_id
        })
        .await;
    assert_eq!(hex(&server.parent_span_id), hex(&client.span_id));
}
