//! Starting auth-service and book-service in-process for a test, and client helpers.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use auth_service::admin::Admin;
use bookstore_contract::proto::{
    auth::{auth_service_client::AuthServiceClient, LoginRequest, LoginResponse, RegisterRequest},
    book::{book_service_client::BookServiceClient, Book, CreateBookRequest, GetBookRequest},
};
use bookstore_testkit::{any_port, database_url, Server, PASSWORD};
use tonic::transport::Channel;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

pub use bookstore_testkit::{bearer, expect_code, with_authorization};

/// auth-service's test configuration: defaults, its database in `dir`, listening on `listen`.
pub fn auth_config(dir: &Path, listen: SocketAddr) -> auth_service::Config {
    let mut config = auth_service::Config::defaults();
    config.serve.listen = listen;
    config.serve.database_url = database_url(dir, "auth.db");
    config
}

/// auth-service on `dir/auth.db`, listening on `listen` (port 0 for any).
pub async fn start_auth(dir: &Path, listen: SocketAddr) -> Server {
    let app = auth_service::build(auth_config(dir, listen))
        .await
        .expect("build auth-service");
    Server::start(app)
}

/// book-service on `dir/books.db`, trusting the auth-service at `auth_addr`.
pub async fn start_book(dir: &Path, auth_addr: SocketAddr) -> Server {
    start_book_with(dir, auth_addr, |_| {}).await
}

/// [`start_book`] with its configuration changed by `configure`.
pub async fn start_book_with(
    dir: &Path,
    auth_addr: SocketAddr,
    configure: impl FnOnce(&mut book_service::Config),
) -> Server {
    start_book_in(dir, dir, auth_addr, configure).await
}

/// book-service on `book_dir/books.db`, trusting the auth-service at `auth_addr` whose
/// database is in `auth_dir` (where its service client is provisioned, as `bookstore up`
/// does), its configuration changed by `configure`.
pub async fn start_book_in(
    book_dir: &Path,
    auth_dir: &Path,
    auth_addr: SocketAddr,
    configure: impl FnOnce(&mut book_service::Config),
) -> Server {
    let (id, secret_file) = book_client(auth_dir).await;
    let mut config = book_service::Config::defaults();
    config.serve.listen = any_port();
    config.serve.database_url = database_url(book_dir, "books.db");
    config.auth_url = format!("http://{auth_addr}");
    config.auth_client_id = Some(id);
    config.auth_client_secret_file = Some(secret_file);
    configure(&mut config);
    let app = book_service::build(config)
        .await
        .expect("build book-service");
    Server::start(app)
}

/// book-service's service client (scope `revocations:watch`) in the auth-service database of
/// `auth_dir`, made on first use: its name and the file holding its secret.
pub async fn book_client(auth_dir: &Path) -> (String, std::path::PathBuf) {
    // Book-services started together must not rotate each other's secret.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let file = auth_dir.join("book-service.secret");
    let admin = Admin::open(&auth_config(auth_dir, any_port()))
        .await
        .expect("open auth-service's database");
    admin
        .ensure_client("book-service", "revocations:watch", &file)
        .await
        .expect("book-service's client");
    admin.close().await;
    ("book-service".into(), file)
}

/// The book-service binary on `db_url`, trusting the auth-service at `auth_url` whose database
/// is in `auth_dir` (where its service client is provisioned), with `env` set too.
pub async fn start_book_child(
    db_url: &str,
    auth_url: &str,
    auth_dir: &Path,
    env: &[(&str, &str)],
) -> bookstore_testkit::ChildService {
    let (id, file) = book_client(auth_dir).await;
    let file = file.display().to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        db_url,
        "--auth-url",
        auth_url,
        "--auth-client-id",
        &id,
        "--auth-client-secret-file",
        &file,
    ];
    bookstore_testkit::ChildService::start_with_env(
        &bookstore_testkit::workspace_binary("book-service"),
        &args,
        env,
    )
}

/// The fields named by the BadRequest field violations of `status`, in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Overall health of the server at `addr`.
pub async fn health(addr: SocketAddr) -> Option<ServingStatus> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = HealthClient::new(channel);
    let status = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(status.into_inner().status).ok()
}

