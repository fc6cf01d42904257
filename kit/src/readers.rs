//! SQLite's reader connections, checked out without sqlx's pool. sqlx's pool pings a connection
//! when it is given back (and, by default, before it is handed out); on SQLite each ping is a
//! round trip to the connection's worker thread, so a one-statement read cost three thread
//! hand-offs instead of one. A SQLite connection does not go stale while idle, and its worker
//! runs commands in order (a read abandoned half-way is finished or reset before the next
//! command runs), so here a connection goes back to the idle list as it is, and a read costs
//! one hand-off. PostgreSQL keeps sqlx's pool: its connections can break while idle.

use std::{
    ops::{Deref, DerefMut},
    str::FromStr,
    sync::Mutex,
    time::Duration,
};

use sqlx::{any::AnyConnectOptions, AnyConnection, ConnectOptions};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A fixed set of open read-only connections.
#[derive(Debug)]
pub struct Readers {
    idle: Mutex<Vec<AnyConnection>>,
    /// One permit per idle connection.
    available: Semaphore,
    size: usize,
    wait: Duration,
}

/// A checked-out reader; goes back to the idle list when dropped.
#[derive(Debug)]
pub struct Reader<'a> {
    conn: Option<AnyConnection>,
    readers: &'a Readers,
    _permit: SemaphorePermit<'a>,
}

impl Readers {
    /// Opens `size` connections to the SQLite `url`; a checkout waits at most `wait`.
    pub async fn open(url: &str, size: usize, wait: Duration) -> Result<Self, sqlx::Error> {
        let options = AnyConnectOptions::from_str(url)?;
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            idle.push(options.connect().await?);
        }
        Ok(Readers {
            idle: Mutex::new(idle),
            available: Semaphore::new(size),
            size,
            wait,
        })
    }

    /// An idle connection, waiting for one if all are in use (UNAVAILABLE-worthy
    /// `PoolTimedOut` after the wait; `PoolClosed` once closed).
    pub async fn checkout(&self) -> Result<Reader<'_>, sqlx::Error> {
        let permit = tokio::time::timeout(self.wait, self.available.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let conn = self.lock().pop();
        match conn {
            Some(conn) => Ok(Reader {
                conn: Some(conn),
                readers: self,
                _permit: permit,
            }),
            // Permits and connections go together; a permit without one would be a bug here.
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// (open, idle) connections.
    pub fn usage(&self) -> (u32, usize) {
        let open = u32::try_from(self.size).unwrap_or(u32::MAX);
        (open, self.available.available_permits())
    }

    /// Refuses new checkouts and closes the idle connections (checked-out ones close when they
    /// come back).
    pub async fn close(&self) {
        self.available.close();
        let idle: Vec<_> = self.lock().drain(..).collect();
        for conn in idle {
            let _ = sqlx::Connection::close(conn).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AnyConnection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Deref for Reader<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !self.readers.available.is_closed() {
                self.readers.lock().push(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn readers(dir: &std::path::Path, size: usize, wait: Duration) -> Readers {
        sqlx::any::install_default_drivers();
        let file = dir.join("r.db");
        let created = format!("sqlite://{}?mode=rwc", file.display());
        let mut conn = AnyConnectOptions::from_str(&created)
            .expect("url")
            .connect()
            .await
            .expect("create");
        sqlx::query("CREATE TABLE t (n BIGINT)")
            .execute(&mut conn)
            .await
            .expect("table");
        let read_only = format!("sqlite://{}?mode=ro", file.display());
        Readers::open(&read_only, size, wait)
            .await
            .expect("readers")
    }

    #[tokio::test]
    async fn a_checkout_waits_for_a_returned_reader_then_times_out_and_fails_once_closed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let readers = readers(dir.path(), 2, Duration::from_millis(100)).await;
        let mut first = readers.checkout().await.expect("first");
        let second = readers.checkout().await.expect("second");
        assert_eq!(readers.usage(), (2, 0));
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *first)
            .await
            .expect("a reader reads");
        assert_eq!(n, 0);
        assert!(matches!(
            readers.checkout().await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        drop(second);
        let third = readers.checkout().await.expect("the returned reader");
        drop((first, third));
        assert_eq!(readers.usage(), (2, 2));
        readers.close().await;
        assert!(matches!(
            readers.checkout().await,
            Err(sqlx::Error::PoolClosed)
        ));
    }
}
