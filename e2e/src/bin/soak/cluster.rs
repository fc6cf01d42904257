//! The soak's cluster: one database (a private PostgreSQL server, or one SQLite file per
//! service), 2 auth-service and 3 book-service processes of the workspace's binaries, each on a
//! fixed loopback port so that a replica killed and restarted comes back where its callers look
//! for it. The first replica of each service is never killed: the long-lived processes whose
//! RSS and open files are watched.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context};
use bookstore_testkit::{any_port_number, database, postgres};
use rustix::process::{kill_process, Pid, Signal};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// Which database the cluster shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A private PostgreSQL server (Debian's binaries, run as the `postgres` user).
    Postgres,
    /// One SQLite file per service, shared by its replicas.
    Sqlite,
}

/// The two kinds of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Auth,
    Book,
}

/// One service process and how to start it again.
pub struct Replica {
    pub kind: Kind,
    pub name: String,
    pub port: u16,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self, binary: &Path) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let child = Command::new(binary)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .and_then(|pid| Pid::from_raw(i32::try_from(pid).ok()?))
            .context("the replica is not running")?;
        kill_process(pid, signal).with_context(|| format!("signal {}", self.name))
    }
}

/// The database and the five processes.
pub struct Cluster {
    pub replicas: Vec<Replica>,
    pub backend: Backend,
    bin_dir: PathBuf,
    postgres: Option<postgres::Cluster>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the database and every replica, and waits until each is SERVING.
    pub async fn start(
        backend: Backend,
        bin_dir: &Path,
        access_token_ttl: Duration,
    ) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("bookstore-soak-")
            .tempdir()?;
        let (postgres, auth_db, book_db) = match backend {
            Backend::Postgres => {
                let server = postgres::Cluster::init();
                server.start();
                let admin = server.url("postgres");
                database::create_database(&admin, "soak_auth");
                database::create_database(&admin, "soak_books");
                let (auth, books) = (server.url("soak_auth"), server.url("soak_books"));
                (Some(server), auth, books)
            }
            Backend::Sqlite => (
                None,
                bookstore_testkit::sqlite_url(dir.path(), "auth.db"),
                bookstore_testkit::sqlite_url(dir.path(), "books.db"),
            ),
        };
        let secret = dir.path().join("book-service.secret");
        let provision = Command::new(bin_dir.join("auth-service"))
            .args(["clients", "ensure", "book-service"])
            .args(["--scopes", "revocations:watch", "--secret-file"])
            .arg(&secret)
            .env("AUTH_DATABASE_URL", &auth_db)
            .output()
            .context("run auth-service clients ensure")?;
        if !provision.status.success() {
            bail!(
                "auth-service clients ensure failed: {}",
                String::from_utf8_lossy(&provision.stderr)
            );
        }
        let auth_ports = [any_port_number(), any_port_number()];
        let mut replicas = Vec::new();
        for (i, port) in auth_ports.iter().enumerate() {
            replicas.push(Replica {
                kind: Kind::Auth,
                name: format!("auth-{}", i + 1),
                port: *port,
                args: vec!["--listen".into(), format!("127.0.0.1:{port}")],
                env: vec![
                    ("AUTH_DATABASE_URL".into(), auth_db.clone()),
                    // Every actor registers from 127.0.0.1: the per-address register limit
                    // would otherwise be the first thing the soak measures.
                    ("AUTH_REGISTER_LIMIT".into(), "1000000".into()),
                    // Short enough that tokens expire and revocations are forgotten in a run.
                    (
                        "AUTH_ACCESS_TOKEN_TTL".into(),
                        format!("{}s", access_token_ttl.as_secs()),
                    ),
                ],
                log: dir.path().join(format!("auth-{}.log", i + 1)),
                child: None,
            });
        }
        for i in 0..3 {
            let port = any_port_number();
            replicas.push(Replica {
                kind: Kind::Book,
                name: format!("book-{}", i + 1),
                port,
                args: vec![
                    "--listen".into(),
                    format!("127.0.0.1:{port}"),
                    "--auth-url".into(),
                    format!("http://127.0.0.1:{}", auth_ports[i % 2]),
                    "--auth-client-id".into(),
                    "book-service".into(),
                    "--auth-client-secret-file".into(),
                    secret.display().to_string(),
                ],
                env: vec![("BOOK_DATABASE_URL".into(), book_db.clone())],
                log: dir.path().join(format!("book-{}.log", i + 1)),
                child: None,
            });
        }
        let mut cluster = Cluster {
            replicas,
            backend,
            bin_dir: bin_dir.to_path_buf(),
            postgres,
            dir,
        };
        for i in 0..cluster.replicas.len() {
            cluster.spawn(i)?;
        }
        cluster.wait_serving(Duration::from_secs(60)).await?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let binary = match self.replicas[i].kind {
            Kind::Auth => self.bin_dir.join("auth-service"),
            Kind::Book => self.bin_dir.join("book-service"),
        };
        self.replicas[i].spawn(&binary)
    }

    /// The names and URLs of the replicas of `kind`.
    pub fn endpoints(&self, kind: Kind) -> Vec<(String, String)> {
        self.replicas
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| (r.name.clone(), r.url()))
            .collect()
    }

    /// `kill -9` of replica `i`, then the same command again on the same port.
    pub fn kill9_and_restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.replicas[i].signal(Signal::KILL)?;
        if let Some(mut child) = self.replicas[i].child.take() {
            child.wait()?;
        }
        self.spawn(i)
    }

    /// SIGSTOP (`away`) or SIGCONT every auth-service: a peer that holds its connections open
    /// and answers nothing, the hardest way for it to be away.
    pub fn pause_auth(&self, away: bool) -> anyhow::Result<()> {
        let signal = if away { Signal::STOP } else { Signal::CONT };
        for replica in self.replicas.iter().filter(|r| r.kind == Kind::Auth) {
            replica.signal(signal)?;
        }
        Ok(())
    }

    /// Stops the database server (`-m fast`), keeps it down for `down`, starts it again. `None`
    /// on SQLite, where there is no server to restart.
    pub async fn restart_database(&self, down: Duration) -> Option<()> {
        let server = self.postgres.as_ref()?;
        tokio::task::block_in_place(|| server.stop());
        tokio::time::sleep(down).await;
        tokio::task::block_in_place(|| server.start());
        Some(())
    }

    /// Waits until every replica answers health SERVING.
    pub async fn wait_serving(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        for replica in &self.replicas {
            while !serving(&replica.url()).await {
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "{} is not SERVING after {within:?} (log: {})",
                        replica.name,
                        replica.log.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Where the replicas' logs are.
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops every process (SIGCONT first, in case the auth-services are paused).
    pub fn stop(&mut self) {
        let _ = self.pause_auth(false);
        for replica in &mut self.replicas {
            if let Some(mut child) = replica.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serving(url: &str) -> bool {
    let check = async {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string()).ok()?;
        let mut client = HealthClient::new(channel.connect().await.ok()?);
        let answer = client
            .check(HealthCheckRequest::default())
            .await
            .ok()?
            .into_inner();
        Some(answer.status == ServingStatus::Serving as i32)
    };
    tokio::time::timeout(Duration::from_secs(2), check)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