/// Waits (bounded) until the server at `addr` reports SERVING.
pub async fn wait_serving(addr: SocketAddr, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while health(addr).await != Some(ServingStatus::Serving) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} not SERVING within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// auth-service and book-service, the way they run in production.
pub struct Stack {
    /// Both databases live here.
    pub dir: Arc<tempfile::TempDir>,
    /// auth-service.
    pub auth: Server,
    /// book-service.
    pub book: Server,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id (token `sub`).
    pub id: String,
    /// Login answer (access and refresh token).
    pub login: LoginResponse,
}

impl Caller {
    /// The access token.
    pub fn token(&self) -> &str {
        &self.login.access_token
    }
}

impl Stack {
    /// Both services on fresh databases, book-service SERVING.
    pub async fn spawn() -> Stack {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let auth = start_auth(dir.path(), any_port()).await;
        let book = start_book(dir.path(), auth.addr).await;
        wait_serving(book.addr, Duration::from_secs(10)).await;
        Stack { dir, auth, book }
    }

    /// auth-service's database, opened beside the running service as the `admin` and `keys`
    /// subcommands open it: to promote users, rotate keys or read the signing key.
    pub async fn auth_admin(&self) -> Admin {
        Admin::open(&auth_config(self.dir.path(), any_port()))
            .await
            .expect("open auth-service's database")
    }

    /// An AuthService client.
    pub async fn auth_client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::connect(format!("http://{}", self.auth.addr))
            .await
            .expect("connect auth")
    }

    /// A BookService client (add the token per request with [`bearer`]).
    pub async fn books(&self) -> BookServiceClient<Channel> {
        BookServiceClient::connect(format!("http://{}", self.book.addr))
            .await
            .expect("connect book")
    }

    /// Registers and logs in `username`.
    pub async fn user(&self, username: &str) -> Caller {
        register_and_login(self.auth.addr, username).await
    }

    /// Logs in the registered `username`.
    pub async fn user_login(&self, username: &str) -> Caller {
        login(self.auth.addr, username).await
    }

    /// `caller`'s book `id`.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Book, tonic::Status> {
        self.books()
            .await
            .get_book(bearer(
                GetBookRequest { id: id.to_string() },
                caller.token(),
            ))
            .await
            .map(|r| r.into_inner().book.unwrap_or_default())
    }

    /// Creates a book for `caller`.
    pub async fn create(&self, caller: &Caller, book: Book) -> Book {
        self.books()
            .await
            .create_book(bearer(
                CreateBookRequest {
                    book: Some(book),
                    request_id: String::new(),
                },
                caller.token(),
            ))
            .await
            .expect("create book")
            .into_inner()
            .book
            .expect("book")
    }
}

/// Registers `username` at the auth-service at `auth` and logs in.
pub async fn register_and_login(auth: SocketAddr, username: &str) -> Caller {
    AuthServiceClient::connect(format!("http://{auth}"))
        .await
        .expect("connect auth")
        .register(RegisterRequest {
            username: username.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("register");
    login(auth, username).await
}

/// Logs the registered `username` in at the auth-service at `auth`.
pub async fn login(auth: SocketAddr, username: &str) -> Caller {
    let login = login_with(auth, username, PASSWORD).await;
    Caller {
        id: login.user.as_ref().expect("user").id.clone(),
        login,
    }
}

/// Logs `username` in with `password` at the auth-service at `auth`.
pub async fn login_with(auth: SocketAddr, username: &str, password: &str) -> LoginResponse {
    AuthServiceClient::connect(format!("http://{auth}"))
        .await
        .expect("connect auth")
        .login(LoginRequest {
            scopes: Vec::new(),
            username: username.into(),
            password: password.into(),
        })
        .await
        .expect("login")
        .into_inner()
}

/// A valid book with this title.
pub fn sample(title: &str) -> Book {
    Book {
        title: title.into(),
        author: "Ursula K. Le Guin".into(),
        publisher: "Ace".into(),
        price_cents: 1299,
        ..Book::default()
    }
}
