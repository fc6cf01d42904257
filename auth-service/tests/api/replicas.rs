//! Several auth-service replicas on one database (PostgreSQL in CI's second run, one SQLite file
//! in the first): every rule holds across them, because it rests on the database, not on the
//! process. Calls alternate between replicas and arrive at once.

use std::time::{Duration, Instant};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bookstore_contract::proto::auth::{
    auth_service_client::AuthServiceClient, ListUsersRequest, LoginRequest, RefreshTokenRequest,
};
use futures::future::join_all;
use tonic::Code;

use crate::helpers::{bearer, TestApp, PASSWORD};

#[tokio::test]
async fn three_replicas_starting_together_on_a_fresh_database_migrate_once_and_share_one_key() {
    // A fresh directory: its database is created by the three at once.
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let clock = bookstore_kit::clock::Clock::manual(chrono::Utc::now());
    let replicas = join_all((0..3).map(|_| TestApp::spawn_in(dir.clone(), clock.clone()))).await;
    let mut kids = Vec::new();
    for replica in &replicas {
        let jwks = replica.jwks().await;
        kids.push(jwks.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>());
    }
    assert_eq!(kids[0].len(), 1, "{kids:?}");
    assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
}

#[tokio::test]
async fn the_login_throttle_counts_exactly_across_replicas() {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    one.register("alice").await;
    let ip = Some("127.0.21.1".parse().expect("ip"));
    let clients = [
        AuthServiceClient::new(one.channel_from(ip).await),
        AuthServiceClient::new(two.channel_from(ip).await),
    ];
    let results = join_all((0..30).map(|i| {
        let mut client = clients[i % 2].clone();
        async move {
            client
                .login(LoginRequest {
                    scopes: Vec::new(),
                    username: "alice".into(),
                    password: "not the right password".into(),
                })
                .await
        }
    }))
    .await;
    let unauthenticated = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Unauthenticated))
        .count();
    let exhausted = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::ResourceExhausted))
        .count();
    assert_eq!((unauthenticated, exhausted), (5, 25), "{results:?}");
}

#[tokio::test]
async fn a_refresh_token_is_spent_once_whichever_replicas_see_it() {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    one.register("bob").await;
    let login = one.login("bob").await;
    let clients = [one.auth().await, two.auth().await];
    let results = join_all((0..20).map(|i| {
        let mut client = clients[i % 2].clone();
        let refresh_token = login.refresh_token.clone();
        async move {
            client
                .refresh_token(RefreshTokenRequest {
                    scopes: Vec::new(),
                    refresh_token,
                })
                .await
                .map(tonic::Response::into_inner)
        }
    }))
    .await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|s| s.code() == Code::Unauthenticated));
    // The reuse was seen, by whichever replica: the winner's new token is revoked with its family.
    let successor = winners[0].refresh_token.clone();
    let mut other = two.auth().await;
    let status = other
        .refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: successor,
        })
        .await
        .expect_err("the family is revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_rotated_key_signs_on_every_replica_within_five_seconds() {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    one.register("carol").await;
    let kid = one.admin().await.rotate_keys().await.expect("rotate");
    let started = Instant::now();
    for replica in [&one, &two] {
        loop {
            let login = replica.try_login("carol", PASSWORD).await.expect("login");
            let header = kid_of(&login.access_token);
            if header.as_deref() == Some(kid.as_str()) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "replica still signs with {header:?}, not {kid}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_page_token_from_one_replica_is_accepted_by_another() {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    for i in 0..5 {
        one.register(&format!("user{i}")).await;
    }
    assert!(one.admin().await.promote("user0").await.expect("promote"));
    let admin = one.login("user0").await;
    let request = |page_token: String| {
        bearer(
            ListUsersRequest {
                page_size: 3,
                page_token,
            },
            &admin.access_token,
        )
    };
    let first = one.users().await.list_users(request(String::new())).await;
    let first = first.expect("first page").into_inner();
    let mut users = two.users().await;
    let second = users
        .list_users(request(first.next_page_token.clone()))
        .await;
    let second = second
        .expect("second page on the other replica")
        .into_inner();
    let names: Vec<String> = first
        .users
        .into_iter()
        .chain(second.users)
        .map(|u| u.username)
        .collect();
    let expected: Vec<String> = (0..5).map(|i| format!("user{i}")).collect();
    assert_eq!(names, expected);
    assert!(second.next_page_token.is_empty());
}

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> Option<String> {
    let header = URL_SAFE_NO_PAD.decode(jwt.split('.').next()?).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    header["kid"].as_str().map(str::to_string)
}
