//! Load figures for the pair, both services in this process on loopback (real sockets, real
//! tonic clients): Login, CreateBook, GetBook with a reused token, and ListBooks on the first
//! versus a deep page. Run with `cargo bench -p bookstore-e2e --bench load`; the figures are in
//! BENCHMARKS.md. Bounded: fixed request counts, then it stops by itself.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use bookstore_contract::proto::{
    auth::{
        auth_service_client::AuthServiceClient, LoginRequest, LoginResponse, LogoutRequest,
        RegisterRequest,
    },
    book::{
        book_service_client::BookServiceClient, Book, CreateBookRequest, GetBookRequest,
        ListBooksRequest,
    },
};
use bookstore_testkit::{any_port, bearer, database_url, Server, PASSWORD};
use tonic::transport::Channel;

/// Runs `total` calls of `op` from `concurrency` tasks; prints throughput and latency quantiles.
async fn load<F, Fut>(label: &str, total: usize, concurrency: usize, op: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break latencies;
                }
                let t = Instant::now();
                op(i).await;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    let elapsed = start.elapsed();
    all.sort();
    let q = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{label:<34} {total:>6} calls  c={concurrency:<3} {:>7.0} calls/s  p50 {:>6.2} ms  p99 {:>6.2} ms  peak RSS {:>5.0} MiB",
        total as f64 / elapsed.as_secs_f64(),
        q(0.50).as_secs_f64() * 1000.0,
        q(0.99).as_secs_f64() * 1000.0,
        peak_rss_mib(),
    );
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Logs `username` in (with [`PASSWORD`]) over `client`.
async fn login(client: &AuthServiceClient<Channel>, username: &str) -> LoginResponse {
    client
        .clone()
        .login(LoginRequest {
            scopes: Vec::new(),
            username: username.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner()
}

/// A channel to `addr` whose connection comes from the loopback address `from`.
fn channel_from(addr: std::net::SocketAddr, from: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .local_address(Some(from.parse().expect("ip")))
        .connect_lazy()
}

/// Median latency of `n` sequential logins of `username` over `client`.
async fn login_p50(client: &AuthServiceClient<Channel>, username: &str, n: usize) -> Duration {
    let mut latencies = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        login(client, username).await;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    latencies[n / 2]
}

/// Median Login latency of `bench` from one address, alone and while 64 tasks on another
/// address (`flood_from`) keep calling `flood(task, n)`; and how many flood calls were made.
async fn login_beside_a_flood<F, Fut>(
    auth_addr: std::net::SocketAddr,
    flood_from: &str,
    flood: F,
) -> (Duration, Duration, u64)
where
    F: Fn(AuthServiceClient<Channel>, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let quiet = AuthServiceClient::new(channel_from(auth_addr, "127.0.0.3"));
    let alone = login_p50(&quiet, "bench", 20).await;
    let client = AuthServiceClient::new(channel_from(auth_addr, flood_from));
    let (flood, stop) = (
        Arc::new(flood),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let flooders: Vec<_> = (0..64)
        .map(|task| {
            let (client, flood, stop, sent) =
                (client.clone(), flood.clone(), stop.clone(), sent.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    flood(client.clone(), task, n).await;
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = login_p50(&quiet, "bench", 20).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flooders {
        let _ = f.await;
    }
    (
        alone,
        during,
        sent.load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// Login latency from one address, alone and while another address floods Login with 64
/// calls in flight spread over `accounts` accounts: the hashing gate is fair between addresses,
/// so the ratio stays small. With one account, most of the flood waits for room in the
/// (username, address) throttle layer (5 checks in flight at most).
async fn fairness(auth_addr: std::net::SocketAddr, flood_from: &str, accounts: usize) {
    let flood = AuthServiceClient::new(channel_from(auth_addr, flood_from));
    for i in 0..accounts {
        let registered = flood
            .clone()
            .register(RegisterRequest {
                username: format!("flood{i}"),
                password: PASSWORD.into(),
            })
            .await;
        if let Err(status) = registered {
            assert_eq!(
                status.code(),
                tonic::Code::AlreadyExists,
                "register: {status:?}"
            );
        }
    }
    let (alone, during, _) = login_beside_a_flood(
        auth_addr,
        flood_from,
        move |mut flood, task, _| async move {
            let _ = flood
                .login(LoginRequest {
                    scopes: Vec::new(),
                    username: format!("flood{}", task % accounts),
                    password: PASSWORD.into(),
                })
                .await;
        },
    )
    .await;
    println!(
        "{:<34} p50 alone {:>6.1} ms  during a 64-call flood from another address ({accounts:>2} accounts) {:>6.1} ms  ratio {:.2}",
        "Login fairness between addresses",
        alone.as_secs_f64() * 1000.0,
        during.as_secs_f64() * 1000.0,
        during.as_secs_f64() / alone.as_secs_f64(),
    );
}

/// Login latency from one address, alone and while another address floods RefreshToken with
/// 64 junk tokens in flight (SPEC: such a flood ends in RESOURCE_EXHAUSTED and slows other
/// users' logins by at most 3×). Once the address is locked, each junk call is refused from
/// one read, with no write and no hash.
async fn junk_refresh_flood(auth_addr: std::net::SocketAddr, flood_from: &str) {
    let (alone, during, sent) =
        login_beside_a_flood(auth_addr, flood_from, |mut flood, task, n| async move {
            let _ = flood
                .refresh_token(bookstore_contract::proto::auth::RefreshTokenRequest {
                    refresh_token: format!("junk-{task}-{n}"),
                    scopes: Vec::new(),
                })
                .await;
        })
        .await;
    println!(
        "{:<34} p50 alone {:>6.1} ms  during a 64-call junk RefreshToken flood from another address ({sent} calls) {:>6.1} ms  ratio {:.2}",
        "Login beside a junk-token flood",
        alone.as_secs_f64() * 1000.0,
        during.as_secs_f64() * 1000.0,
        during.as_secs_f64() / alone.as_secs_f64(),
    );
}

/// A book-service configuration on `dir/books.db`, trusting the auth-service at `auth_addr`
/// (its database in `dir`), with the service client it watches revocations as.
async fn book_config(
    dir: &tempfile::TempDir,
    auth_addr: std::net::SocketAddr,
) -> book_service::Config {
    let mut auth_config = auth_service::Config::defaults();
    auth_config.serve.database_url = database_url(dir.path(), "auth.db");
    let admin = auth_service::admin::Admin::open(&auth_config)
        .await
        .expect("auth-service's database");
    let secret_file = dir.path().join("book-service.secret");
    admin
        .ensure_client("book-service", "revocations:watch", &secret_file)
        .await
        .expect("book-service's client");
    admin.close().await;
    let mut config = book_service::Config::defaults();
    config.serve.listen = any_port();
    config.serve.database_url = database_url(dir.path(), "books.db");
    config.auth_url = format!("http://{auth_addr}");
    config.auth_client_id = Some("book-service".into());
    config.auth_client_secret_file = Some(secret_file);
    config
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut auth_config = auth_service::Config::defaults();
    auth_config.serve.listen = any_port();
    auth_config.serve.database_url = database_url(dir.path(), "auth.db");
    let auth = Server::start(
        auth_service::build(auth_config)
            .await
            .expect("auth-service"),
    );
    let auth_addr = auth.addr;
    let book_config = book_config(&dir, auth.addr).await;
    let book = Server::start(
        book_service::build(book_config)
            .await
            .expect("book-service"),
    );
    let book_addr = book.addr;

    let auth_channel = Channel::from_shared(format!("http://{auth_addr}"))
        .expect("url")
        .connect_lazy();
    let book_channel = Channel::from_shared(format!("http://{book_addr}"))
        .expect("url")
        .connect_lazy();
    let auth = AuthServiceClient::new(auth_channel);
    auth.clone()
        .register(RegisterRequest {
            username: "bench".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("register");
    let token = login(&auth, "bench").await.access_token;
    let books = BookServiceClient::new(book_channel);
    // book-service serves once it holds auth-service's keys.
    while books
        .clone()
        .list_books(bearer(ListBooksRequest::default(), &token))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "Bookstore load figures on {} ({} cores); peak RSS after start-up, register and login: {:.0} MiB",
        if bookstore_testkit::database::postgres().is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        peak_rss_mib()
    );

    let a = auth.clone();
    load("Login (argon2id, 19 MiB, t=2)", 64, 8, move |_| {
        let a = a.clone();
        async move {
            login(&a, "bench").await;
        }
    })
    .await;

    fairness(auth_addr, "127.0.0.2", 16).await;
    fairness(auth_addr, "127.0.0.4", 1).await;
    junk_refresh_flood(auth_addr, "127.0.0.6").await;

    let (b, t) = (books.clone(), token.clone());
    load("CreateBook (durable, group commit)", 5_000, 32, move |i| {
        let (mut b, t) = (b.clone(), t.clone());
        async move {
            let book = Book {
                title: format!("Book {i}"),
                author: "Bench".into(),
                price_cents: 100,
                ..Book::default()
            };
            b.create_book(bearer(
                CreateBookRequest {
                    book: Some(book),
                    request_id: String::new(),
                },
                &t,
            ))
            .await
            .expect("create");
        }
    })
    .await;

    let first = books
        .clone()
        .list_books(bearer(
            ListBooksRequest {
                page_size: 1,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("list");
    let id = first.into_inner().books[0].id.clone();
    let (b, t, book_id) = (books.clone(), token.clone(), id.clone());
    load("GetBook (cached token)", 20_000, 32, move |_| {
        let (mut b, t, id) = (b.clone(), t.clone(), book_id.clone());
        async move {
            b.get_book(bearer(GetBookRequest { id }, &t))
                .await
                .expect("get");
        }
    })
    .await;

    // Walk to page 99 of 50 (books 4,901-4,950) once, to get its token.
    let mut page_token = String::new();
    for _ in 0..98 {
        let page = books
            .clone()
            .list_books(bearer(
                ListBooksRequest {
                    page_size: 50,
                    page_token,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("list")
            .into_inner();
        page_token = page.next_page_token;
    }
    for (label, start) in [
        ("ListBooks page 1 of 100 (50/page)", String::new()),
        ("ListBooks page 99 of 100 (50/page)", page_token),
    ] {
        let (b, t) = (books.clone(), token.clone());
        load(label, 2_000, 16, move |_| {
            let (mut b, t, start) = (b.clone(), t.clone(), start.clone());
            async move {
                let page = b
                    .list_books(bearer(
                        ListBooksRequest {
                            page_size: 50,
                            page_token: start,
                            ..Default::default()
                        },
                        &t,
                    ))
                    .await
                    .expect("list")
                    .into_inner();
                assert_eq!(page.books.len(), 50);
            }
        })
        .await;
    }
    behind_a_balancer(&dir, auth_addr, book_addr, &token, &id).await;
    get_book_over_tls(&dir, auth_addr, &token, &id).await;
    get_book_while_scraped(&dir, auth_addr, &token, &id).await;
    revocation_latency(&auth, &books).await;
    revocations_held(&dir, &auth, &books, &token, &id).await;
    println!(
        "peak RSS of this process (both services + clients): {:.1} MiB",
        peak_rss_mib()
    );
}

/// 20,000 GetBook calls of `id` over `books`, 32 in flight, once that book-service serves.
async fn get_books(label: &str, books: BookServiceClient<Channel>, token: &str, id: &str) {
    while books
        .clone()
        .get_book(bearer(GetBookRequest { id: id.to_string() }, token))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (t, id) = (token.to_string(), id.to_string());
    load(label, 20_000, 32, move |_| {
        let (mut b, t, id) = (books.clone(), t.clone(), id.clone());
        async move {
            b.get_book(bearer(GetBookRequest { id }, &t))
                .await
                .expect("get");
        }
    })
    .await;
}

/// GetBook on a second book-service (same database) with its HTTP side door on and `/metrics`
/// scraped every second, as Prometheus would: against the plain GetBook line, the cost of
/// `--http-listen` (the gRPC metrics themselves are counted either way).
async fn get_book_while_scraped(
    dir: &tempfile::TempDir,
    auth_addr: std::net::SocketAddr,
    token: &str,
    id: &str,
) {
    let mut config = book_config(dir, auth_addr).await;
    config.serve.http_listen = Some(any_port());
    let server = Server::start(book_service::build(config).await.expect("book-service"));
    let http = server.http.expect("side door");
    let scraping = tokio::spawn(async move {
        loop {
            let scraped = bookstore_testkit::http_request(http, "GET", "/metrics").await;
            assert_eq!(scraped.status, 200);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let books = BookServiceClient::new(
        Channel::from_shared(format!("http://{}", server.addr))
            .expect("url")
            .connect_lazy(),
    );
    get_books("GetBook, --http-listen, scraped 1/s", books, token, id).await;
    scraping.abort();
    server.stop().await;
}

/// GetBook through HAProxy (as in docker-compose.scale.yml: HTTP/2 both sides, round-robin
/// per call) to 1, then 2 book-service replicas on the same database: the balancer's cost
/// against the direct line, and what a second replica adds on this machine. Skipped when
/// `/usr/sbin/haproxy` is missing (Debian: `apt-get install haproxy`).
async fn behind_a_balancer(
    dir: &tempfile::TempDir,
    auth_addr: std::net::SocketAddr,
    first: std::net::SocketAddr,
    token: &str,
    id: &str,
) {
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    if !haproxy.exists() {
        println!("(no /usr/sbin/haproxy: the balancer lines are skipped)");
        return;
    }
    let config = book_config(dir, auth_addr).await;
    let second = Server::start(book_service::build(config).await.expect("book-service"));
    for replicas in [vec![first], vec![first, second.addr]] {
        let port = bookstore_testkit::any_port_number();
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("    server book{i} {addr} proto h2\n"))
            .collect();
        let cfg = format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1m\n    \
             timeout server 1m\n\
             frontend books\n    bind 127.0.0.1:{port} proto h2\n    default_backend books\n\
             backend books\n    balance roundrobin\n{servers}"
        );
        let file = tempfile::NamedTempFile::new().expect("haproxy.cfg");
        std::fs::write(file.path(), cfg).expect("write haproxy.cfg");
        let mut balancer = std::process::Command::new(haproxy)
            .arg("-f")
            .arg(file.path())
            .spawn()
            .expect("start haproxy");
        let books = BookServiceClient::new(
            Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .expect("url")
                .connect_lazy(),
        );
        let label = format!("GetBook via HAProxy, {} replica(s)", replicas.len());
        get_books(&label, books, token, id).await;
        let _ = balancer.kill();
        let _ = balancer.wait();
    }
    second.stop().await;
}

/// GetBook over TLS: a second book-service with a TLS listener on the same database, driven
/// like the plaintext one (the ratio between the two lines is the cost of TLS).
async fn get_book_over_tls(
    dir: &tempfile::TempDir,
    auth_addr: std::net::SocketAddr,
    token: &str,
    id: &str,
) {
    let ca = bookstore_testkit::pki::TestCa::new(dir.path(), "bench-ca");
    let cert = ca.issue(dir.path(), "bench-book");
    let mut config = book_config(dir, auth_addr).await;
    config.serve.tls_cert = Some(cert.cert);
    config.serve.tls_key = Some(cert.key);
    let server = Server::start(book_service::build(config).await.expect("TLS book-service"));
    let tls = bookstore_kit::config::ClientTls {
        ca_cert: Some(ca.ca.clone()),
        ..Default::default()
    };
    let channel = bookstore_kit::channel::endpoint(
        &format!("https://localhost:{}", server.addr.port()),
        &tls,
    )
    .expect("endpoint")
    .connect_lazy();
    let books = BookServiceClient::new(channel);
    get_books("GetBook over TLS (cached token)", books, token, id).await;
    server.stop().await;
}

/// From the Logout answer to book-service's first refusal of a token of that session (cached
/// there beforehand), over 100 logouts; book-service polled every millisecond.
async fn revocation_latency(auth: &AuthServiceClient<Channel>, books: &BookServiceClient<Channel>) {
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let login = login(auth, "bench").await;
        let list = || {
            let mut books = books.clone();
            let request = bearer(ListBooksRequest::default(), &login.access_token);
            async move { books.list_books(request).await }
        };
        list().await.expect("cached at book-service");
        auth.clone()
            .logout(LogoutRequest {
                refresh_token: login.refresh_token.clone(),
            })
            .await
            .expect("logout");
        let answered = Instant::now();
        while list().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(answered.elapsed());
    }
    latencies.sort();
    println!(
        "{:<34} {:>6} logouts       p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
        "Logout answer to refusal at books",
        latencies.len(),
        latencies[50].as_secs_f64() * 1000.0,
        latencies[98].as_secs_f64() * 1000.0,
        latencies[99].as_secs_f64() * 1000.0,
    );
}

/// GetBook throughput while book-service holds 100,000 revocations. They are written straight
/// into auth-service's database (100,000 logins would take an hour of argon2), the way a
/// replica's revocations arrive: the running auth-service streams them from there.
async fn revocations_held(
    dir: &tempfile::TempDir,
    auth: &AuthServiceClient<Channel>,
    books: &BookServiceClient<Channel>,
    token: &str,
    id: &str,
) {
    const HELD: i64 = 100_000;
    let before = peak_rss_mib();
    // A real session, revoked last: once book-service refuses its token, it holds all of them.
    let probe = login(auth, "bench").await.access_token;
    let claims = probe.split('.').nth(1).expect("a JWT has claims");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
            .expect("base64url"),
    )
    .expect("JSON claims");
    let probe_sid = claims["sid"].as_str().expect("sid").to_string();
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&database_url(dir.path(), "auth.db"))
        .await
        .expect("open auth-service's database");
    let now = chrono::Utc::now().timestamp();
    let mut tx = db.begin().await.expect("begin");
    for i in 0..HELD {
        sqlx::query(
            "INSERT INTO revocations (session_id, expire_time, create_time) VALUES ($1, $2, $3)",
        )
        .bind(format!("bench-session-{i:06}-{}", uuid::Uuid::new_v4()))
        .bind(now + 900)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("insert");
    }
    sqlx::query(
        "INSERT INTO revocations (session_id, expire_time, create_time) VALUES ($1, $2, $3)",
    )
    .bind(&probe_sid)
    .bind(now + 900)
    .bind(now)
    .execute(&mut *tx)
    .await
    .expect("insert");
    tx.commit().await.expect("commit");
    db.close().await;
    let started = Instant::now();
    loop {
        let refused = books
            .clone()
            .list_books(bearer(ListBooksRequest::default(), &probe))
            .await
            .is_err();
        if refused {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never streamed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "{:<34} {HELD} streamed in about {:.1} s; peak RSS {before:.0} -> {:.0} MiB (whole process)",
        "Revocations held by book-service",
        started.elapsed().as_secs_f64(),
        peak_rss_mib(),
    );
    let (b, t, id) = (books.clone(), token.to_string(), id.to_string());
    load("GetBook, 100,000 revocations held", 20_000, 32, move |_| {
        let (mut b, t, id) = (b.clone(), t.clone(), id.clone());
        async move {
            b.get_book(bearer(GetBookRequest { id }, &t))
                .await
                .expect("get");
        }
    })
    .await;
}
