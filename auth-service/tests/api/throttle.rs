//! Failed-login throttling, driven by the service's injectable clock (no sleeps).

use std::{net::IpAddr, time::Duration};

use bookstore_contract::proto::auth::{auth_service_client::AuthServiceClient, LoginRequest};
use tonic::{transport::Channel, Code, Status};
use tonic_types::StatusExt;

use crate::helpers::{expect_code, TestApp, PASSWORD};

const WRONG: &str = "not the right password";

async fn login(
    client: &mut AuthServiceClient<Channel>,
    username: &str,
    password: &str,
) -> Result<(), Status> {
    client
        .login(LoginRequest {
            scopes: Vec::new(),
            username: username.into(),
            password: password.into(),
        })
        .await
        .map(|_| ())
}

fn retry_after(status: &Status) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo with a delay")
}

async fn client_from(app: &TestApp, ip: &str) -> AuthServiceClient<Channel> {
    AuthServiceClient::new(
        app.channel_from(Some(ip.parse::<IpAddr>().expect("ip")))
            .await,
    )
}

#[tokio::test]
async fn five_failures_lock_the_name_from_that_address_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    app.register("alice").await;
    let mut attacker = client_from(&app, "127.0.0.1").await;
    for _ in 0..5 {
        expect_code(
            login(&mut attacker, "alice", WRONG).await,
            Code::Unauthenticated,
        );
    }
    let status = login(&mut attacker, "alice", PASSWORD)
        .await
        .expect_err("locked");
    assert_eq!(retry_after(&status), Duration::from_secs(30));

    // The owner on another address is not affected.
    let mut owner = client_from(&app, "127.0.0.2").await;
    login(&mut owner, "alice", PASSWORD)
        .await
        .expect("owner elsewhere logs in");

    app.advance(30);
    login(&mut attacker, "alice", PASSWORD)
        .await
        .expect("lock expired");
}

#[tokio::test]
async fn lockouts_double_and_a_success_resets_them() {
    let app = TestApp::spawn().await;
    app.register("bob").await;
    let mut client = app.auth().await;
    for expected in [30, 60, 120] {
        for _ in 0..5 {
            expect_code(
                login(&mut client, "bob", WRONG).await,
                Code::Unauthenticated,
            );
        }
        let status = login(&mut client, "bob", WRONG).await.expect_err("locked");
        assert_eq!(retry_after(&status), Duration::from_secs(expected));
        app.advance(expected as i64);
    }
    login(&mut client, "bob", PASSWORD).await.expect("success");
    for _ in 0..5 {
        expect_code(
            login(&mut client, "bob", WRONG).await,
            Code::Unauthenticated,
        );
    }
    let status = login(&mut client, "bob", WRONG).await.expect_err("locked");
    assert_eq!(
        retry_after(&status),
        Duration::from_secs(30),
        "back to the first step"
    );
}

#[tokio::test]
async fn names_that_do_not_exist_are_throttled_the_same_way() {
    let app = TestApp::spawn().await;
    let mut client = app.auth().await;
    for _ in 0..5 {
        expect_code(
            login(&mut client, "ghost", WRONG).await,
            Code::Unauthenticated,
        );
    }
    let status = login(&mut client, "ghost", WRONG)
        .await
        .expect_err("locked");
    assert_eq!(retry_after(&status), Duration::from_secs(30));
}

#[tokio::test]
async fn a_username_is_refused_after_100_failures_in_an_hour_from_any_address() {
    let app = TestApp::spawn().await;
    app.register("carol").await;
    // 20 addresses × 5 failures: no pair is over its limit before its 5th failure.
    for i in 0..20 {
        let mut client = client_from(&app, &format!("127.0.1.{}", i + 1)).await;
        for _ in 0..5 {
            expect_code(
                login(&mut client, "carol", WRONG).await,
                Code::Unauthenticated,
            );
        }
    }
    let mut fresh = client_from(&app, "127.0.2.1").await;
    let status = login(&mut fresh, "carol", PASSWORD)
        .await
        .expect_err("user locked");
    assert_eq!(retry_after(&status), Duration::from_secs(3600));
    app.advance(3600);
    login(&mut fresh, "carol", PASSWORD)
        .await
        .expect("after the hour");
}

#[tokio::test]
async fn an_address_is_refused_after_100_failures_in_fifteen_minutes() {
    let app = TestApp::spawn().await;
    app.register("dave").await;
    let mut client = client_from(&app, "127.0.3.1").await;
    for i in 0..100 {
        expect_code(
            login(&mut client, &format!("name{i}"), WRONG).await,
            Code::Unauthenticated,
        );
    }
    let status = login(&mut client, "dave", PASSWORD)
        .await
        .expect_err("address locked");
    assert_eq!(retry_after(&status), Duration::from_secs(900));
    let mut other = client_from(&app, "127.0.3.2").await;
    login(&mut other, "dave", PASSWORD)
        .await
        .expect("other address fine");
    app.advance(900);
    login(&mut client, "dave", PASSWORD)
        .await
        .expect("after the window");
}

#[tokio::test]
async fn throttle_counts_survive_a_restart() {
    let app = TestApp::spawn().await;
    app.register("erin").await;
    let mut client = app.auth().await;
    for _ in 0..5 {
        expect_code(
            login(&mut client, "erin", WRONG).await,
            Code::Unauthenticated,
        );
    }
    let app = app.restart().await;
    let mut client = app.auth().await;
    let status = login(&mut client, "erin", PASSWORD)
        .await
        .expect_err("still locked");
    assert_eq!(retry_after(&status), Duration::from_secs(30));
}
