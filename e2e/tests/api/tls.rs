//! Both services on TLS, with mutual TLS between book-service and auth-service: the key set
//! and the revocation stream come only from an auth-service that proves who it is, to a
//! book-service that proves who it is.

use std::time::Duration;

use bookstore_contract::proto::{
    auth::{auth_service_client::AuthServiceClient, LoginRequest, RegisterRequest},
    book::{book_service_client::BookServiceClient, ListBooksRequest},
};
use bookstore_kit::{channel, config::ClientTls, healthcheck::healthcheck};
use bookstore_testkit::{any_port, bearer, database_url, pki::TestCa, Server, PASSWORD};

#[tokio::test]
async fn book_service_reaches_auth_service_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new(dir.path(), "ca");
    let services = TestCa::new(dir.path(), "services");
    let auth_cert = ca.issue(dir.path(), "auth");
    let book_cert = ca.issue(dir.path(), "book");
    let book_client = services.issue(dir.path(), "book-client");

    // auth-service requires a client certificate of the `services` CA.
    let mut auth_config = crate::helpers::auth_config(dir.path(), any_port());
    auth_config.serve.tls_cert = Some(auth_cert.cert.clone());
    auth_config.serve.tls_key = Some(auth_cert.key.clone());
    auth_config.serve.tls_client_ca = Some(services.ca.clone());
    let auth = Server::start(auth_service::build(auth_config).await.expect("auth"));
    let auth_url = format!("https://localhost:{}", auth.addr.port());

    let mut book_config = book_service::Config::defaults();
    book_config.serve.listen = any_port();
    book_config.serve.database_url = database_url(dir.path(), "books.db");
    book_config.serve.tls_cert = Some(book_cert.cert.clone());
    book_config.serve.tls_key = Some(book_cert.key.clone());
    book_config.auth_url = auth_url.clone();
    book_config.auth_ca_cert = Some(ca.ca.clone());
    book_config.auth_client_cert = Some(book_client.cert.clone());
    book_config.auth_client_key = Some(book_client.key.clone());
    let book = Server::start(book_service::build(book_config).await.expect("book"));
    let book_url = format!("https://localhost:{}", book.addr.port());

    let user_tls = ClientTls {
        ca_cert: Some(ca.ca.clone()),
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !healthcheck(&book_url, &user_tls).await.unwrap_or(false) {
        assert!(
            std::time::Instant::now() < deadline,
            "book-service never got auth-service's keys over mTLS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A user reaches auth-service with a client certificate, and book-service with none.
    let user_to_auth = ClientTls {
        ca_cert: Some(ca.ca.clone()),
        client_cert: Some(book_client.cert.clone()),
        client_key: Some(book_client.key.clone()),
    };
    let mut auth_client = AuthServiceClient::new(
        channel::endpoint(&auth_url, &user_to_auth)
            .expect("endpoint")
            .connect()
            .await
            .expect("connect auth"),
    );
    auth_client
        .register(RegisterRequest {
            username: "tls".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("register");
    let token = auth_client
        .login(LoginRequest {
            scopes: Vec::new(),
            username: "tls".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner()
        .access_token;
    let mut books = BookServiceClient::new(
        channel::endpoint(&book_url, &user_tls)
            .expect("endpoint")
            .connect()
            .await
            .expect("connect book"),
    );
    books
        .list_books(bearer(ListBooksRequest::default(), &token))
        .await
        .expect("a token verified with keys fetched over mTLS");
    drop((auth, book));
}

#[tokio::test]
async fn book_service_without_its_client_certificate_never_gets_keys() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new(dir.path(), "ca");
    let services = TestCa::new(dir.path(), "services");
    let auth_cert = ca.issue(dir.path(), "auth");
    let mut auth_config = crate::helpers::auth_config(dir.path(), any_port());
    auth_config.serve.tls_cert = Some(auth_cert.cert.clone());
    auth_config.serve.tls_key = Some(auth_cert.key.clone());
    auth_config.serve.tls_client_ca = Some(services.ca.clone());
    let auth = Server::start(auth_service::build(auth_config).await.expect("auth"));

    let mut book_config = book_service::Config::defaults();
    book_config.serve.listen = any_port();
    book_config.serve.database_url = database_url(dir.path(), "books.db");
    book_config.auth_url = format!("https://localhost:{}", auth.addr.port());
    book_config.auth_ca_cert = Some(ca.ca.clone());
    let book = Server::start(book_service::build(book_config).await.expect("book"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        crate::helpers::health(book.addr).await,
        Some(tonic_health::pb::health_check_response::ServingStatus::NotServing)
    );
}

#[test]
fn book_service_refuses_to_start_with_an_auth_ca_and_a_plaintext_auth_url() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new(dir.path(), "ca");
    let out = std::process::Command::new(bookstore_testkit::workspace_binary("book-service"))
        .args(["--listen", "127.0.0.1:0", "--database-url"])
        .arg(database_url(dir.path(), "books.db"))
        .args(["--auth-url", "http://127.0.0.1:1", "--auth-ca-cert"])
        .arg(&ca.ca)
        .output()
        .expect("run book-service");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--auth-ca-cert"), "{stderr}");
}
