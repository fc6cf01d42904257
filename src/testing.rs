//! Small helpers both services' integration tests use (feature `test-support`).

use tonic::{Code, Request, Status};

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
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(binary)
            .args(args)
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
