//! The log under a flood: with the log output stalled and calls to made-up methods (with
//! 6,000-byte paths) pouring in, ordinary lines are dropped and counted, but every security
//! event still reaches the log, and no line carries more than 128 bytes of a made-up path.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Stdio},
    time::Duration,
};

use bookstore_contract::proto::auth::{auth_service_client::AuthServiceClient, LoginRequest};
use futures::future::join_all;
use tonic::transport::Channel;

use crate::helpers::{binary, database_url};

/// Calls `path` with an empty message: the server answers UNIMPLEMENTED.
async fn call_unknown(channel: Channel, path: String) {
    let mut grpc = tonic::client::Grpc::new(channel);
    if grpc.ready().await.is_err() {
        return;
    }
    let path = path.parse().expect("a valid path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let _ = grpc.unary(tonic::Request::new(()), path, codec).await;
}

#[tokio::test]
async fn security_events_reach_the_log_while_a_flood_of_ordinary_lines_is_dropped() {
    let dir = tempfile::tempdir().expect("dir");
    let db = database_url(dir.path());
    let mut child = Command::new(binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
        ])
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start auth-service");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    // Read up to the gRPC "listening" line, then stop reading: the pipe fills and the log
    // writer stalls, as it does behind a slow disk or a stuck log shipper.
    let (mut grpc, mut http) = (None, None);
    let mut line = String::new();
    while grpc.is_none() {
        line.clear();
        assert!(stderr.read_line(&mut line).expect("read") > 0, "exited");
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let message = event["message"].as_str().unwrap_or_default();
        if message.ends_with("HTTP side door listening") {
            http = event["addr"].as_str().map(str::to_string);
        } else if message.ends_with("listening") {
            grpc = event["addr"].as_str().map(str::to_string);
        }
    }
    let (grpc, http) = (grpc.expect("grpc addr"), http.expect("http addr"));
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let long = format!("/flood.Service/{}", "a".repeat(6000));
    let flood = |n: usize| {
        join_all((0..n).map(|_| call_unknown(channel.clone(), "/flood.Service/x".into())))
    };
    // A few made-up paths of 6,000 bytes, then enough ordinary lines to overflow the log
    // writer's buffer several times over.
    join_all((0..16).map(|_| call_unknown(channel.clone(), long.clone()))).await;
    for _ in 0..60 {
        flood(256).await;
    }
    let mut auth = AuthServiceClient::new(channel.clone());
    for i in 0..3 {
        let wrong = auth
            .login(LoginRequest {
                scopes: Vec::new(),
                username: format!("victim{i}"),
                password: "a wrong password".into(),
            })
            .await;
        assert!(wrong.is_err());
        flood(256).await;
    }
    // The drops are counted where Prometheus reads them.
    let metrics = reqwest_metrics(&http).await;
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bookstore_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("bookstore_log_lines_dropped_total");
    assert!(
        dropped > 0.0,
        "nothing dropped: the flood did not stall the log"
    );
    // Now read the whole log: stop the service (SIGTERM flushes what is held).
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    let _ = child.wait();
    let failed = rest
        .lines()
        .filter(|l| l.contains("\"event\":\"login_failed\""))
        .count();
    assert_eq!(failed, 3, "login_failed events lost");
    assert!(rest.contains("lines dropped"), "drops not reported");
    let longest = rest
        .lines()
        .filter(|l| l.contains("flood.Service"))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        longest < 600,
        "a line carried the made-up path: {longest} bytes"
    );
}

/// GET /metrics on the HTTP side door at `addr`, over a plain socket.
async fn reqwest_metrics(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut body))
        .await
        .expect("in time")
        .expect("read");
    body
}
