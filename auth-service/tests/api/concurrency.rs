//! Concurrent registrations.

use bookstore_contract::proto::auth::{auth_service_client::AuthServiceClient, RegisterRequest};
use futures::future::join_all;
use tonic::Code;

use crate::helpers::{TestApp, PASSWORD};

#[tokio::test]
async fn two_hundred_concurrent_registrations_with_distinct_names_all_succeed() {
    let app = TestApp::spawn().await;
    // Four client addresses, 50 each: under the Register limit of 100 per address and hour.
    let mut clients = Vec::new();
    for i in 1..=4 {
        let ip = format!("127.0.13.{i}").parse().expect("ip");
        clients.push(AuthServiceClient::new(app.channel_from(Some(ip)).await));
    }
    let calls = (0..200).map(|i| {
        let mut client = clients[i % 4].clone();
        async move {
            client
                .register(RegisterRequest {
                    username: format!("user{i}"),
                    password: PASSWORD.into(),
                })
                .await
        }
    });
    let results = join_all(calls).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
}

#[tokio::test]
async fn fifty_concurrent_registrations_of_one_name_give_exactly_one_ok() {
    let app = TestApp::spawn().await;
    let client = app.auth().await;
    let calls = (0..50).map(|_| {
        let mut client = client.clone();
        async move {
            client
                .register(RegisterRequest {
                    username: "popular".into(),
                    password: PASSWORD.into(),
                })
                .await
        }
    });
    let results = join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let exists = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::AlreadyExists))
        .count();
    assert_eq!((ok, exists), (1, 49), "{results:?}");
}
