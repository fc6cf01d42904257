//! Storage both services run on. The database URL picks the [`Backend`]: an embedded SQLite file
//! (the default) or a shared PostgreSQL database that any number of replicas use at once. Both
//! are reached through sqlx's `Any` driver, so each service's `db.rs` is one code path: its SQL
//! uses `$N` placeholders, BIGINT integers and 0/1 flags, which both dialects read the same way;
//! the few places where the dialects differ ask [`Database::backend`]. Reads outside a writing
//! transaction ([`Database::fetch_all`]) are written once too ([`read`]) but run on
//! SQLite through rusqlite ([`readers`]), without sqlx's thread per connection; so do the
//! statements of the hot writes ([`tx`], [`group_commit`]).
//!
//! **SQLite** (WAL, `synchronous=FULL`, foreign keys, a busy timeout): this process writes
//! one transaction at a time (the group writer and sqlx's one writer connection take turns), and
//! every writing transaction starts with `BEGIN IMMEDIATE`, so a transaction never has to
//! upgrade a read lock (the case where SQLite answers "database is locked" without waiting).
//! Writes that arrive together share one transaction and one fsync ([`Database::write`],
//! [`group_commit`]). Another process writing at the same time (the admin subcommands) is waited
//! for up to the busy timeout.
//!
//! **PostgreSQL**: one pool of [`POSTGRES_CONNECTIONS`] per process, READ COMMITTED
//! transactions. No process is the single writer, so a read-modify-write locks what it read:
//! rows with [`Database::for_update`], a table with [`lock_table`]; "exactly once" rests on
//! constraints and conditional statements, never on a lock in this process.
//!
//! On either backend a database that is busy or unreachable maps to UNAVAILABLE
//! ([`database_status`]), never to its SQL text; the pool replaces broken connections.
//! Migrations (one folder per backend) run at start under a lock, so replicas starting together
//! on a fresh database migrate it once.

use std::{str::FromStr, sync::Arc, time::Duration};

use bookstore_contract::error;
use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
    sqlite::SqliteConnectOptions,
    Any, AnyPool, ConnectOptions, Executor, Transaction,
};
use tonic::Status;

pub mod errors;
pub mod group_commit;
pub mod read;
pub mod readers;
pub mod tx;

pub use errors::{describe, is_busy, is_full, is_unique_violation};
pub use tx::Tx;

use group_commit::{GroupCommit, Work};
use read::{Arg, Cost, FromColumns};
use readers::Readers;

/// How long a statement waits for another connection's lock (SQLite), and how long a call
/// waits for a free connection, before giving up with UNAVAILABLE.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite reader connections (WAL lets them run beside the writer).
const READERS: usize = 4;
/// Connections each process opens to PostgreSQL, at most: a replica's share of the server's
/// `max_connections` (100 by default).
pub const POSTGRES_CONNECTIONS: u32 = 10;

/// The storage engines a database URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://FILE` (also `sqlite:FILE`): an embedded file, created if missing.
    Sqlite,
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (also `postgresql://`): the database must exist.
    Postgres,
}

