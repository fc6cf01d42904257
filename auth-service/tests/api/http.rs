//! The HTTP side door (`--http-listen`): Prometheus metrics that `promtool` accepts, `/healthz`,
//! the JWKS at its well-known path, and nothing else.

use bookstore_contract::proto::auth::GetCurrentUserRequest;
use bookstore_testkit::{any_port, http_request};
use tonic::Code;

use crate::helpers::{expect_code, TestApp};

async fn app_with_http() -> (TestApp, std::net::SocketAddr) {
    let app = TestApp::spawn_with(|config| config.serve.http_listen = Some(any_port())).await;
    let http = app.http.expect("an HTTP side door");
    (app, http)
}

/// The value of the sample `name{labels}` (labels as written by the text format, in order).
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_every_call_with_go_grpc_prometheus_names_and_pass_promtool() {
    let (app, http) = app_with_http().await;
    app.register("metered").await;
    app.login("metered").await;
    let _ = app.try_login("metered", "a wrong password here").await;
    expect_code(
        app.users()
            .await
            .get_current_user(GetCurrentUserRequest {})
            .await,
        Code::Unauthenticated,
    );
    let scraped = http_request(http, "GET", "/metrics").await;
    assert_eq!(scraped.status, 200);
    assert!(
        scraped.headers.contains("content-type: text/plain"),
        "{}",
        scraped.headers
    );
    let text = scraped.body;
    let refused = sample(
        &text,
        r#"grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="GetCurrentUser",grpc_service="bookstore.auth.v1.UserService",grpc_type="unary"}"#,
    );
    assert_eq!(refused, Some(1.0), "{text}");
    let logins_ok = sample(
        &text,
        r#"grpc_server_handled_total{grpc_code="OK",grpc_method="Login",grpc_service="bookstore.auth.v1.AuthService",grpc_type="unary"}"#,
    );
    assert_eq!(logins_ok, Some(1.0), "{text}");
    assert_eq!(
        sample(&text, r#"bookstore_logins_total{result="success"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"bookstore_logins_total{result="failure"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"bookstore_token_verifications_total{result="missing"}"#
        ),
        Some(1.0)
    );
    for family in [
        "grpc_server_started_total",
        "grpc_server_handling_seconds_bucket",
        "grpc_server_msg_received_total",
        "grpc_server_msg_sent_total",
        "process_resident_memory_bytes",
        "bookstore_db_connections",
        "bookstore_revocations_held",
    ] {
        assert!(text.contains(family), "no {family} in:\n{text}");
    }

    // The exposition is clean for the real Prometheus tool (CI installs Debian's `prometheus`
    // package for promtool; set PROMTOOL to use another binary).
    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut child = tokio::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {promtool} ({e}); install Debian's prometheus package")
        });
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).await.expect("write");
    }
    let out = child.wait_with_output().await.expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn healthz_jwks_and_nothing_else() {
    let (app, http) = app_with_http().await;
    let health = http_request(http, "GET", "/healthz").await;
    assert_eq!(health.status, 200, "{health:?}");

    let jwks = http_request(http, "GET", "/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200);
    assert!(
        jwks.headers.contains("cache-control: public, max-age="),
        "{}",
        jwks.headers
    );
    let body: serde_json::Value = serde_json::from_str(&jwks.body).expect("JSON");
    let grpc = app.jwks().await;
    assert_eq!(body["keys"][0]["kid"], grpc.keys[0].kid.as_str());
    assert_eq!(body["keys"][0]["x"], grpc.keys[0].x.as_str());
    assert_eq!(body["keys"][0]["kty"], "OKP");
    assert!(!jwks.body.contains("\"d\""), "no private key part");

    assert_eq!(http_request(http, "GET", "/nope").await.status, 404);
    assert_eq!(http_request(http, "POST", "/metrics").await.status, 405);
    assert_eq!(http_request(http, "DELETE", "/healthz").await.status, 405);
}
