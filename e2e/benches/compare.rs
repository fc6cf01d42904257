//! The services against what tonic itself can do, in one run:
//!
//! ```sh
//! cargo build --release --bins && cargo bench -p bookstore-e2e --bench compare [-- OPTIONS]
//! ```
//!
//! Starts a bare tonic "echo" server (grpc.health.v1 Check on a server with the services' own
//! limits, [`bookstore_kit::server::limits`], and nothing else) and the real `auth-service` and
//! `book-service` binaries as separate processes on SQLite (and again on PostgreSQL when
//! `BOOKSTORE_TEST_POSTGRES` names a server), drives each with the same tonic client (an
//! hdrhistogram per figure) and prints calls/s, p50, p99 and the ratio each target is stated in:
//! to the echo (taken in turns with the figure, the echo server kept running: this VM's speed
//! drifts within seconds), deep page to first page, CreateBook at 64 in flight to 1, Login to
//! the raw argon2id rate of the cores, GetBook p99 during a login storm to unloaded; GetBook and
//! ListBooks(50) once more on a bare tonic server that answers with book-service's own answers
//! and does nothing else (`the same on tonic alone`: how far any implementation could go, on
//! the SQLite run); then each service's peak RSS (auth-service's after 64 logins at once), and
//! what the per-call log line costs (GetBook and Health/Check on two more book-services alike
//! but for `RUST_LOG=warn`, in turns). The services run as users run them (`RUST_LOG` unset:
//! `info`).
//!
//! Options: `--quick` (a tenth of the calls: CI runs it so, to prove it runs; it asserts no
//! speed), `--connections N` (HTTP/2 connections per target, default 1), `--in-flight N` (calls
//! in flight for the echo, Health/Check and GetBook figures, default 64; CreateBook and Login
//! keep the concurrencies their targets name), `--pin` (servers on
//! core 0, this client on core 1, with `taskset`), `--bin-dir DIR` (where the service binaries
//! are, relative to the workspace root; default `target/release`).

