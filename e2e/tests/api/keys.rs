//! Public keys from auth-service: outages and rotation.

use std::{net::SocketAddr, time::Duration};

use bookstore_contract::proto::book::{book_service_client::BookServiceClient, ListBooksRequest};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{bearer, health, start_auth, start_book, wait_serving, Caller, Stack};

async fn can_list(book: SocketAddr, caller: &Caller) -> Result<(), tonic::Status> {
    BookServiceClient::connect(format!("http://{book}"))
        .await
        .expect("connect")
        .list_books(bearer(ListBooksRequest::default(), caller.token()))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn book_service_keeps_serving_valid_tokens_while_auth_service_is_down() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let Stack { dir, auth, book } = stack;
    let auth_addr = auth.addr;
    auth.stop().await;
    assert!(health(auth_addr).await.is_none(), "auth-service is down");
    can_list(book.addr, &alice)
        .await
        .expect("cached keys still verify");
    assert_eq!(health(book.addr).await, Some(ServingStatus::Serving));
    drop(dir);
}

#[tokio::test]
async fn book_service_started_while_auth_service_is_down_is_not_serving_until_it_is_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Reserve an address for auth-service, then leave it unanswered.
    let auth_addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let book = start_book(dir.path(), auth_addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(health(book.addr).await, Some(ServingStatus::NotServing));

    let auth = start_auth(dir.path(), auth_addr).await;
    wait_serving(book.addr, Duration::from_secs(10)).await;
    let stack = Stack {
        dir: std::sync::Arc::new(dir),
        auth,
        book,
    };
    let alice = stack.user("alice").await;
    can_list(stack.book.addr, &alice)
        .await
        .expect("serves once keys are fetched");
}

#[tokio::test]
async fn a_rotated_key_is_accepted_within_seconds_and_the_old_key_still_is() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    // What `auth-service keys rotate` does, then a restart of auth-service.
    let admin = stack.auth_admin().await;
    admin.rotate_keys().await.expect("rotate");
    admin.close().await;
    let Stack { dir, auth, book } = stack;
    let addr = auth.addr;
    auth.stop().await;
    let auth = start_auth(dir.path(), addr).await;
    let stack = Stack { dir, auth, book };

    let fresh = stack.user_login("alice").await;
    assert_ne!(
        kid(fresh.token()),
        kid(alice.token()),
        "signed by the new key"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match can_list(stack.book.addr, &fresh).await {
            Ok(()) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::Unauthenticated);
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "new key not accepted within 15 s"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    can_list(stack.book.addr, &alice)
        .await
        .expect("old key's token still accepted");
}

fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("header");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64");
    let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
    value["kid"].as_str().expect("kid").to_string()
}
