//! The `bookstore` binary end to end: `bookstore up` on ephemeral ports, and every client
//! command run as a user would, with a private config dir.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use bookstore_testkit::PASSWORD;

/// `bookstore up` on ephemeral ports with its data in `data`, plus `extra` arguments.
fn up_command(data: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bookstore"));
    command
        .args([
            "up",
            "--auth-listen",
            "127.0.0.1:0",
            "--book-listen",
            "127.0.0.1:0",
            "--auth-http-listen",
            "127.0.0.1:0",
            "--book-http-listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .args(extra);
    command
}

/// A running `bookstore up` and a private config dir for the client commands.
struct Up {
    child: Child,
    auth_url: String,
    book_url: String,
    web_url: String,
    config: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Up {
    fn start() -> Up {
        Self::start_with(&[])
    }

    /// `bookstore up` with `extra` arguments (such as `--tls`).
    fn start_with(extra: &[&str]) -> Up {
        let data = tempfile::tempdir().expect("data dir");
        let mut child = up_command(data.path(), extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bookstore up");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut url = |service: &str| loop {
            let line = lines
                .next()
                .expect("bookstore up exited early")
                .expect("line");
            if let Some(rest) = line.trim().strip_prefix(service) {
                break rest.trim().to_string();
            }
        };
        let auth_url = url("auth-service");
        let book_url = url("book-service");
        let web_url = url("bookshelf");
        std::thread::spawn(move || lines.for_each(drop));
        Up {
            child,
            auth_url,
            book_url,
            web_url,
            config: tempfile::tempdir().expect("config dir"),
            _data: data,
        }
    }

    /// Runs `bookstore args...` with `stdin`.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bookstore"));
        command
            .args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("BOOKSTORE_AUTH_URL", &self.auth_url)
            .env("BOOKSTORE_BOOK_URL", &self.book_url);
        // The local CA only where `up --tls` made one: a CA with an http:// URL is an error.
        let ca = self._data.path().join("tls").join("ca.pem");
        if ca.exists() {
            command.env("BOOKSTORE_CA_CERT", ca);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run bookstore");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("output")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that must fail with exactly one line on stderr; returns that line.
    fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    fn session_file(&self) -> PathBuf {
        self.config.path().join("bookstore").join("session.json")
    }

    /// Registers and logs in `name`, then waits (bounded) until book-service serves.
    fn logged_in(&self, name: &str) {
        let out = self.run(
            &["register", name, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.run(
            &["login", name, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.run(&["books", "list"], "").status.success() {
            assert!(Instant::now() < deadline, "book-service never served");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(mut self) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        self.child.wait().expect("wait").code()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn register_login_books_and_logout_work_from_the_command_line() {
    let up = Up::start();
    up.logged_in("alice");
    assert_eq!(up.ok(&["whoami"]).trim(), "alice");
    let mode = std::fs::metadata(up.session_file())
        .expect("session file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let added = json(&up.ok(&[
        "books",
        "add",
        "--title",
        "The Dispossessed",
        "--author",
        "Ursula K. Le Guin",
        "--publisher",
        "Harper",
        "--price",
        "12.50",
        "--isbn",
        "0-06-051275-X",
        "--json",
    ]));
    assert_eq!(added["priceCents"], "1250");
    assert_eq!(added["isbn"], "9780060512750");
    let id = added["id"].as_str().expect("id").to_string();
    up.ok(&[
        "books",
        "add",
        "--title",
        "Solaris",
        "--author",
        "Stanisław Lem",
        "--price",
        "9",
    ]);

    let table = up.ok(&["books", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("ID")
            && lines[1].contains("The Dispossessed")
            && lines[2].contains("Solaris")
    );
    assert_eq!(
        lines[0].find("TITLE"),
        lines[1].find("The Dispossessed"),
        "aligned:\n{table}"
    );

    let listed = json(&up.ok(&["books", "list", "--author", "ursula k. le guin", "--json"]));
    assert_eq!(listed["totalSize"], 1);
    assert_eq!(listed["books"][0]["id"], id.as_str());

    let updated = json(&up.ok(&["books", "update", &id, "--price", "10", "--json"]));
    assert_eq!(updated["priceCents"], "1000");
    assert_eq!(updated["title"], "The Dispossessed");
    let got = json(&up.ok(&["books", "get", &id, "--json"]));
    assert_eq!(got["etag"], updated["etag"]);

    up.ok(&["books", "rm", &id]);
    let line = up.fails(&["books", "get", &id], "");
    assert!(line.contains("NotFound"), "{line}");

    let out = up.ok(&["logout"]);
    assert!(
        out.contains("auth-service: the access token is refused"),
        "{out}"
    );
    assert!(
        out.contains("book-service: the access token is refused"),
        "{out}"
    );
    assert!(!up.session_file().exists());
    let line = up.fails(&["whoami"], "");
    assert!(line.contains("bookstore login"), "{line}");
    assert_eq!(
        up.stop(),
        Some(0),
        "bookstore up drains and exits 0 on SIGTERM"
    );
}

#[test]
fn bad_input_gets_one_clear_line_and_changes_nothing() {
    let up = Up::start();
    let line = up.fails(&["books", "list"], "");
    assert!(
        line.contains("not logged in") && line.contains("bookstore login"),
        "{line}"
    );
    let line = up.fails(&["register", "bob", "--password-stdin"], "short\n");
    assert!(line.contains("password") && line.contains("12"), "{line}");
    let line = up.fails(
        &["login", "bob", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(line.contains("invalid username or password"), "{line}");

    up.logged_in("carol");
    let line = up.fails(
        &[
            "books",
            "add",
            "--title",
            "T",
            "--author",
            "A",
            "--price",
            "1",
            "--isbn",
            "978-0-306-40615-8",
        ],
        "",
    );
    assert!(
        line.contains("book.isbn") && line.contains("check digit"),
        "{line}"
    );
    let line = up.fails(
        &[
            "books", "add", "--title", " ", "--author", " ", "--price", "1",
        ],
        "",
    );
    assert!(
        line.contains("book.title") && line.contains("book.author"),
        "{line}"
    );
    let line = up.fails(
        &[
            "books", "add", "--title", "T", "--author", "A", "--price", "12.345",
        ],
        "",
    );
    assert!(line.contains("price"), "{line}");
    let line = up.fails(&["books", "update", "not-a-book", "--price", "1"], "");
    assert!(line.contains("NotFound"), "{line}");
    assert_eq!(
        json(&up.ok(&["books", "list", "--json"])).get("totalSize"),
        None,
        "no book was stored"
    );
}

#[test]
fn an_expired_access_token_is_refreshed_by_itself() {
    let up = Up::start();
    up.logged_in("dave");
    let path = up.session_file();
    let mut session = json(&std::fs::read_to_string(&path).expect("session"));
    let refresh_before = session["refresh_token"].clone();
    session["access_expires_at"] = 0.into();
    std::fs::write(&path, session.to_string()).expect("write session");
    assert_eq!(up.ok(&["whoami"]).trim(), "dave");
    let after = json(&std::fs::read_to_string(&path).expect("session"));
    assert_ne!(after["refresh_token"], refresh_before, "rotated");
    assert!(after["access_expires_at"].as_i64().expect("number") > 0);
}

#[test]
fn two_commands_at_once_with_an_expired_token_refresh_it_once_and_stay_logged_in() {
    let up = Up::start();
    up.logged_in("erin");
    let path = up.session_file();
    for round in 0..12 {
        let mut session = json(&std::fs::read_to_string(&path).expect("session"));
        session["access_expires_at"] = 0.into();
        std::fs::write(&path, session.to_string()).expect("write session");
        let outputs: Vec<Output> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| up.run(&["whoami"], "")))
                .collect();
            runs.into_iter()
                .map(|r| r.join().expect("a command"))
                .collect()
        });
        for out in outputs {
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "erin");
        }
    }
    assert_eq!(up.ok(&["whoami"]).trim(), "erin", "still logged in");
}

/// The claims of a JWT, without verifying it (the services do that).
fn claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[test]
fn token_prints_a_narrowed_token_and_client_credentials_make_the_commands_act_as_a_client() {
    let up = Up::start();
    up.logged_in("fiona");
    let narrowed = up.ok(&["token", "--scopes", "books:read"]);
    assert_eq!(claims(narrowed.trim())["scope"], "books:read");
    let full = up.ok(&["token"]);
    assert_eq!(claims(full.trim())["scope"], "books:read books:write");
    assert_eq!(
        up.ok(&["whoami"]).trim(),
        "fiona",
        "the session still works"
    );
    let refused = up.fails(&["token", "--scopes", "users:read"], "");
    assert!(refused.contains("scopes"), "{refused}");

    // A service client made with auth-service's `clients create`, used through the environment.
    let created = Command::new(bookstore_testkit::workspace_binary("auth-service"))
        .args([
            "clients",
            "create",
            "importer",
            "--scopes",
            "books:read books:write",
        ])
        .env(
            "AUTH_DATABASE_URL",
            format!("sqlite://{}", up._data.path().join("auth.db").display()),
        )
        .output()
        .expect("clients create");
    assert!(created.status.success());
    let created = String::from_utf8_lossy(&created.stdout).into_owned();
    let value = |label: &str| {
        created
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .expect("a labelled line")
            .to_string()
    };
    let (id, secret) = (value("client_id: "), value("client_secret: "));
    let as_client = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bookstore"))
            .args(args)
            .env("XDG_CONFIG_HOME", up.config.path())
            .env("BOOKSTORE_AUTH_URL", &up.auth_url)
            .env("BOOKSTORE_BOOK_URL", &up.book_url)
            .env("BOOKSTORE_CLIENT_ID", &id)
            .env("BOOKSTORE_CLIENT_SECRET", &secret)
            .output()
            .expect("run bookstore")
    };
    let token = as_client(&["token"]);
    assert!(token.status.success());
    assert_eq!(
        claims(String::from_utf8_lossy(&token.stdout).trim())["client_id"],
        id.as_str()
    );
    let added = as_client(&[
        "books",
        "add",
        "--title",
        "Imported",
        "--author",
        "A. Client",
        "--price",
        "1",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let listed = as_client(&["books", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("Imported"));
    assert!(
        !up.ok(&["books", "list"]).contains("Imported"),
        "the client's books are its own"
    );
}

#[test]
fn login_never_writes_through_a_planted_symlink_and_keeps_its_directory_private() {
    use std::os::unix::fs::symlink;
    let up = Up::start();
    let dir = up.session_file().parent().expect("dir").to_path_buf();
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let victim = up.config.path().join("victim.txt");
    std::fs::write(&victim, "do not touch").expect("victim");
    symlink(&victim, up.session_file()).expect("symlink");
    // The old fixed temporary name, planted too: a random fresh name is used instead.
    symlink(&victim, dir.join("session.json.tmp")).expect("symlink");

    up.logged_in("symlinked");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "do not touch"
    );
    let meta = std::fs::symlink_metadata(up.session_file()).expect("session");
    assert!(
        meta.file_type().is_file(),
        "the symlink was replaced, not followed"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir_mode = std::fs::metadata(&dir).expect("dir").permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
}

#[test]
fn up_with_tls_makes_a_local_ca_once_and_the_client_commands_use_it() {
    let up = Up::start_with(&["--tls"]);
    assert!(
        up.auth_url.starts_with("https://localhost:"),
        "{}",
        up.auth_url
    );
    assert!(
        up.book_url.starts_with("https://localhost:"),
        "{}",
        up.book_url
    );
    let tls = up._data.path().join("tls");
    let ca = std::fs::read(tls.join("ca.pem")).expect("ca.pem");
    let key_mode = std::fs::metadata(tls.join("server-key.pem"))
        .expect("server key")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    up.logged_in("tlsuser");
    let out = up.ok(&[
        "books", "add", "--title", "Over TLS", "--author", "A. Uthor", "--price", "1",
    ]);
    assert!(out.contains("Over TLS"), "{out}");
    assert_eq!(up.stop(), Some(0));

    // A second run keeps the same CA (clients that trust it keep working).
    let data = tempfile::tempdir().expect("data");
    let again = |dir: &std::path::Path| {
        let mut child = up_command(dir, &["--tls"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("up");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let printed: Vec<String> = (0..8).filter_map(|_| lines.next()?.ok()).collect();
        let _ = child.kill();
        let _ = child.wait();
        printed.join("\n")
    };
    let first = again(data.path());
    assert!(first.contains("grpcurl -cacert"), "{first}");
    let ca_first = std::fs::read(data.path().join("tls").join("ca.pem")).expect("ca");
    again(data.path());
    let ca_second = std::fs::read(data.path().join("tls").join("ca.pem")).expect("ca");
    assert_eq!(ca_first, ca_second, "the CA is kept across runs");
    assert_ne!(ca, ca_first, "each data dir has its own CA");

    // Half a setup is never completed by overwriting: up says what is missing and stops.
    std::fs::remove_file(data.path().join("tls").join("server.pem")).expect("remove");
    let out = up_command(data.path(), &["--tls"]).output().expect("up");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.pem"), "{stderr}");
    assert_eq!(
        std::fs::read(data.path().join("tls").join("ca.pem")).expect("ca"),
        ca_first,
        "the CA is untouched"
    );
}

// Several threads: the OTLP receiver must answer while this test waits on the processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_command_is_one_span_whose_trace_the_services_join() {
    use bookstore_testkit::otlp::Receiver;
    let (receiver, otlp) = Receiver::start().await;
    let data = tempfile::tempdir().expect("data");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut child = up_command(data.path(), &[])
        .envs(env)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("up");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut url = |service: &str| loop {
        let line = lines.next().expect("up exited").expect("line");
        if let Some(rest) = line.trim().strip_prefix(service) {
            break rest.trim().to_string();
        }
    };
    let auth_url = url("auth-service");
    std::thread::spawn(move || lines.for_each(drop));

    let out = Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .args(["register", "traced", "--password-stdin"])
        .env("BOOKSTORE_AUTH_URL", &auth_url)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(format!("{PASSWORD}\n").as_bytes())?;
            c.wait_with_output()
        })
        .expect("register");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (_, command) = receiver
        .wait_for(Duration::from_secs(10), |service, span| {
            service == "bookstore" && span.name == "bookstore register"
        })
        .await;
    let (_, server) = receiver
        .wait_for(Duration::from_secs(10), |_, span| {
            span.name == "bookstore.auth.v1.AuthService/Register"
                && span.trace_id == command.trace_id
        })
        .await;
    assert_eq!(server.parent_span_id, command.span_id);
    let _ = child.kill();
    let _ = child.wait();
}

/// One HTTP/1.1 exchange with `url`'s host: `request` (a request line and headers) sent as is,
/// the whole answer returned.
fn http(url: &str, request: &str) -> String {
    use std::io::Read;
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = std::net::TcpStream::connect(&host).expect("connect");
    let request = format!("{request}\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn up_serves_the_page_and_lets_its_origin_call_both_services() {
    let up = Up::start();
    let page = http(&up.web_url, "GET / HTTP/1.1");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<table id=\"books\">"), "{page}");
    assert!(
        page.to_lowercase().contains("content-security-policy:"),
        "{page}"
    );
    let config = http(&up.web_url, "GET /config.json HTTP/1.1");
    assert!(
        config.contains(&format!("\"auth_url\":\"{}\"", up.auth_url)),
        "{config}"
    );
    assert!(
        config.contains(&format!("\"book_url\":\"{}\"", up.book_url)),
        "{config}"
    );
    let script = http(&up.web_url, "GET /app.js HTTP/1.1");
    assert!(
        script
            .to_lowercase()
            .contains("content-type: text/javascript"),
        "{script}"
    );

    let origin = up.web_url.trim_end_matches('/');
    for service in [&up.auth_url, &up.book_url] {
        let allowed = http(
            service,
            &format!(
                "OPTIONS /bookstore.auth.v1.AuthService/Login HTTP/1.1\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: POST"
            ),
        )
        .to_lowercase();
        assert!(
            allowed.contains(&format!("access-control-allow-origin: {origin}")),
            "{allowed}"
        );
        let refused = http(
            service,
            "OPTIONS /bookstore.auth.v1.AuthService/Login HTTP/1.1\r\nOrigin: http://elsewhere.example\r\n\
             Access-Control-Request-Method: POST",
        )
        .to_lowercase();
        assert!(refused.starts_with("http/1.1 403"), "{refused}");
        assert!(!refused.contains("access-control-"), "{refused}");
    }
}
