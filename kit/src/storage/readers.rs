//! SQLite's read-only connections, on rusqlite and run from the calling task itself. sqlx runs
//! each SQLite connection on a thread of its own and hands every statement, and every row, to
//! that thread and back: with the servers pinned to one core, that hand-off (a futex wake-up and
//! two context switches per query) and the conversion of each row into sqlx's `AnyRow` were the
//! largest costs of a GetBook beside tonic's own (BENCHMARKS.md). A key lookup or one keyset
//! page takes SQLite a few microseconds, less than the hand-off, so [`Readers::run`] runs it on
//! the task that asked; a statement that may scan many rows (a COUNT) goes to Tokio's blocking
//! pool instead ([`Readers::run_blocking`]), so no worker thread is held for long. WAL lets
//! these connections read beside the writer ([`super::group_commit`]).

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

use super::errors::sqlite_error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Prepared statements each connection keeps (the services' reads are a few dozen shapes).
const STATEMENT_CACHE: usize = 64;

/// A fixed set of open read-only connections.
#[derive(Debug)]
pub struct Readers {
    idle: Mutex<Vec<Connection>>,
    /// One permit per idle connection.
    available: Arc<Semaphore>,
    size: usize,
    wait: Duration,
}

/// A connection taken from the idle list, with the permit that stands for it.
struct Checkout {
    conn: Connection,
    permit: OwnedSemaphorePermit,
}

impl Readers {
    /// Opens `size` read-only connections to the SQLite file at `path`; a read waits at most
    /// `wait` for a free one, and a statement as long for a lock (`busy_timeout`).
    pub fn open(path: &Path, size: usize, wait: Duration) -> Result<Self, sqlx::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let idle = (0..size)
            .map(|_| {
                let conn = Connection::open_with_flags(path, flags)?;
                conn.busy_timeout(wait)?;
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                Ok(conn)
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite_error)?;
        Ok(Readers {
            idle: Mutex::new(idle),
            available: Arc::new(Semaphore::new(size)),
            size,
            wait,
        })
    }

    /// Runs `read` on an idle connection, on this task: for statements that touch few rows.
    /// Waits for a connection if all are in use (`PoolTimedOut` after the wait, which callers
    /// answer UNAVAILABLE; `PoolClosed` once closed).
    pub async fn run<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let Checkout { conn, permit } = self.checkout().await?;
        // Given back before the permit, also when `read` panics.
        let back = GiveBack(Some(conn), self);
        let result = read(back.0.as_ref().expect("held until dropped"));
        drop(back);
        drop(permit);
        result
    }

    /// Runs `read` on an idle connection, on Tokio's blocking pool: for statements that may
    /// scan many rows.
    pub async fn run_blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, sqlx::Error> + Send + 'static,
    ) -> Result<T, sqlx::Error> {
        let Checkout { conn, permit } = self.checkout().await?;
        match tokio::task::spawn_blocking(move || {
            let result = read(&conn);
            (conn, result)
        })
        .await
        {
            Ok((conn, result)) => {
                self.give_back(conn);
                drop(permit);
                result
            }
            Err(e) => {
                // The connection went down with the task: so does its permit.
                permit.forget();
                Err(sqlx::Error::Protocol(format!(
                    "SQLite read task failed: {e}"
                )))
            }
        }
    }

    async fn checkout(&self) -> Result<Checkout, sqlx::Error> {
        let permit = tokio::time::timeout(self.wait, self.available.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        match self.lock().pop() {
            Some(conn) => Ok(Checkout { conn, permit }),
            // Permits and connections go together; a permit without one would be a bug here.
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    fn give_back(&self, conn: Connection) {
        if !self.available.is_closed() {
            self.lock().push(conn);
        }
    }

    /// (open, idle) connections.
    pub fn usage(&self) -> (u32, usize) {
        let open = u32::try_from(self.size).unwrap_or(u32::MAX);
        (open, self.available.available_permits())
    }

    /// Refuses new reads and closes the idle connections (those in use close when they come
    /// back).
    pub fn close(&self) {
        self.available.close();
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Puts a connection back on the idle list when dropped.
struct GiveBack<'a>(Option<Connection>, &'a Readers);

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            self.1.give_back(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers(dir: &Path, size: usize, wait: Duration) -> Readers {
        let file = dir.join("r.db");
        let conn = Connection::open(&file).expect("create");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n BIGINT)")
            .expect("table");
        Readers::open(&file, size, wait).expect("readers")
    }

    fn count(conn: &Connection) -> Result<i64, sqlx::Error> {
        conn.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .map_err(sqlite_error)
    }

    #[tokio::test]
    async fn a_read_waits_for_a_returned_connection_then_times_out_and_fails_once_closed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let readers = Arc::new(readers(dir.path(), 1, Duration::from_millis(100)));
        assert_eq!(readers.run(count).await.expect("a reader reads"), 0);
        assert_eq!(readers.usage(), (1, 1));

        // The only connection is busy on the blocking pool until told to finish.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let readers = readers.clone();
            async move {
                readers
                    .run_blocking(move |conn| {
                        let _ = hold.recv();
                        count(conn)
                    })
                    .await
            }
        });
        while readers.usage().1 != 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            readers.run(count).await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        let waiting = tokio::spawn({
            let readers = readers.clone();
            async move { readers.run(count).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.send(()).expect("release");
        assert_eq!(busy.await.expect("joined").expect("blocking read"), 0);
        assert_eq!(waiting.await.expect("joined").expect("waited read"), 0);
        assert_eq!(readers.usage(), (1, 1));

        readers.close();
        assert!(matches!(
            readers.run(count).await,
            Err(sqlx::Error::PoolClosed)
        ));
    }

    #[tokio::test]
    async fn a_read_only_connection_refuses_to_write_and_the_error_is_not_busy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let readers = readers(dir.path(), 1, Duration::from_millis(100));
        let err = readers
            .run(|conn| {
                conn.execute("INSERT INTO t (n) VALUES (1)", [])
                    .map_err(sqlite_error)
            })
            .await
            .expect_err("read-only");
        // SQLITE_READONLY: neither retryable nor the caller's conflict.
        assert!(matches!(err, sqlx::Error::Database(_)), "{err:?}");
        assert!(!crate::storage::errors::is_busy(&err));
        assert!(!crate::storage::errors::is_full(&err));
        // The connection came back after the failed statement.
        assert_eq!(readers.usage(), (1, 1));
    }
}
