//! Starting auth-service for a test, in-process (with an injectable clock) or as the real
//! binary (for kill -9), and small client helpers.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
};

use auth_service::{admin::Admin, Config};
use bookstore_contract::{
    proto::auth::{
        auth_service_client::AuthServiceClient, user_service_client::UserServiceClient,
        GetJwksRequest, GetJwksResponse, LoginRequest, LoginResponse, RegisterRequest, User,
    },
    token::Expectations,
};
use bookstore_kit::clock::{Clock, ManualTime};
use bookstore_testkit::{any_port, Server};
use ed25519_dalek::SigningKey;

pub use bookstore_testkit::{bearer, expect_code, with_authorization, PASSWORD};
use tonic::{transport::Channel, Status};

/// A running in-process auth-service.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its HTTP side door, when the configuration asked for one.
    pub http: Option<SocketAddr>,
    /// Its database file's folder (kept for restarts).
    pub dir: Arc<tempfile::TempDir>,
    /// The clock the service reads, and the hand that moves it.
    clock: (Clock, ManualTime),
    server: Server,
}

impl TestApp {
    /// A fresh service with a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A fresh service with a fresh database, its test configuration changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let clock = Clock::manual(chrono::Utc::now());
        let mut config = config(dir.path(), clock.0.clone());
        configure(&mut config);
        Self::start(dir, clock, config).await
    }

    /// A service on the database in `dir`, reading `clock`.
    pub async fn spawn_in(dir: Arc<tempfile::TempDir>, clock: (Clock, ManualTime)) -> TestApp {
        let config = config(dir.path(), clock.0.clone());
        Self::start(dir, clock, config).await
    }

    async fn start(
        dir: Arc<tempfile::TempDir>,
        clock: (Clock, ManualTime),
        config: Config,
    ) -> TestApp {
        let app = auth_service::build(config)
            .await
            .expect("build auth-service");
        let server = Server::start(app);
        TestApp {
            addr: server.addr,
            http: server.http,
            dir,
            clock,
            server,
        }
    }

    /// Another replica: a second server on the same database and clock.
    pub async fn replica(&self) -> TestApp {
        TestApp::spawn_in(self.dir.clone(), self.clock.clone()).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// Stops this server and starts another on the same database and clock.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            dir, clock, server, ..
        } = self;
        server.stop().await;
        TestApp::spawn_in(dir, clock).await
    }

    /// Moves the service's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.clock.1.advance_seconds(seconds);
    }

    /// The service's current time.
    pub fn now(&self) -> i64 {
        self.clock.0.unix_seconds()
    }

    /// A channel to the server.
    pub async fn channel(&self) -> Channel {
        self.channel_from(None).await
    }

    /// A channel whose connection comes from `local` (another loopback address, to play a
    /// different client).
    pub async fn channel_from(&self, local: Option<IpAddr>) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .local_address(local)
            .connect()
            .await
            .expect("connect")
    }

    /// AuthService client.
    pub async fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel().await)
    }

    /// UserService client (add the token per request with [`bearer`]).
    pub async fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel().await)
    }

    /// The published key set (GetJwks).
    pub async fn jwks(&self) -> GetJwksResponse {
        self.auth()
            .await
            .get_jwks(GetJwksRequest {})
            .await
            .expect("jwks")
            .into_inner()
    }

    /// Registers `username` with [`PASSWORD`].
    pub async fn register(&self, username: &str) -> User {
        self.auth()
            .await
            .register(RegisterRequest {
                username: username.into(),
                password: PASSWORD.into(),
            })
            .await
            .expect("register")
            .into_inner()
            .user
            .expect("user")
    }

    /// Logs `username` in with [`PASSWORD`].
    pub async fn login(&self, username: &str) -> LoginResponse {
        self.try_login(username, PASSWORD).await.expect("login")
    }

    /// Logs in, returning the status on failure.
    pub async fn try_login(&self, username: &str, password: &str) -> Result<LoginResponse, Status> {
        self.auth()
            .await
            .login(LoginRequest {
                scopes: Vec::new(),
                username: username.into(),
                password: password.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// The database opened for administration, as the `admin` and `keys` subcommands open it.
    pub async fn admin(&self) -> Admin {
        Admin::open(&config(self.dir.path(), self.clock.0.clone()))
            .await
            .expect("open the database for administration")
    }

    /// A token with `revocations:watch` (what WatchRevocations needs), for a service client
    /// `watcher` made on first use.
    pub async fn watcher_token(&self) -> String {
        let file = self.dir.path().join("watcher.secret");
        let admin = self.admin().await;
        admin
            .ensure_client("watcher", "revocations:watch", &file)
            .await
            .expect("the watcher client");
        admin.close().await;
        let secret = std::fs::read_to_string(&file).expect("secret");
        self.auth()
            .await
            .issue_client_token(bookstore_contract::proto::auth::IssueClientTokenRequest {
                client_id: "watcher".into(),
                client_secret: secret.trim().into(),
                scopes: Vec::new(),
            })
            .await
            .expect("a watcher token")
            .into_inner()
            .access_token
    }

    /// The active signing key and its kid, read from the database (for forging tokens).
    pub async fn signing_key(&self) -> (String, SigningKey) {
        self.admin()
            .await
            .active_signing_key()
            .await
            .expect("signing key")
    }

    /// The issuer and audience the service uses (the defaults).
    pub fn expectations(&self) -> Expectations {
        let config = Config::defaults();
        Expectations {
            issuer: config.issuer,
            audience: config.audience,
        }
    }
}

/// The test configuration: defaults, any port, the database in `dir`, `clock`.
pub fn config(dir: &Path, clock: Clock) -> Config {
    let mut config = Config::defaults();
    config.serve.listen = any_port();
    config.serve.database_url = database_url(dir);
    config.clock = clock;
    config
}

/// The database of the auth-service whose test directory is `dir` (`sqlite://<dir>/auth.db`,
/// or a PostgreSQL database of its own when the suite runs on PostgreSQL).
pub fn database_url(dir: &Path) -> String {
    bookstore_testkit::database_url(dir, "auth.db")
}

/// The auth-service binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_auth-service"))
}