use std::{
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bookstore_contract::proto::{
    auth::{auth_service_client::AuthServiceClient, LoginRequest, RegisterRequest},
    book::{
        book_service_client::BookServiceClient,
        book_service_server::{BookService, BookServiceServer},
        Book, CreateBookRequest, CreateBookResponse, DeleteBookRequest, DeleteBookResponse,
        GetBookRequest, GetBookResponse, ListBooksRequest, ListBooksResponse, UpdateBookRequest,
        UpdateBookResponse,
    },
};
use bookstore_testkit::{any_port_number, bearer, database, PASSWORD};
use hdrhistogram::Histogram;
use prost::Message;
use tonic::{transport::Channel, Request, Response, Status};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// What the command line asked for.
#[derive(Clone)]
struct Options {
    /// Divides every call count by ten.
    quick: bool,
    /// HTTP/2 connections per target.
    connections: usize,
    /// Servers on core 0, the client on core 1.
    pin: bool,
    /// Calls in flight for the echo, Health/Check and GetBook figures.
    in_flight: usize,
    /// Where `auth-service` and `book-service` are.
    bin_dir: PathBuf,
}

impl Options {
    fn parse() -> Options {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut options = Options {
            quick: false,
            connections: 1,
            pin: false,
            in_flight: 64,
            bin_dir: root.join("target/release"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--pin" => options.pin = true,
                "--in-flight" => options.in_flight = count(&mut args, "--in-flight"),
                "--connections" => options.connections = count(&mut args, "--connections"),
                // Relative to the workspace root (cargo runs benches in the package's folder).
                "--bin-dir" => options.bin_dir = root.join(args.next().expect("--bin-dir DIR")),
                _ => {} // `cargo bench` adds `--bench`
            }
        }
        options
    }

    /// `full` calls, or a tenth of them with `--quick`.
    fn calls(&self, full: usize) -> usize {
        if self.quick {
            (full / 10).max(8)
        } else {
            full
        }
    }

    /// A server process, on core 0 with `--pin`.
    fn command(&self, program: &std::path::Path) -> Command {
        if self.pin {
            let mut command = Command::new("taskset");
            command.args(["-c", "0"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

/// A new log file for a `binary` process in `dir`.
fn log_file(dir: &tempfile::TempDir, binary: &str, made: &AtomicUsize) -> std::fs::File {
    let n = made.fetch_add(1, Ordering::Relaxed);
    std::fs::File::create(dir.path().join(format!("{binary}-{n}.log"))).expect("a log file")
}

/// The count N after an `option N` on the command line (at least 1).
fn count(args: &mut impl Iterator<Item = String>, option: &str) -> usize {
    args.next()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| panic!("{option} N (N ≥ 1)"))
}

/// One measured figure: calls, the time they took, their latencies.
struct Figure {
    calls: usize,
    seconds: f64,
    histogram: Histogram<u64>,
}

impl Figure {
    /// No calls yet, to [`Figure::add`] turns to.
    fn empty() -> Figure {
        Figure {
            calls: 0,
            seconds: 0.0,
            histogram: Histogram::new(3).expect("histogram"),
        }
    }

    /// This figure and `turn` as one: the calls of both over the time of both.
    fn add(mut self, turn: Figure) -> Figure {
        self.calls += turn.calls;
        self.seconds += turn.seconds;
        self.histogram.add(turn.histogram).expect("merge");
        self
    }

    fn per_second(&self) -> f64 {
        self.calls as f64 / self.seconds
    }

    fn p50_ms(&self) -> f64 {
        self.histogram.value_at_quantile(0.50) as f64 / 1000.0
    }

    fn p99_ms(&self) -> f64 {
        self.histogram.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// Prints a figure's line, with `ratio` (what the target is stated in) when there is one.
fn report(label: &str, figure: &Figure, ratio: Option<(&str, f64)>) {
    let ratio = ratio.map_or(String::new(), |(what, r)| format!("  {r:>6.2} {what}"));
    println!(
        "{label:<44} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms{ratio}",
        figure.per_second(),
        figure.p50_ms(),
        figure.p99_ms()
    );
}

/// How many turns the figures compared "in turns" take: each side of such a ratio is measured
/// in this many slices, alternating, so that both see the same drift of this shared VM (its
/// speed moves by several percent within seconds).
const TURNS: usize = 8;

/// Two figures measured in [`TURNS`] alternating turns: `a(calls)` for a share of `a_total`
/// calls, then `b(calls)` for a share of `b_total`, and again, so that both sides of a ratio see
/// the same drift of the machine.
async fn in_turns<A, B>(
    a_total: usize,
    a: impl Fn(usize) -> A,
    b_total: usize,
    b: impl Fn(usize) -> B,
) -> (Figure, Figure)
where
    A: Future<Output = Figure>,
    B: Future<Output = Figure>,
{
    let (mut a_figure, mut b_figure) = (Figure::empty(), Figure::empty());
    for _ in 0..TURNS {
        a_figure = a_figure.add(a(a_total / TURNS).await);
        b_figure = b_figure.add(b(b_total / TURNS).await);
    }
    (a_figure, b_figure)
}

/// The echo beside a figure: its channels, how many calls it keeps in flight, and how many it
/// makes in all beside one figure (the same for every figure, so that a figure of few calls
/// does not get an echo of slices too short to reach its rate).
struct Echo<'a> {
    channels: &'a [Channel],
    in_flight: usize,
    calls: usize,
}

impl Echo<'_> {
    /// A figure of `total` calls, a `turn(calls)` at a time, measured [`in_turns`] with the
    /// echo's, reported as `label` with its ratio to the echo's rate beside it; returns it.
    async fn beside<Fut>(&self, label: &str, total: usize, turn: impl Fn(usize) -> Fut) -> Figure
    where
        Fut: Future<Output = Figure>,
    {
        let echo = |calls| health_checks(self.channels, calls, self.in_flight);
        let (echo, figure) = in_turns(self.calls, echo, total, turn).await;
        let ratio = figure.per_second() / echo.per_second();
        report(label, &figure, Some(("x echo", ratio)));
        figure
    }
}

/// `total` calls of `op`, `in_flight` at a time over `channels` (round-robin).
async fn drive<F, Fut>(channels: &[Channel], total: usize, in_flight: usize, op: F) -> Figure
where
    F: Fn(Channel, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (next, op, channels) = (next.clone(), op.clone(), channels.to_vec());
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).expect("histogram");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return histogram;
                    }
                    let call = Instant::now();
                    op(channels[i % channels.len()].clone(), i).await;
                    let micros = u64::try_from(call.elapsed().as_micros()).unwrap_or(u64::MAX);
                    histogram.record(micros.max(1)).expect("record");
                }
            })
        })
        .collect();
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    for task in tasks {
        histogram
            .add(task.await.expect("load task"))
            .expect("merge");
    }
    Figure {
        calls: total,
        seconds: started.elapsed().as_secs_f64(),
        histogram,
    }
}

