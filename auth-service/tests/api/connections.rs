//! What a connection may cost before it asks for anything: silent connections are closed after
//! 10 s on both listeners, `--max-connections` caps them, and the open-file soft limit is
//! raised to the hard limit at start.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use bookstore_testkit::any_port;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{binary, database_url, TestApp};

/// Reads from `stream` until the server closes it (EOF or an error), up to `within` after
/// `started`; returns when that was (since `started`), or `None` if it stayed open.
async fn closed_within(
    stream: &mut TcpStream,
    started: Instant,
    within: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {} // the server's SETTINGS frame, say
        }
    }
}

#[tokio::test]
async fn a_connection_that_sends_no_request_is_closed_after_ten_seconds_on_both_listeners() {
    let app = TestApp::spawn_with(|config| config.serve.http_listen = Some(any_port())).await;
    let http = app.http.expect("http side door");
    let opened = Instant::now();
    let mut silent = TcpStream::connect(app.addr).await.expect("connect");
    let mut preface_only = TcpStream::connect(app.addr).await.expect("connect");
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    let mut half_request = TcpStream::connect(http).await.expect("connect");
    half_request
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a head");
    // A client that asked for something in time is served as usual meanwhile.
    let mut working = TcpStream::connect(http).await.expect("connect");
    working
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("a request");
    let mut answer = [0u8; 12];
    working.read_exact(&mut answer).await.expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    for stream in [&mut silent, &mut preface_only, &mut half_request] {
        let took = closed_within(stream, opened, Duration::from_secs(14))
            .await
            .expect("closed by the server");
        assert!(took >= Duration::from_secs(8), "closed too early: {took:?}");
    }
}

#[tokio::test]
async fn connections_past_max_connections_are_closed_at_once() {
    let app = TestApp::spawn_with(|config| config.serve.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    let mut fourth = TcpStream::connect(app.addr)
        .await
        .expect("the kernel accepts");
    let took = closed_within(&mut fourth, Instant::now(), Duration::from_secs(3))
        .await
        .expect("the fourth is closed at once");
    assert!(took < Duration::from_secs(3));
    // A place given back is reused: a real call gets through.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut auth = bookstore_contract::proto::auth::auth_service_client::AuthServiceClient::new(
            app.channel().await,
        );
        let jwks = auth
            .get_jwks(bookstore_contract::proto::auth::GetJwksRequest {})
            .await;
        if jwks.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed: {jwks:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_open_file_soft_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().expect("dir");
    let db = database_url(dir.path());
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -Hn 20000 && ulimit -Sn 256 && exec "$@""#)
        .arg("bash")
        .arg(binary())
        .args(["--listen", "127.0.0.1:0", "--database-url", &db])
        .stderr(Stdio::null())
        .spawn()
        .expect("start auth-service");
    let limits = format!("/proc/{}/limits", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let soft = loop {
        let text = std::fs::read_to_string(&limits).unwrap_or_default();
        let soft = text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<u64>().ok());
        if soft == Some(20000) || Instant::now() > deadline {
            break soft;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(soft, Some(20000));
}
