//! Dev-only helpers for the integration tests of every crate: request builders, status
//! assertions, a service binary as a child process, the forgery table ([`forgery`]) and the
//! constants tests share. Never a dependency of a shipped binary (the soak, a test tool, uses it).

pub mod database;
pub mod forgery;
pub mod otlp;
pub mod pki;
pub mod postgres;

use std::{net::SocketAddr, path::Path};

pub use bookstore_kit::storage::sqlite_url;
use bookstore_kit::App;
pub use database::database_url;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, Status};

/// A password every policy accepts.
pub const PASSWORD: &str = "a sufficiently long passphrase";

/// A service running in this process on its own task, as `main` runs it. Dropping it aborts
/// the task; [`Server::stop`] shuts it down the graceful way (health, drain, close).
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its HTTP side door listens, if it has one.
    pub http: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// Runs `app` until [`Server::stop`] (or drop).
    pub fn start(app: App) -> Server {
        let addr = app.local_addr();
        let http = app.http_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            http,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully and waits; panics if serving failed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The workspace binary `name` (`target/<profile>/<name>`, beside the test executables in
/// `target/<profile>/deps/`). Cargo builds a package's binaries for that package's own
/// integration tests only, so a test of another crate needs `cargo build --bins` to have run
/// (the README's test command does it); a missing binary panics saying so.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace --bins` before these tests",
        binary.display()
    );
    binary
}

/// An HTTP/1.1 answer: status, header block (lower-cased names) and body.
#[derive(Debug)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// The header lines, lower-cased.
    pub headers: String,
    /// The body.
    pub body: String,
}

/// Sends `method path` over plain HTTP/1.1 to `addr` (one request, `Connection: close`), the
/// way curl or a Prometheus scraper would.
pub async fn http_request(addr: SocketAddr, method: &str, path: &str) -> HttpAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the HTTP side door");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    HttpAnswer {
        status,
        headers: head.to_lowercase(),
        body: body.to_string(),
    }
}

/// Loopback with a port the kernel picks: the listen address of every in-process test server.
pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A loopback port free right now (bound, read, released): for a process that must be told
/// its port before it starts.
pub fn any_port_number() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `message` with `authorization: Bearer <token>` metadata.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    with_authorization(message, &format!("Bearer {token}"))
}

/// `message` with the raw `authorization` value (left out if it is not valid metadata).
pub fn with_authorization<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(v) = value.parse() {
        request.metadata_mut().insert("authorization", v);
    }
    request
}

/// `message` with one `authorization: Bearer <token>` entry per token, in order.
pub fn with_bearers<T>(message: T, tokens: &[&str]) -> Request<T> {
    let mut request = Request::new(message);
    for token in tokens {
        let value = format!("Bearer {token}")
            .parse()
            .expect("a JWT is valid metadata");
        request.metadata_mut().append("authorization", value);
    }
    request
}

/// The ErrorInfo reason of `status` (empty when it has none).
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Calls `call` until it fails with UNAUTHENTICATED, reason `TOKEN_REVOKED`, polling every
/// 20 ms; panics if that takes longer than `within`. Returns how long it took.
pub async fn until_revoked<T, F, Fut>(
    within: std::time::Duration,
    mut call: F,
) -> std::time::Duration
where
    T: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let start = std::time::Instant::now();
    loop {
        let result = call().await;
        if let Err(status) = &result {
            if status.code() == Code::Unauthenticated && reason(status) == "TOKEN_REVOKED" {
                return start.elapsed();
            }
        }
        assert!(
            start.elapsed() < within,
            "not refused as revoked within {within:?}; last answer: {result:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Asserts `result` failed with `code`, returning the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(v) => panic!("expected {code:?}, got OK: {v:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// A service binary run as a child process (for kill -9 and SIGTERM tests). It listens on an
/// ephemeral port that is read back from its JSON log line `"... listening"` (field `addr`).
#[derive(Debug)]
pub struct ChildService {
    /// The process.
    pub child: std::process::Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// Every stderr line (JSON log events) so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ChildService {
    /// Starts `binary` with `args` (which should include `--listen 127.0.0.1:0`) and waits for
    /// its listening log line.
    pub fn start(binary: &std::path::Path, args: &[&str]) -> ChildService {
        Self::start_with_env(binary, args, &[])
    }

    /// Like [`ChildService::start`], with extra environment variables.
    pub fn start_with_env(
        binary: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ChildService {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the service exited before listening")
                .expect("a log line");
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("listening"))
            {
                break event["addr"].as_str().expect("addr field").to_string();
            }
        };
        // Keep draining the log (so the child never blocks on a full pipe), and keep it.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        ChildService { child, addr, log }
    }

    /// The log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits up to 10 s for the log lines so far to satisfy `wanted`, and returns them (also
    /// when time runs out, for the test's assertion message). A service writes its log through
    /// a non-blocking writer, so a call's line may arrive after its response; on a loaded
    /// machine a fixed sleep is not enough.
    pub async fn wait_for_log(&self, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let lines = self.log_lines();
            if wanted(&lines) || tokio::time::Instant::now() >= deadline {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// [`ChildService::wait_for_log`] for one line containing `text`.
    pub async fn wait_for_log_containing(&self, text: &str) -> Vec<String> {
        self.wait_for_log(|lines| lines.iter().any(|line| line.contains(text)))
            .await
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        self.child.wait().expect("wait").code()
    }
}

impl Drop for ChildService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
