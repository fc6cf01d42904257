//! Starting auth-service and book-service in-process for a test, and client helpers.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use bookstore_common::proto::{
    auth::{auth_service_client::AuthServiceClient, LoginRequest, LoginResponse, RegisterRequest},
    book::{book_service_client::BookServiceClient, Book, CreateBookRequest, GetBookRequest},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use bookstore_common::testing::{bearer, expect_code, with_authorization};
use tonic::transport::Channel;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// A password every policy accepts.
pub const PASSWORD: &str = "a sufficiently long passphrase";

/// One in-process server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// Stops it gracefully and waits.
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

fn spawn<F>(
    listener: TcpListener,
    serve: impl FnOnce(TcpListener, oneshot::Receiver<()>) -> F,
) -> Server
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve(listener, stopped));
    Server {
        addr,
        stop: Some(stop),
        task: Some(task),
    }
}

/// `sqlite://` URL of auth-service's database in `dir`.
pub fn auth_db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("auth.db").display())
}

/// auth-service on `dir/auth.db`, listening on `addr` (port 0 for any).
pub async fn start_auth(dir: &Path, addr: &str) -> Server {
    let config = auth_service::Config::with_database(auth_db_url(dir));
    let listener = TcpListener::bind(addr).await.expect("bind auth");
    spawn(listener, |l, stopped| {
        auth_service::serve(config, l, async move {
            let _ = stopped.await;
        })
    })
}

/// book-service on `dir/books.db`, trusting the auth-service at `auth_addr`.
pub async fn start_book(dir: &Path, auth_addr: SocketAddr) -> Server {
    let config = book_service::Config::new(
        format!("sqlite://{}", dir.join("books.db").display()),
        format!("http://{auth_addr}"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind book");
    spawn(listener, |l, stopped| {
        book_service::serve(config, l, async move {
            let _ = stopped.await;
        })
    })
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
        let auth = start_auth(dir.path(), "127.0.0.1:0").await;
        let book = start_book(dir.path(), auth.addr).await;
        wait_serving(book.addr, Duration::from_secs(10)).await;
        Stack { dir, auth, book }
    }

    /// auth-service's database, opened beside the running service (as the admin subcommands
    /// do), to promote users, rotate keys or read the signing key.
    pub async fn auth_db(&self) -> auth_service::db::Db {
        auth_service::db::Db::connect(&auth_db_url(self.dir.path()))
            .await
            .expect("open auth db")
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
    let login = AuthServiceClient::connect(format!("http://{auth}"))
        .await
        .expect("connect auth")
        .login(LoginRequest {
            username: username.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner();
    Caller {
        id: login.user.as_ref().expect("user").id.clone(),
        login,
    }
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
