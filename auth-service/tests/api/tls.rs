//! TLS on the gRPC listener: rustls with ALPN h2, optional client certificates (mTLS),
//! certificates reloaded when their files change, and clear failures for every mismatch.

use std::{process::Command, time::Duration};

use bookstore_contract::proto::auth::{auth_service_client::AuthServiceClient, RegisterRequest};
use bookstore_kit::{channel, config::ClientTls, healthcheck::healthcheck};
use bookstore_testkit::pki::{Issued, TestCa};

use crate::helpers::{binary, TestApp, PASSWORD};

fn trusting(ca: &TestCa, identity: Option<&Issued>) -> ClientTls {
    ClientTls {
        ca_cert: Some(ca.ca.clone()),
        client_cert: identity.map(|i| i.cert.clone()),
        client_key: identity.map(|i| i.key.clone()),
    }
}

async fn tls_app(server: &Issued, client_ca: Option<&TestCa>) -> TestApp {
    let (cert, key) = (server.cert.clone(), server.key.clone());
    let client_ca = client_ca.map(|ca| ca.ca.clone());
    TestApp::spawn_with(move |config| {
        config.serve.tls_cert = Some(cert);
        config.serve.tls_key = Some(key);
        config.serve.tls_client_ca = client_ca;
    })
    .await
}

fn https(app: &TestApp) -> String {
    format!("https://localhost:{}", app.addr.port())
}

#[tokio::test]
async fn a_tls_listener_serves_clients_that_trust_its_ca_and_refuses_the_rest_fast() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new(dir.path(), "ca");
    let app = tls_app(&ca.issue(dir.path(), "server"), None).await;
    let url = https(&app);

    assert!(healthcheck(&url, &trusting(&ca, None))
        .await
        .expect("health over TLS"));
    let channel = channel::endpoint(&url, &trusting(&ca, None))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect over TLS");
    AuthServiceClient::new(channel)
        .register(RegisterRequest {
            username: "secure".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("a call over TLS");

    // A plaintext client, and a TLS client that trusts another CA, fail at once.
    let started = std::time::Instant::now();
    let plaintext = format!("http://127.0.0.1:{}", app.addr.port());
    let refused = healthcheck(&plaintext, &ClientTls::default())
        .await
        .expect_err("plaintext on a TLS port");
    assert!(started.elapsed() < Duration::from_secs(2), "{refused:#}");
    let stranger = TestCa::new(dir.path(), "stranger");
    let refused = healthcheck(&url, &trusting(&stranger, None))
        .await
        .expect_err("unknown CA");
    assert!(
        format!("{refused:#}").contains("certificate"),
        "{refused:#}"
    );
}

#[tokio::test]
async fn a_tls_client_on_a_plaintext_port_fails_fast() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new(dir.path(), "ca");
    let app = TestApp::spawn().await;
    let started = std::time::Instant::now();
    healthcheck(&https(&app), &trusting(&ca, None))
        .await
        .expect_err("TLS on a plaintext port");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_signed_by_the_client_ca() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new(dir.path(), "ca");
    let clients = TestCa::new(dir.path(), "clients");
    let app = tls_app(&ca.issue(dir.path(), "server"), Some(&clients)).await;
    let url = https(&app);
    healthcheck(&url, &trusting(&ca, None))
        .await
        .expect_err("no client certificate");
    let outsider = TestCa::new(dir.path(), "outsider").issue(dir.path(), "outsider-client");
    healthcheck(&url, &trusting(&ca, Some(&outsider)))
        .await
        .expect_err("a client certificate of another CA");
    let member = clients.issue(dir.path(), "book-service");
    assert!(healthcheck(&url, &trusting(&ca, Some(&member)))
        .await
        .expect("a client certificate of the client CA"));
}