impl Backend {
    /// The backend `url` names, or a message saying why none does.
    pub fn of(url: &str) -> Result<Backend, String> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(format!(
                "database URL must start with sqlite:// or postgres:// (got {:?})",
                url.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// A service's migrations, one set per backend (the dialects differ in DDL).
#[derive(Debug)]
pub struct Migrations {
    /// `migrations/sqlite`.
    pub sqlite: Migrator,
    /// `migrations/postgres`.
    pub postgres: Migrator,
}

/// The `sqlite://` URL of `file` in `dir` (what `bookstore up` and tests use).
pub fn sqlite_url(dir: &std::path::Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// A service's database: on SQLite one writer and several readers, on PostgreSQL one pool.
#[derive(Debug, Clone)]
pub struct Database {
    backend: Backend,
    /// Where writing transactions run; use [`Database::write`] or [`Database::begin_write`].
    writer: AnyPool,
    /// SQLite only: the task that owns the writer connection and groups writes.
    group: Option<GroupCommit>,
    /// For queries that change nothing; use [`Database::read`].
    reading: Reading,
}

/// Where reads run.
#[derive(Debug, Clone)]
enum Reading {
    /// SQLite: read-only connections of our own, on rusqlite ([`readers`]).
    Sqlite(Arc<Readers>),
    /// PostgreSQL: the one pool.
    Postgres(AnyPool),
}

impl Database {
    /// Opens the database at `url` (a SQLite file is created if missing) and runs the
    /// migrations of its backend.
    pub async fn connect(url: &str, migrations: &Migrations) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url).map_err(anyhow::Error::msg)?;
        let database = match backend {
            Backend::Sqlite => Self::connect_sqlite(url, &migrations.sqlite).await,
            Backend::Postgres => Self::connect_postgres(url, &migrations.postgres).await,
        };
        database.map_err(|e| anyhow::anyhow!("database: {}", describe(&e)))
    }

    async fn connect_sqlite(url: &str, migrator: &Migrator) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?;
        let path = options.get_filename().to_path_buf();
        create_private(&path)?;
        // The Any driver rebuilds SQLite options from a URL, which carries the open mode only:
        // foreign keys and the 5 s busy timeout are sqlx's defaults for every connection, and
        // `synchronous` is set on the writer here (readers commit nothing).
        let any = |options: SqliteConnectOptions| {
            AnyConnectOptions::from_str(options.to_url_lossy().as_str())
        };
        // Processes starting together on a fresh file would each see it unmigrated and race to
        // switch it to WAL and create the tables; an exclusive lock on the directory lets one
        // do it while the others wait, then find it done. (Not on the file itself: closing any
        // descriptor of it would drop SQLite's own locks in this process.)
        let migrating = lock_directory(&path).await?;
        // No ping before each checkout: a SQLite connection does not break while idle, and the
        // ping is a round trip to the connection's worker thread.
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    Ok(())
                })
            })
            .connect_with(any(options.clone().create_if_missing(true))?)
            .await?;
        // WAL is a property of the file: set once, kept by every later connection.
        writer.execute("PRAGMA journal_mode = WAL").await?;
        migrator.run(&writer).await?;
        drop(migrating);
        let readers = Readers::open(&path, READERS, BUSY_TIMEOUT)?;
        Ok(Database {
            backend: Backend::Sqlite,
            group: Some(GroupCommit::start(path, BUSY_TIMEOUT, writer.clone())?),
            writer,
            reading: Reading::Sqlite(Arc::new(readers)),
        })
    }

    async fn connect_postgres(url: &str, migrator: &Migrator) -> Result<Self, sqlx::Error> {
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(BUSY_TIMEOUT)
            // No ping before each checkout (a round trip to the server per statement): sqlx
            // already pings a connection when it comes back, and drops it if that fails; a
            // connection broken meanwhile fails its statement with UNAVAILABLE and is dropped.
            .test_before_acquire(false)
            // Notices ("relation already exists, skipping") are not worth a log line.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET client_min_messages = warning").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        // sqlx takes a PostgreSQL advisory lock around the migrations.
        migrator.run(&pool).await?;
        Ok(Database {
            backend: Backend::Postgres,
            group: None,
            writer: pool.clone(),
            reading: Reading::Postgres(pool),
        })
    }

    /// Which backend this is, for the few statements the dialects spell differently.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Every row `sql` returns with `args`, each made by `T` ([`read`]). On SQLite
    /// the statement runs on a reader beside the writer (WAL), on this task or, for a
    /// [`Cost::Scan`], on the blocking pool; on PostgreSQL on the pool. Waits up to the busy
    /// timeout for a connection.
    pub async fn fetch_all<T: FromColumns + Send + 'static>(
        &self,
        cost: Cost,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.rows(cost, sql, args, None).await
    }

    /// The first row `sql` returns with `args`, if any ([`Database::fetch_all`]).
    pub async fn fetch_optional<T: FromColumns + Send + 'static>(
        &self,
        cost: Cost,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(self.rows(cost, sql, args, Some(1)).await?.pop())
    }

    async fn rows<T: FromColumns + Send + 'static>(
        &self,
        cost: Cost,
        sql: &str,
        args: Vec<Arg>,
        limit: Option<usize>,
    ) -> Result<Vec<T>, sqlx::Error> {
        match (&self.reading, cost) {
            (Reading::Sqlite(readers), Cost::Lookup) => {
                readers
                    .run(|conn| read::sqlite_rows(conn, sql, &args, limit))
                    .await
            }
            (Reading::Sqlite(readers), Cost::Scan) => {
                let sql = sql.to_owned();
                readers
                    .run_blocking(move |conn| read::sqlite_rows(conn, &sql, &args, limit))
                    .await
            }
            (Reading::Postgres(pool), _) => read::sqlx_rows(pool, sql, &args, limit).await,
        }
    }

    /// Runs `work` in a writing transaction and returns its result once that committed; an
    /// error from `work` rolls back what it wrote. On SQLite, writes arriving together share
    /// one transaction, each in its own savepoint ([`group_commit`]); on PostgreSQL, whose
    /// server groups commits itself, each runs in a transaction of its own on the pool. For the
    /// hot writes (book CRUD, a login's throttle counters and refresh token).
    pub async fn write<T, E>(&self, work: Work<T, E>) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        if let Some(group) = &self.group {
            return group.write(work).await;
        }
        let mut tx = self.begin_write().await?;
        let value = work(Tx::Sqlx(&mut tx)).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Starts a writing transaction of its own (`BEGIN IMMEDIATE` on SQLite, taking the writer
    /// connection between two group commits). It rolls back when dropped uncommitted; nothing is
    /// acknowledged before `commit` returns. For auth-service's rarer writes (registration,
    /// rotation, keys, revocations).
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// What to append to a `SELECT` inside a writing transaction so that the rows it reads stay
    /// as read until the commit: ` FOR UPDATE` on PostgreSQL; nothing on SQLite, whose writing
    /// transactions already exclude each other.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// The 32-byte secret called `name` from the service's `settings` table, made at random on
    /// first use (every service's first migration creates that table). Replicas racing to make
    /// it all end up with the one that committed first.
    pub async fn secret(&self, name: &str) -> Result<[u8; 32], sqlx::Error> {
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh.to_vec())
        .execute(&mut *tx)
        .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        stored
            .try_into()
            .map_err(|_| sqlx::Error::Protocol(format!("setting {name} is not 32 bytes")))
    }

    /// The group-commit counters (SQLite), for `/metrics`.
    pub fn group_commit_counts(&self) -> Option<&group_commit::Counts> {
        self.group.as_ref().map(GroupCommit::counts)
    }

    /// Connections of each pool: (pool, open, idle).
    pub fn pool_use(&self) -> Vec<(&'static str, u32, usize)> {
        let use_of = |name, pool: &AnyPool| (name, pool.size(), pool.num_idle());
        match self.backend {
            Backend::Sqlite => {
                let readers = match &self.reading {
                    Reading::Sqlite(readers) => readers.usage(),
                    Reading::Postgres(_) => (0, 0),
                };
                vec![
                    use_of("writer", &self.writer),
                    ("reader", readers.0, readers.1),
                ]
            }
            Backend::Postgres => vec![use_of("postgres", &self.writer)],
        }
    }

    /// Closes the pools (waits for checked-out connections).
    pub async fn close(&self) {
        self.writer.close().await;
        if let Reading::Sqlite(readers) = &self.reading {
            readers.close();
        }
    }
}

