//! Health, reflection, request limits and graceful shutdown.

use std::process::{Command, Stdio};

use bookstore_contract::proto::auth::RegisterRequest;
use bookstore_testkit::ChildService;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};
use tonic_reflection::pb::v1::{
    server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse, ServerReflectionRequest,
};

use crate::helpers::{binary, expect_code, TestApp};

#[tokio::test]
async fn health_is_serving_overall_and_per_service_and_needs_no_token() {
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel().await);
    for service in [
        "",
        "bookstore.auth.v1.AuthService",
        "bookstore.auth.v1.UserService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    expect_code(
        health
            .check(HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn reflection_v1_lists_exactly_the_served_services() {
    let app = TestApp::spawn().await;
    let mut client = ServerReflectionClient::new(app.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bookstore.auth.v1.AuthService",
            "bookstore.auth.v1.RevocationService",
            "bookstore.auth.v1.UserService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]
    );
}

#[tokio::test]
async fn requests_over_64_kib_are_refused_unread() {
    let app = TestApp::spawn().await;
    let result = app
        .auth()
        .await
        .register(RegisterRequest {
            username: "big".into(),
            password: "x".repeat(70 * 1024),
        })
        .await;
    expect_code(result, Code::OutOfRange);
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_before_the_server_stops() {
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("first status").expect("ok");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let stopping = tokio::spawn(app.stop());
    let next = watch.next().await.expect("a status update").expect("ok");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // The watch is an in-flight call; end it so the drain need not wait for its timeout.
    drop(watch);
    drop(health);
    stopping.await.expect("stopped cleanly");
}

#[tokio::test]
async fn sigterm_makes_the_binary_drain_and_exit_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = crate::helpers::database_url(dir.path());
    let process = ChildService::start(
        &binary(),
        &["--listen", "127.0.0.1:0", "--database-url", &url],
    );
    let addr = process.addr.clone();
    let healthcheck = Command::new(binary())
        .args(["healthcheck", "--addr", &addr])
        .status()
        .expect("healthcheck runs");
    assert!(
        healthcheck.success(),
        "healthcheck of a serving service exits 0"
    );
    assert_eq!(process.terminate(), Some(0));
    let after = Command::new(binary())
        .args(["healthcheck", "--addr", &addr])
        .stderr(Stdio::null())
        .status()
        .expect("healthcheck runs");
    assert!(
        !after.success(),
        "healthcheck of a stopped service exits non-zero"
    );
}

#[tokio::test]
async fn every_call_logs_one_line_with_method_code_latency_and_user_but_no_secret() {
    use bookstore_contract::proto::auth::{
        auth_service_client::AuthServiceClient, user_service_client::UserServiceClient,
        GetCurrentUserRequest, LoginRequest,
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let url = crate::helpers::database_url(dir.path());
    let process = ChildService::start(
        &binary(),
        &["--listen", "127.0.0.1:0", "--database-url", &url],
    );
    let mut auth = AuthServiceClient::connect(process.url())
        .await
        .expect("connect");
    let password = "a password that must never be logged";
    auth.register(RegisterRequest {
        username: "logged".into(),
        password: password.into(),
    })
    .await
    .expect("register");
    let login = auth
        .login(LoginRequest {
            scopes: Vec::new(),
            username: "logged".into(),
            password: password.into(),
        })
        .await
        .expect("login")
        .into_inner();
    let mut users = UserServiceClient::connect(process.url())
        .await
        .expect("connect");
    let me = users
        .get_current_user(crate::helpers::bearer(
            GetCurrentUserRequest {},
            &login.access_token,
        ))
        .await
        .expect("me")
        .into_inner()
        .user
        .expect("user");
    expect_code(
        users.get_current_user(GetCurrentUserRequest {}).await,
        Code::Unauthenticated,
    );
    let handled = |line: &String| {
        serde_json::from_str::<serde_json::Value>(line).is_ok_and(|e| e["message"] == "handled")
    };
    let lines = process
        .wait_for_log(|lines| lines.iter().filter(|l| handled(l)).count() >= 4)
        .await;

    let calls: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["message"] == "handled")
        .collect();
    let methods: Vec<&str> = calls.iter().filter_map(|e| e["method"].as_str()).collect();
    assert_eq!(
        methods,
        [
            "/bookstore.auth.v1.AuthService/Register",
            "/bookstore.auth.v1.AuthService/Login",
            "/bookstore.auth.v1.UserService/GetCurrentUser",
            "/bookstore.auth.v1.UserService/GetCurrentUser",
        ],
        "one line per call:\n{}",
        lines.join("\n")
    );
    assert!(calls
        .iter()
        .all(|e| e["latency_ms"].is_number() && e["code"].is_string()));
    assert_eq!(calls[2]["user_id"], me.id.as_str());
    assert_eq!(calls[3]["code"], "Unauthenticated");
    let signature = login.access_token.rsplit('.').next().expect("signature");
    for line in &lines {
        assert!(!line.contains(password), "password in the log: {line}");
        assert!(!line.contains(signature), "token in the log: {line}");
        assert!(
            !line.contains(&login.refresh_token),
            "refresh token in the log: {line}"
        );
    }
}

#[tokio::test]
async fn security_events_are_logged_with_who_and_where_but_no_secret() {
    use bookstore_contract::proto::auth::{
        auth_service_client::AuthServiceClient, LoginRequest, RefreshTokenRequest,
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let url = crate::helpers::database_url(dir.path());
    let process = ChildService::start(
        &binary(),
        &["--listen", "127.0.0.1:0", "--database-url", &url],
    );
    let mut auth = AuthServiceClient::connect(process.url())
        .await
        .expect("connect");
    let login = |password: &str| LoginRequest {
        scopes: Vec::new(),
        username: "mallory".into(),
        password: password.into(),
    };
    auth.register(RegisterRequest {
        username: "mallory".into(),
        password: crate::helpers::PASSWORD.into(),
    })
    .await
    .expect("register");
    let wrong = "a guessed password never logged";
    for _ in 0..6 {
        let _ = auth.login(login(wrong)).await;
    }
    expect_code(
        auth.login(login(crate::helpers::PASSWORD)).await,
        Code::ResourceExhausted,
    );
    let lines = process.wait_for_log_containing("login_throttled").await;
    let events: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"].is_string())
        .collect();
    let of = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(of("login_failed"), 5, "{}", lines.join("\n"));
    assert!(of("login_throttled") >= 1, "{}", lines.join("\n"));
    for event in &events {
        assert_eq!(event["username"], "mallory", "{event}");
        assert_eq!(event["client"], "127.0.0.1", "{event}");
    }
    for line in &lines {
        assert!(!line.contains(wrong), "password in the log: {line}");
    }
    // Reuse of a spent refresh token names the user.
    let fresh = tempfile::tempdir().expect("temp dir");
    let url = crate::helpers::database_url(fresh.path());
    let process = ChildService::start(
        &binary(),
        &["--listen", "127.0.0.1:0", "--database-url", &url],
    );
    let mut auth = AuthServiceClient::connect(process.url())
        .await
        .expect("connect");
    let user = auth
        .register(RegisterRequest {
            username: "mallory".into(),
            password: crate::helpers::PASSWORD.into(),
        })
        .await
        .expect("register")
        .into_inner()
        .user
        .expect("user");
    let first = auth
        .login(login(crate::helpers::PASSWORD))
        .await
        .expect("login")
        .into_inner()
        .refresh_token;
    let refresh = |token: &str| RefreshTokenRequest {
        scopes: Vec::new(),
        refresh_token: token.into(),
    };
    auth.refresh_token(refresh(&first)).await.expect("refresh");
    expect_code(
        auth.refresh_token(refresh(&first)).await,
        Code::Unauthenticated,
    );
    let reuse: Vec<serde_json::Value> = process
        .wait_for_log_containing("refresh_reuse")
        .await
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "refresh_reuse")
        .collect();
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0]["user_id"], user.id.as_str());
    assert_eq!(reuse[0]["client"], "127.0.0.1");
}
