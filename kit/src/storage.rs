//! Storage both services run on. The database URL picks the [`Backend`]; today that is SQLite
//! (WAL, `synchronous=FULL`, foreign keys, a busy timeout, one writer connection and a pool of
//! readers, migrations at start). This module is the seam for a second backend: URL parsing,
//! connecting, migrations, the services' secrets and error mapping live here, so a PostgreSQL
//! backend changes this module and each service's `db.rs`, and nothing above them.
//!
//! One writer connection serialises this process's writes, and every writing transaction starts
//! with `BEGIN IMMEDIATE` ([`Database::begin_write`]), so a transaction never has to upgrade a
//! read lock (the case where SQLite answers "database is locked" without waiting). Another
//! process writing at the same time (the admin subcommands) is waited for up to the busy
//! timeout; past it the error maps to UNAVAILABLE ([`database_status`]), never to its SQL text.

use std::{str::FromStr, time::Duration};

use bookstore_contract::error;
use sqlx::{
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Sqlite, SqlitePool, Transaction,
};
use tonic::Status;

/// How long a statement waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections (WAL lets them run beside the writer).
const READERS: u32 = 8;

/// The storage engines a database URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://FILE` (also `sqlite:FILE`): an embedded file, created if missing.
    Sqlite,
}

impl Backend {
    /// The backend `url` names, or a message saying why none does.
    pub fn of(url: &str) -> Result<Backend, String> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Err(format!(
                "{scheme}:// database URLs are not supported yet; use sqlite://FILE"
            )),
            _ => Err(format!(
                "database URL must start with sqlite:// (got {:?})",
                url.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// The `sqlite://` URL of `file` in `dir` (what `bookstore up` and tests use).
pub fn sqlite_url(dir: &std::path::Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// A service's database: one writer, several readers.
#[derive(Debug, Clone)]
pub struct Database {
    /// The single writer connection; use [`Database::begin_write`].
    writer: SqlitePool,
    /// Readers, for queries that change nothing.
    pub reader: SqlitePool,
}

impl Database {
    /// Opens (creating if missing) the database at `url` and runs `migrator`.
    pub async fn connect(url: &str, migrator: &Migrator) -> anyhow::Result<Self> {
        Backend::of(url).map_err(anyhow::Error::msg)?;
        Ok(Self::connect_sqlite(url, migrator).await?)
    }

    async fn connect_sqlite(url: &str, migrator: &Migrator) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?;
        create_private(options.get_filename())?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        migrator.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Database { writer, reader })
    }

    /// Starts a writing transaction with `BEGIN IMMEDIATE`. It rolls back when dropped
    /// uncommitted; nothing is acknowledged before `commit` returns.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// The 32-byte secret called `name` from the service's `settings` table, made at random on
    /// first use (every service's first migration creates that table).
    pub async fn secret(&self, name: &str) -> Result<[u8; 32], sqlx::Error> {
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh.as_slice())
        .execute(&mut *tx)
        .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        stored
            .try_into()
            .map_err(|_| sqlx::Error::Protocol(format!("setting {name} is not 32 bytes")))
    }

    /// Connections of each pool: (pool, open, idle).
    pub fn pool_use(&self) -> [(&'static str, u32, usize); 2] {
        [
            ("writer", self.writer.size(), self.writer.num_idle()),
            ("reader", self.reader.size(), self.reader.num_idle()),
        ]
    }

    /// Closes both pools (waits for checked-out connections).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
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

/// Whether `err` means another connection held the lock past the busy timeout.
pub fn is_busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            matches!(
                db.code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .map(|c| c & 0xff),
                Some(5 | 6)
            )
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// Whether `err` is a UNIQUE constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The status a database error becomes: UNAVAILABLE when busy, otherwise INTERNAL with the
/// SQL error in the log only.
pub fn database_status(domain: &str, err: &sqlx::Error) -> Status {
    if is_busy(err) {
        tracing::warn!(error = %err, "database busy");
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
        let postgres = Backend::of("postgres://u:p@h/db").expect_err("not yet");
        assert!(postgres.contains("not supported yet"), "{postgres}");
        let other = Backend::of("mysql://h/db").expect_err("unknown");
        assert!(other.contains("sqlite://"), "{other}");
    }
}
