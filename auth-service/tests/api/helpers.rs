//! Starting auth-service for a test, in-process (with an injectable clock) or as the real
//! binary (for kill -9), and small client helpers.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use auth_service::{config::Clock, db::Db, Config};
use bookstore_common::{
    proto::auth::{
        auth_service_client::AuthServiceClient, user_service_client::UserServiceClient,
        LoginRequest, LoginResponse, RegisterRequest, User,
    },
    token::Expectations,
    unix_now,
};
use ed25519_dalek::SigningKey;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use bookstore_common::testing::{bearer, expect_code, with_authorization};
use tonic::{transport::Channel, Status};

/// A password every policy accepts.
pub const PASSWORD: &str = "a sufficiently long passphrase";

/// A running in-process auth-service.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database file's folder (kept for restarts).
    pub dir: Arc<tempfile::TempDir>,
    /// The clock the service reads; tests move it.
    pub clock: Arc<AtomicI64>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// A fresh service with a fresh database.
    pub async fn spawn() -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let clock = Arc::new(AtomicI64::new(unix_now()));
        Self::spawn_in(dir, clock).await
    }

    /// A service on the database in `dir`, reading `clock`.
    pub async fn spawn_in(dir: Arc<tempfile::TempDir>, clock: Arc<AtomicI64>) -> TestApp {
        let mut config = Config::with_database(database_url(dir.path()));
        let c = clock.clone();
        config.clock = Clock::new(move || c.load(Ordering::SeqCst));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(auth_service::serve(config, listener, async {
            let _ = stopped.await;
        }));
        let app = TestApp {
            addr,
            dir,
            clock,
            stop: Some(stop),
            task: Some(task),
        };
        app.wait_ready().await;
        app
    }

    /// Waits until the server answers (it listens before it is spawned, so this is quick).
    async fn wait_ready(&self) {
        for _ in 0..200 {
            if bookstore_common::server::healthcheck(&self.addr.to_string())
                .await
                .unwrap_or(false)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("auth-service did not become healthy");
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }

    /// Stops this server and starts another on the same database and clock.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown().await;
        TestApp::spawn_in(self.dir.clone(), self.clock.clone()).await
    }

    /// Moves the service's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    /// The service's current time.
    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
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
                username: username.into(),
                password: password.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// The URL of the database file.
    pub fn database_url(&self) -> String {
        database_url(self.dir.path())
    }

    /// The active signing key and its kid, read from the database (for forging tokens).
    pub async fn signing_key(&self) -> (String, SigningKey) {
        let db = Db::connect(&self.database_url()).await.expect("open db");
        let rows = db.signing_keys().await.expect("keys");
        let row = rows.first().expect("a key");
        let seed: [u8; 32] = row.private_key.as_slice().try_into().expect("32 bytes");
        (row.kid.clone(), SigningKey::from_bytes(&seed))
    }

    /// The issuer and audience the service uses (the defaults).
    pub fn expectations(&self) -> Expectations {
        let config = Config::with_database("unused");
        Expectations {
            issuer: config.issuer,
            audience: config.audience,
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `sqlite://<dir>/auth.db`.
pub fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("auth.db").display())
}

/// The auth-service binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_auth-service"))
}