/// Tries one connection to the database at `url` and closes it (nothing to try for SQLite,
/// whose file is created on connect): what [`crate::waiting`] retries.
pub async fn probe(url: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    if Backend::of(url) != Ok(Backend::Postgres) {
        return Ok(());
    }
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(url)?;
    let conn = tokio::time::timeout(BUSY_TIMEOUT, options.connect())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    conn.close().await
}

/// Locks `table` against other writers until the transaction ends, on PostgreSQL (readers go
/// on); nothing on SQLite, whose writing transactions already exclude each other. For rare
/// writes that must be ordered as a whole (a new signing key, a revocation's cursor).
pub async fn lock_table(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    table: &'static str,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        tx.execute(format!("LOCK TABLE {table} IN EXCLUSIVE MODE").as_str())
            .await?;
    }
    Ok(())
}

/// Creates the database file `path` with mode 0600 if it does not exist yet: it holds signing
/// keys and password hashes. SQLite gives its `-wal` and `-shm` files the database file's
/// mode, so they are private too. An existing file keeps the mode its owner gave it.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// An exclusive `flock` on the directory holding `path`, held until dropped.
async fn lock_directory(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    tokio::task::spawn_blocking(move || {
        let handle = std::fs::File::open(&dir)?;
        handle.lock()?;
        Ok(handle)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The status a database error becomes: UNAVAILABLE when busy or unreachable, otherwise
/// INTERNAL with the SQL error in the log only.
pub fn database_status(domain: &str, err: &sqlx::Error) -> Status {
    if is_full(err) {
        tracing::warn!(error = %err, "database storage is full: writes are refused (UNAVAILABLE) until space returns");
        error::busy(domain)
    } else if is_busy(err) {
        tracing::warn!(error = %err, "database busy or unreachable");
        error::busy(domain)
    } else {
        error::internal(domain, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_scheme_picks_the_backend_and_others_are_refused_with_a_reason() {
        assert_eq!(Backend::of("sqlite://books.db"), Ok(Backend::Sqlite));
        assert_eq!(Backend::of("SQLITE:books.db"), Ok(Backend::Sqlite));
        assert_eq!(Backend::of("postgres://u:p@h/db"), Ok(Backend::Postgres));
        assert_eq!(Backend::of("postgresql://h/db"), Ok(Backend::Postgres));
        let other = Backend::of("mysql://h/db").expect_err("unknown");
        assert!(
            other.contains("sqlite://") && other.contains("postgres://"),
            "{other}"
        );
    }
}