/// A child process, killed when dropped.
struct Process(Child);

impl Process {
    /// Peak resident set size so far (`VmHWM`), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .ok()
            .and_then(|status| {
                status.lines().find_map(|line| {
                    let kib = line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?;
                    kib.trim().parse::<f64>().ok()
                })
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `count` channels to `addr`, once it reports SERVING.
async fn channels(addr: SocketAddr, count: usize) -> Vec<Channel> {
    let url = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let serving = match Channel::from_shared(url.clone())
            .expect("url")
            .connect()
            .await
        {
            Ok(channel) => HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32),
            Err(_) => false,
        };
        if serving {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} did not serve within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut channels = Vec::new();
    for _ in 0..count {
        channels.push(
            Channel::from_shared(url.clone())
                .expect("url")
                .connect()
                .await
                .expect("connect"),
        );
    }
    channels
}

/// Health/Check calls: the same tiny unary call on any of our servers.
async fn health_checks(channels: &[Channel], total: usize, in_flight: usize) -> Figure {
    drive(channels, total, in_flight, |channel, _| async move {
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .expect("health check");
    })
    .await
}

/// `hashes` argon2id hashes with the service's parameters, one thread per core, as a figure
/// (its latencies are not kept).
fn raw_argon2(hashes: usize) -> Figure {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_core = hashes.div_ceil(cores);
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            std::thread::spawn(move || {
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    auth_service::password::params(),
                );
                let mut out = [0u8; 32];
                for i in 0..per_core {
                    argon
                        .hash_password_into(PASSWORD.as_bytes(), &[i as u8; 16], &mut out)
                        .expect("argon2");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("argon2 thread");
    }
    Figure {
        calls: cores * per_core,
        seconds: started.elapsed().as_secs_f64(),
        ..Figure::empty()
    }
}

/// Starts both services on `auth_db` and `book_db`, measures them, stops them; with `bare`, also
/// GetBook and ListBooks on the bare server ([`Bare`]) with the answers book-service gave.
async fn services(
    backend: &str,
    auth_db: &str,
    book_db: &str,
    echo: &Echo<'_>,
    options: &Options,
    bare: bool,
) {
    println!("\n-- the services on {backend}");
    let (auth_port, book_port) = (any_port_number(), any_port_number());
    let auth_addr = SocketAddr::from(([127, 0, 0, 1], auth_port));
    let book_addr = SocketAddr::from(([127, 0, 0, 1], book_port));
    // Each service's log goes to a file of its own, as an operator's would (a file, or the
    // journal): a real write per batch of lines, which `/dev/null` would hide.
    let logs = tempfile::tempdir().expect("temp dir");
    let log_files = AtomicUsize::new(0);
    // `log_level`: `RUST_LOG` for the service; `None` leaves it unset (`info`, as users run it).
    let spawn = |binary: &str, args: &[&str], log_level: Option<&str>| {
        let path = options.bin_dir.join(binary);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --release --bins` first (or pass --bin-dir)",
            path.display()
        );
        let mut command = options.command(&path);
        command.env_remove("RUST_LOG");
        if let Some(level) = log_level {
            command.env("RUST_LOG", level);
        }
        Process(
            command
                .args(args)
                .stdout(Stdio::null())
                .stderr(log_file(&logs, binary, &log_files))
                .spawn()
                .expect("start a service"),
        )
    };
    let auth_listen = auth_addr.to_string();
    let auth = spawn(
        "auth-service",
        &["--listen", &auth_listen, "--database-url", auth_db],
        None,
    );
    let auth_channels = channels(auth_addr, options.connections).await;
    let auth_url = format!("http://{auth_addr}");
    // book-service's service client (revocations:watch), as `bookstore up` provisions it.
    let secrets = tempfile::tempdir().expect("temp dir");
    let secret_file = secrets.path().join("book-service.secret");
    let secret_path = secret_file.display().to_string();
    let ensured = options
        .command(&options.bin_dir.join("auth-service"))
        .env("AUTH_DATABASE_URL", auth_db)
        .args([
            "clients",
            "ensure",
            "book-service",
            "--scopes",
            "revocations:watch",
        ])
        .args(["--secret-file", &secret_path])
        .stdout(Stdio::null())
        .status()
        .expect("run auth-service clients ensure");
    assert!(ensured.success(), "clients ensure failed");
    let credentials = [
        "--auth-client-id",
        "book-service",
        "--auth-client-secret-file",
        &secret_path,
    ];
    let book_listen = book_addr.to_string();
    let mut book_args = vec![
        "--listen",
        &book_listen,
        "--database-url",
        book_db,
        "--auth-url",
        &auth_url,
    ];
    book_args.extend(credentials);
    let book = spawn("book-service", &book_args, None);
    let book_channels = channels(book_addr, options.connections).await;

    let mut client = AuthServiceClient::new(auth_channels[0].clone());
    client
        .register(RegisterRequest {
            username: "bench".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("register");
    let login = || LoginRequest {
        scopes: Vec::new(),
        username: "bench".into(),
        password: PASSWORD.into(),
    };
    let token = client.login(login()).await.expect("login").into_inner();
    let token = Arc::new(token.access_token);

    let c = options.in_flight;
    echo.beside(
        &format!("Health/Check on book-service (c={c})"),
        options.calls(100_000),
        |calls| health_checks(&book_channels, calls, c),
    )
    .await;

    // CreateBook at 1, 8 and 64 in flight: how much group commit shares each fsync.
    let create = |in_flight: usize, total: usize| {
        let (channels, token) = (book_channels.clone(), token.clone());
        async move {
            drive(&channels, total, in_flight, move |channel, i| {
                let token = token.clone();
                async move {
                    let book = Book {
                        title: format!("Book {i}"),
                        author: "Bench".into(),
                        price_cents: 100,
                        ..Book::default()
                    };
                    let request = CreateBookRequest {
                        book: Some(book),
                        request_id: String::new(),
                    };
                    BookServiceClient::new(channel)
                        .create_book(bearer(request, &token))
                        .await
                        .expect("create");
                }
            })
            .await
        }
    };
    // c=1 follows the disk's fsync latency, which drifts: it and c=64 are taken in turns.
    let (one, sixty_four) = in_turns(
        options.calls(500),
        |calls| create(1, calls),
        options.calls(5_000),
        |calls| create(64, calls),
    )
    .await;
    report("CreateBook, durable (c=1)", &one, None);
    let eight = create(8, options.calls(2_000)).await;
    report("CreateBook, durable (c=8)", &eight, None);
    let ratio = sixty_four.per_second() / one.per_second();
    report(
        "CreateBook, durable (c=64)",
        &sixty_four,
        Some(("x c=1", ratio)),
    );

    let list = |page_token: String| {
        let token = token.clone();
        move |channel: Channel, _| {
            let (token, page_token) = (token.clone(), page_token.clone());
            async move {
                let request = ListBooksRequest {
                    page_size: 50,
                    page_token,
                    ..Default::default()
                };
                BookServiceClient::new(channel)
                    .list_books(bearer(request, &token))
                    .await
                    .expect("list");
            }
        }
    };
    let mut books = BookServiceClient::new(book_channels[0].clone());
    let mut deep = String::new();
    let mut id = String::new();
    for page in 0..98 {
        let request = ListBooksRequest {
            page_size: 50,
            page_token: deep,
            ..Default::default()
        };
        let answer = books
            .list_books(bearer(request, &token))
            .await
            .expect("list")
            .into_inner();
        if page == 0 {
            id = answer.books[0].id.clone();
        }
        deep = answer.next_page_token;
        if deep.is_empty() {
            break;
        }
    }
    echo.beside(
        "ListBooks(50), first page (c=16)",
        options.calls(5_000),
        |calls| drive(&book_channels, calls, 16, list(String::new())),
    )
    .await;
    if !deep.is_empty() {
        // Page 99 against page 1, in turns too.
        let calls = options.calls(5_000);
        let (near, far) = in_turns(
            calls,
            |calls| drive(&book_channels, calls, 16, list(String::new())),
            calls,
            |calls| drive(&book_channels, calls, 16, list(deep.clone())),
        )
        .await;
        let ratio = far.per_second() / near.per_second();
        report(
            "ListBooks(50), page 99 (c=16)",
            &far,
            Some(("x first page", ratio)),
        );
    }

    let get = |channels: Vec<Channel>, total: usize| {
        let (token, id) = (token.clone(), id.clone());
        async move {
            drive(&channels, total, c, move |channel, _| {
                let (token, id) = (token.clone(), id.clone());
                async move {
                    BookServiceClient::new(channel)
                        .get_book(bearer(GetBookRequest { id }, &token))
                        .await
                        .expect("get");
                }
            })
            .await
        }
    };
    let unloaded = echo
        .beside(
            &format!("GetBook, reused token (c={c})"),
            options.calls(100_000),
            |calls| get(book_channels.clone(), calls),
        )
        .await;

    if bare {
        // The same calls and answers on tonic alone: how much of the gap to the echo is ours.
        let mut books = BookServiceClient::new(book_channels[0].clone());
        let answers = Bare {
            get: books
                .get_book(bearer(GetBookRequest { id: id.clone() }, &token))
                .await
                .expect("get")
                .into_inner(),
            list: books
                .list_books(bearer(
                    ListBooksRequest {
                        page_size: 50,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("list")
                .into_inner(),
        };
        let file = logs.path().join("bare-answers");
        std::fs::write(&file, answers.encode()).expect("write the answers");
        let addr = SocketAddr::from(([127, 0, 0, 1], any_port_number()));
        let _bare = Process(
            options
                .command(&std::env::current_exe().expect("this executable"))
                .args(["--bare-book-server", &addr.to_string()])
                .arg(&file)
                .spawn()
                .expect("start the bare book server"),
        );
        let bare_channels = channels(addr, options.connections).await;
        echo.beside(
            &format!("  the same on tonic alone (c={c})"),
            options.calls(100_000),
            |calls| get(bare_channels.clone(), calls),
        )
        .await;
        echo.beside(
            "  ListBooks(50) on tonic alone (c=16)",
            options.calls(5_000),
            |calls| drive(&bare_channels, calls, 16, list(String::new())),
        )
        .await;
    }

    let logins_at = |in_flight: usize, total: usize| {
        drive(
            &auth_channels,
            total,
            in_flight,
            move |channel, _| async move {
                AuthServiceClient::new(channel)
                    .login(login())
                    .await
                    .expect("login");
            },
        )
    };
    // Against the raw rate in turns, over as many hashes.
    let (raw, logins) = in_turns(
        options.calls(256),
        |calls| async move { raw_argon2(calls) },
        options.calls(256),
        |calls| logins_at(8, calls),
    )
    .await;
    let ratio = logins.per_second() / raw.per_second();
    report("Login (c=8)", &logins, Some(("x raw argon2id", ratio)));
    // 64 at once: what auth-service's memory is held to (the peak RSS below includes it).
    let burst = logins_at(64, options.calls(192).max(64)).await;
    report("Login (c=64)", &burst, None);

    // A login storm (32 in flight, until the GetBook figure is taken) beside GetBook.
    let storming = Arc::new(AtomicBool::new(true));
    let storm: Vec<_> = (0..32)
        .map(|i| {
            let (channel, storming) = (
                auth_channels[i % auth_channels.len()].clone(),
                storming.clone(),
            );
            tokio::spawn(async move {
                let mut client = AuthServiceClient::new(channel);
                while storming.load(Ordering::Relaxed) {
                    let _ = client.login(login()).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stormy = get(book_channels.clone(), options.calls(50_000)).await;
    storming.store(false, Ordering::Relaxed);
    for task in storm {
        let _ = task.await;
    }
    let ratio = stormy.p99_ms() / unloaded.p99_ms();
    report(
        "GetBook during a 32-way login storm",
        &stormy,
        Some(("x unloaded p99", ratio)),
    );

    // The other side of that trade: logins while GetBook keeps the cores busy (hashing runs
    // only on time no ordinary thread wants).
    let reading = Arc::new(AtomicBool::new(true));
    let reads: Vec<_> = (0..c)
        .map(|i| {
            let channel = book_channels[i % book_channels.len()].clone();
            let (reading, token, id) = (reading.clone(), token.clone(), id.clone());
            tokio::spawn(async move {
                let mut client = BookServiceClient::new(channel);
                while reading.load(Ordering::Relaxed) {
                    let request = bearer(GetBookRequest { id: id.clone() }, &token);
                    let _ = client.get_book(request).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Logins may be refused here (held past 10 s waiting for room, LOGIN_THROTTLED): counted,
    // over a fixed time rather than a fixed number of logins.
    let (answered, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let logging_in = Arc::new(AtomicBool::new(true));
    let logins_busy: Vec<_> = (0..8)
        .map(|i| {
            let channel = auth_channels[i % auth_channels.len()].clone();
            let (answered, refused) = (answered.clone(), refused.clone());
            let logging_in = logging_in.clone();
            tokio::spawn(async move {
                let mut client = AuthServiceClient::new(channel);
                while logging_in.load(Ordering::Relaxed) {
                    match client.login(login()).await {
                        Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                        Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let busy_for = Duration::from_secs(if options.quick { 2 } else { 20 });
    tokio::time::sleep(busy_for).await;
    logging_in.store(false, Ordering::Relaxed);
    for task in logins_busy {
        let _ = task.await;
    }
    reading.store(false, Ordering::Relaxed);
    for task in reads {
        let _ = task.await;
    }
    let busy_rate = answered.load(Ordering::Relaxed) as f64 / busy_for.as_secs_f64();
    println!(
        "{:<48} {busy_rate:>6.1}/s answered, {} refused in {} s    {:.2} x Login alone",
        format!("Login (c=8) while GetBook runs (c={c})"),
        refused.load(Ordering::Relaxed),
        busy_for.as_secs(),
        busy_rate / logins.per_second(),
    );

    println!(
        "peak RSS: book-service {:.1} MiB, auth-service {:.1} MiB",
        book.peak_rss_mib(),
        auth.peak_rss_mib()
    );

    // The per-call log line's cost: two more book-services on the same database, started
    // together and alike but for `RUST_LOG` (unset: `info`, one line per call; `warn`: none),
    // measured in turns so that both see the same drift of the machine. (Not the first
    // book-service against a new one: its history of writes and logins made it measure
    // slower by itself, which was counted as the line's cost.)
    let twin = |level: Option<&'static str>| {
        let addr = SocketAddr::from(([127, 0, 0, 1], any_port_number()));
        let listen = addr.to_string();
        let mut args = vec![
            "--listen",
            &listen,
            "--database-url",
            book_db,
            "--auth-url",
            &auth_url,
        ];
        args.extend(credentials);
        (addr, spawn("book-service", &args, level))
    };
    let ((loud_addr, _loud), (quiet_addr, _quiet)) = (twin(None), twin(Some("warn")));
    let loud_channels = channels(loud_addr, options.connections).await;
    let quiet_channels = channels(quiet_addr, options.connections).await;
    let calls = options.calls(100_000);
    let (get_info, get_warn) = in_turns(
        calls,
        |calls| get(loud_channels.clone(), calls),
        calls,
        |calls| get(quiet_channels.clone(), calls),
    )
    .await;
    let (health_info, health_warn) = in_turns(
        calls,
        |calls| health_checks(&loud_channels, calls, c),
        calls,
        |calls| health_checks(&quiet_channels, calls, c),
    )
    .await;
    for (label, info, warn) in [
        ("GetBook", &get_info, &get_warn),
        ("Health/Check", &health_info, &health_warn),
    ] {
        println!(
            "{:<44} {:>9.0}/s at info, {:>7.0}/s at warn  {:>6.2} x warn",
            format!("{label}, the per-call log line (c={c})"),
            info.per_second(),
            warn.per_second(),
            info.per_second() / warn.per_second(),
        );
    }
}

/// The bare tonic server: grpc.health.v1 with the services' limits, nothing else.
async fn serve_echo(addr: SocketAddr) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    bookstore_kit::server::limits()
        .add_service(service)
        .serve(addr)
        .await
        .expect("echo server");
}

/// BookService on the bare server, answering GetBook and ListBooks with fixed answers (the ones
/// book-service gave): no token check, no database, no log line. What the same calls cost on
/// tonic alone, the most any implementation of them could reach in the same placement.
#[derive(Clone)]
struct Bare {
    get: GetBookResponse,
    list: ListBooksResponse,
}

impl Bare {
    /// The two answers, each length-delimited, in one file.
    fn encode(&self) -> Vec<u8> {
        let mut bytes = self.get.encode_length_delimited_to_vec();
        bytes.extend(self.list.encode_length_delimited_to_vec());
        bytes
    }

    /// What [`Bare::encode`] wrote.
    fn decode(mut bytes: &[u8]) -> Bare {
        Bare {
            get: GetBookResponse::decode_length_delimited(&mut bytes).expect("GetBookResponse"),
            list: ListBooksResponse::decode_length_delimited(&mut bytes)
                .expect("ListBooksResponse"),
        }
    }
}

/// The answer to the calls [`Bare`] does not measure.
fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented(
        "the bare server answers GetBook and ListBooks only",
    ))
}

#[tonic::async_trait]
impl BookService for Bare {
    async fn get_book(
        &self,
        _: Request<GetBookRequest>,
    ) -> Result<Response<GetBookResponse>, Status> {
        Ok(Response::new(self.get.clone()))
    }

    async fn list_books(
        &self,
        _: Request<ListBooksRequest>,
    ) -> Result<Response<ListBooksResponse>, Status> {
        Ok(Response::new(self.list.clone()))
    }

    async fn create_book(
        &self,
        _: Request<CreateBookRequest>,
    ) -> Result<Response<CreateBookResponse>, Status> {
        unimplemented()
    }

    async fn update_book(
        &self,
        _: Request<UpdateBookRequest>,
    ) -> Result<Response<UpdateBookResponse>, Status> {
        unimplemented()
    }

    async fn delete_book(
        &self,
        _: Request<DeleteBookRequest>,
    ) -> Result<Response<DeleteBookResponse>, Status> {
        unimplemented()
    }
}

/// The bare server with [`Bare`] beside grpc.health.v1 (which tells the bench it is up).
async fn serve_bare_books(addr: SocketAddr, bare: Bare) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    bookstore_kit::server::limits()
        .add_service(health)
        .add_service(BookServiceServer::new(bare))
        .serve(addr)
        .await
        .expect("bare book server");
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--echo-server") => {
            let addr = args.next().expect("address").parse().expect("address");
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(serve_echo(addr));
            return;
        }
        Some("--bare-book-server") => {
            let addr = args.next().expect("address").parse().expect("address");
            let answers = std::fs::read(args.next().expect("answers file")).expect("answers");
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(serve_bare_books(addr, Bare::decode(&answers)));
            return;
        }
        _ => {}
    }
    let options = Options::parse();
    if options.pin {
        let pinned = Command::new("taskset")
            .args(["-p", "-c", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
        assert!(pinned.is_ok_and(|s| s.success()), "--pin needs taskset");
    }
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(run(options));
}

async fn run(options: Options) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let placement = if options.pin {
        "servers on core 0, this client on core 1".to_string()
    } else {
        format!("servers and this client sharing {cores} cores")
    };
    println!(
        "Bookstore against a bare tonic server ({placement}, {} HTTP/2 connection(s) per target{})",
        options.connections,
        if options.quick { ", --quick" } else { "" },
    );
    let echo_addr = SocketAddr::from(([127, 0, 0, 1], any_port_number()));
    let echo_process = Process(
        options
            .command(&std::env::current_exe().expect("this executable"))
            .args(["--echo-server", &echo_addr.to_string()])
            .spawn()
            .expect("start the echo server"),
    );
    let echo_channels = channels(echo_addr, options.connections).await;
    let echo = health_checks(&echo_channels, options.calls(100_000), options.in_flight).await;
    report(
        &format!(
            "echo: Health/Check, bare tonic server (c={})",
            options.in_flight
        ),
        &echo,
        None,
    );
    println!("peak RSS: echo {:.1} MiB", echo_process.peak_rss_mib());
    // Kept running: each ratio to the echo is taken in turns with it ([`Echo::beside`]).
    let echo = Echo {
        channels: &echo_channels,
        in_flight: options.in_flight,
        calls: options.calls(100_000),
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = |file| bookstore_kit::storage::sqlite_url(dir.path(), file);
    services(
        "SQLite",
        &sqlite("auth.db"),
        &sqlite("books.db"),
        &echo,
        &options,
        true,
    )
    .await;
    if let Some(server) = database::postgres() {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let (auth_db, book_db) = (format!("bench_auth_{run}"), format!("bench_books_{run}"));
        database::create_database(&server, &auth_db);
        database::create_database(&server, &book_db);
        let (auth_db, book_db) = (
            database::with_database(&server, &auth_db),
            database::with_database(&server, &book_db),
        );
        services("PostgreSQL", &auth_db, &book_db, &echo, &options, false).await;
    }
}
