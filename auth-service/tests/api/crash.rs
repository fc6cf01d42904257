//! Durability: restarts keep users, keys and throttle counts; kill -9 loses no acknowledged
//! registration.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bookstore_contract::proto::auth::{
    auth_service_client::AuthServiceClient, GetCurrentUserRequest, RegisterRequest,
};
use bookstore_testkit::ChildService;

use crate::helpers::{bearer, binary, database_url, TestApp, PASSWORD};

#[tokio::test]
async fn users_and_the_signing_key_survive_a_restart() {
    let app = TestApp::spawn().await;
    app.register("alice").await;
    let login = app.login("alice").await;
    let (kid_before, _) = app.signing_key().await;
    let app = app.restart().await;
    let (kid_after, _) = app.signing_key().await;
    assert_eq!(kid_before, kid_after);
    app.users()
        .await
        .get_current_user(bearer(GetCurrentUserRequest {}, &login.access_token))
        .await
        .expect("token from before the restart still verifies");
    app.login("alice").await;
}

fn start(db_url: &str) -> ChildService {
    ChildService::start(
        &binary(),
        &["--listen", "127.0.0.1:0", "--database-url", db_url],
    )
}

async fn client(process: &ChildService) -> AuthServiceClient<tonic::transport::Channel> {
    AuthServiceClient::connect(process.url())
        .await
        .expect("connect")
}

#[tokio::test]
async fn kill_9_during_a_registration_burst_loses_no_acknowledged_user() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = database_url(dir.path());
    let process = start(&url);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..8 {
        let mut client = client(&process).await;
        let acknowledged = acknowledged.clone();
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{w}u{i}");
                let request = RegisterRequest {
                    username: name.clone(),
                    password: PASSWORD.into(),
                };
                match client.register(request).await {
                    Ok(_) => acknowledged.lock().expect("lock").push(name),
                    Err(_) => break, // the server died
                }
            }
        }));
    }
    // Kill once a good number of writes are acknowledged and more are in flight.
    while acknowledged.lock().expect("lock").len() < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.kill9();
    for worker in workers {
        worker.await.expect("worker");
    }
    let names = acknowledged.lock().expect("lock").clone();
    assert!(names.len() >= 40);

    let process = start(&url);
    let mut client = client(&process).await;
    for name in &names {
        client
            .login(bookstore_contract::proto::auth::LoginRequest {
                scopes: Vec::new(),
                username: name.clone(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("acknowledged user {name} lost: {e:?}"));
    }
}