#[tokio::test]
async fn certificates_are_reloaded_when_their_files_change() {
    let dir = tempfile::tempdir().expect("dir");
    let old_ca = TestCa::new(dir.path(), "old-ca");
    let live = old_ca.issue(dir.path(), "live");
    let app = tls_app(&live, None).await;
    let url = https(&app);
    assert!(healthcheck(&url, &trusting(&old_ca, None))
        .await
        .expect("old"));

    // Replace the files the way certificate tooling does: write aside, then rename over.
    let new_ca = TestCa::new(dir.path(), "new-ca");
    let next = new_ca.issue(dir.path(), "next");
    std::fs::rename(&next.key, &live.key).expect("swap key");
    std::fs::rename(&next.cert, &live.cert).expect("swap cert");

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !healthcheck(&url, &trusting(&new_ca, None))
        .await
        .unwrap_or(false)
    {
        assert!(std::time::Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    healthcheck(&url, &trusting(&old_ca, None))
        .await
        .expect_err("the old certificate is gone");
}

#[tokio::test]
async fn a_reload_that_failed_is_retried_without_another_change_of_the_files() {
    let dir = tempfile::tempdir().expect("dir");
    let old_ca = TestCa::new(dir.path(), "old-ca");
    let live = old_ca.issue(dir.path(), "live");
    let app = tls_app(&live, None).await;
    let url = https(&app);
    let new_ca = TestCa::new(dir.path(), "new-ca");
    let next = new_ca.issue(dir.path(), "next");
    // The new key arrives first: with the old certificate it does not match, and the reload
    // fails (twice: two checks pass).
    std::fs::rename(&next.key, &live.key).expect("swap key");
    // (Its own modification time: files made within one clock tick can share one.)
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&live.key)
        .and_then(|f| f.set_modified(later))
        .expect("touch the key");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The certificate's content then changes with its modification time left as it was, so
    // the files look exactly as they did when the reload failed.
    let old_time = std::fs::metadata(&live.cert)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::copy(&next.cert, &live.cert).expect("write the new certificate");
    std::fs::File::options()
        .write(true)
        .open(&live.cert)
        .and_then(|f| f.set_modified(old_time))
        .expect("keep the modification time");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !healthcheck(&url, &trusting(&new_ca, None))
        .await
        .unwrap_or(false)
    {
        assert!(std::time::Instant::now() < deadline, "never retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_missing_or_mismatched_certificate_stops_the_binary_with_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new(dir.path(), "ca");
    let one = ca.issue(dir.path(), "one");
    let two = ca.issue(dir.path(), "two");
    let db = crate::helpers::database_url(dir.path());
    let run = |cert: &std::path::Path, key: &std::path::Path| {
        let out = Command::new(binary())
            .args([
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db,
                "--tls-cert",
            ])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .expect("run auth-service");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.path().join("nope.pem");
    let stderr = run(&missing, &one.key);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nope.pem"), "{stderr}");
    let stderr = run(&one.cert, &two.key);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
}

#[tokio::test]
async fn tls_options_make_a_bare_address_tls_and_are_an_error_with_an_http_url() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new(dir.path(), "ca");
    let app = tls_app(&ca.issue(dir.path(), "server"), None).await;
    let port = app.addr.port();
    // `healthcheck --addr localhost:PORT --ca-cert ca.pem` speaks TLS, as grpcurl -cacert does.
    assert!(
        healthcheck(&format!("localhost:{port}"), &trusting(&ca, None))
            .await
            .expect("a bare address with a CA means TLS")
    );
    // With http:// the option would be ignored: refused, naming the flag, before connecting.
    let refused = healthcheck(&format!("http://localhost:{port}"), &trusting(&ca, None))
        .await
        .expect_err("a CA with an http:// URL");
    assert!(format!("{refused:#}").contains("--ca-cert"), "{refused:#}");
    // The binary's healthcheck exits 1 with that one line.
    let out = Command::new(binary())
        .args(["healthcheck", "--addr", &format!("http://localhost:{port}")])
        .arg("--ca-cert")
        .arg(&ca.ca)
        .output()
        .expect("run healthcheck");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--ca-cert"), "{stderr}");
}
