//! Group commit on the SQLite writer. SQLite commits one transaction at a time and, with
//! `synchronous=FULL`, each commit waits for an fsync: one write per transaction caps a
//! process at one write per fsync however many callers wait. Here one thread owns a writer
//! connection (rusqlite), takes every write queued while the previous commit ran, runs them in
//! one transaction, each inside its own savepoint (a write that fails is rolled back alone and
//! fails only its caller), commits once, and only then answers each caller. Nothing is
//! acknowledged before the commit that holds it, so a crash loses only unacknowledged writes.
//!
//! The writes' statements run on that thread as plain function calls ([`Tx::Sqlite`]). On sqlx
//! each statement was a hand-off to the connection's own worker thread and back: three or four
//! per CreateBook, two context switches each, which with the service pinned to one core capped
//! the writes per second well before the disk did (BENCHMARKS.md).
//!
//! The writer also takes sqlx's writer pool's one connection for the length of each batch, so a
//! transaction of [`super::Database::begin_write`] (auth-service's rarer writes) and a batch take
//! turns in this process instead of meeting at SQLite's file lock, where the one that waits
//! sleeps and polls.

use std::{panic::AssertUnwindSafe, path::PathBuf, time::Duration};

use futures::{future::BoxFuture, FutureExt};
use prometheus::IntCounter;
use rusqlite::{Connection, OpenFlags};
use sqlx::AnyPool;
use tokio::{
    runtime::Handle,
    sync::{mpsc, oneshot},
};

use super::{
    errors::{is_busy, is_full, sqlite_error},
    tx::Tx,
};

/// Writes in one transaction, at most (bounds how long the first of them waits).
const MAX_BATCH: usize = 256;
/// Writes queued for the writer before callers wait to queue.
const QUEUE: usize = 1024;
/// Prepared statements the writer keeps (the services' writes are a few dozen shapes).
const STATEMENT_CACHE: usize = 64;

/// A write: its statements, run inside a transaction. Whatever it returns reaches its caller
/// only after the transaction commits.
pub type Work<T, E> = Box<dyn for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T, E>> + Send>;

/// A queued write, its result type erased. It is given the connection (or the error that kept
/// its transaction from running) and leaves what the writer must do next.
type Job = Box<
    dyn for<'c> FnOnce(Result<&'c mut Connection, &'c sqlx::Error>) -> BoxFuture<'c, Done> + Send,
>;

/// A write that ran: keep its savepoint or roll it back, and answer its caller with the
/// commit's outcome.
struct Done {
    keep: bool,
    answer: Answer,
}

/// Tells a caller its result, given the error that failed the commit (`None`: committed).
type Answer = Box<dyn FnOnce(Option<&sqlx::Error>) + Send>;

/// The queue to the writer thread (cheap to clone).
#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    counts: Counts,
}

/// What the writer did, for `/metrics`: writes per commit is their ratio.
#[derive(Debug, Clone)]
pub struct Counts {
    /// `bookstore_db_group_commits_total`: group transactions committed.
    pub commits: IntCounter,
    /// `bookstore_db_group_commit_writes_total`: writes committed by them (a write that failed
    /// and was rolled back to its savepoint is not counted).
    pub writes: IntCounter,
}

/// The writer thread's connection, reopened after a failure that left it unusable.
struct Writer {
    path: PathBuf,
    busy_timeout: Duration,
    conn: Option<Connection>,
}

impl Writer {
    /// The open connection, opened first if needed.
    fn conn(&mut self) -> Result<&mut Connection, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(open(&self.path, self.busy_timeout).map_err(sqlite_error)?);
        }
        Ok(self.conn.as_mut().expect("just opened"))
    }
}

/// A writer connection to the (migrated, WAL) file at `path`: every commit fsync'd, foreign
/// keys on, as sqlx's connections have them.
fn open(path: &std::path::Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl GroupCommit {
    /// Starts the writer thread on the SQLite file at `path`; `turns` is sqlx's writer pool
    /// (one connection), taken for each batch. The thread ends when every handle is gone.
    /// Called on the Tokio runtime, which the writer uses to wait.
    pub fn start(path: PathBuf, busy_timeout: Duration, turns: AnyPool) -> std::io::Result<Self> {
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help).expect("a valid metric name and help")
        };
        let counts = Counts {
            commits: counter(
                "bookstore_db_group_commits_total",
                "SQLite group transactions committed.",
            ),
            writes: counter(
                "bookstore_db_group_commit_writes_total",
                "Writes committed by SQLite group transactions.",
            ),
        };
        let (jobs, queue) = mpsc::channel(QUEUE);
        let writer = Writer {
            path,
            busy_timeout,
            conn: None,
        };
        let (runtime, thread_counts) = (Handle::current(), counts.clone());
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(writer, queue, turns, thread_counts, runtime))?;
        Ok(GroupCommit { jobs, counts })
    }

    /// The writer's counters.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Runs `work` in the next group transaction and returns its result once that committed.
    pub async fn write<T, E>(&self, work: Work<T, E>) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = match conn {
                    Ok(conn) => match AssertUnwindSafe(work(Tx::Sqlite(conn)))
                        .catch_unwind()
                        .await
                    {
                        Ok(result) => result,
                        Err(_) => Err(E::from(sqlx::Error::WorkerCrashed)),
                    },
                    Err(refused) => Err(E::from(shared(refused))),
                };
                Done {
                    keep: result.is_ok(),
                    answer: Box::new(move |commit: Option<&sqlx::Error>| {
                        let result = match (result, commit) {
                            (Ok(_), Some(failed)) => Err(E::from(shared(failed))),
                            (result, _) => result,
                        };
                        // The caller may have gone (a cancelled call): nobody to tell.
                        let _ = reply.send(result);
                    }),
                }
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| E::from(sqlx::Error::PoolClosed))?;
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(sqlx::Error::WorkerCrashed)))
    }
}

/// The writer thread: one group transaction per turn, with every write queued meanwhile.
fn run(
    mut writer: Writer,
    mut queue: mpsc::Receiver<Job>,
    turns: AnyPool,
    counts: Counts,
    runtime: Handle,
) {
    // sqlx gives a pooled connection back by spawning a task on the runtime.
    let _context = runtime.enter();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(&mut writer, &mut batch, &turns, &counts, &runtime);
    }
}

/// Runs `batch` in one transaction, each write in a savepoint, commits, then answers all.
/// A failure of the transaction itself (BEGIN, a savepoint, COMMIT: the database is busy,
/// broken or full) fails every write of the batch, with nothing of it stored.
fn commit(
    writer: &mut Writer,
    batch: &mut Vec<Job>,
    turns: &AnyPool,
    counts: &Counts,
    runtime: &Handle,
) {
    let mut jobs = batch.drain(..);
    let mut answers = Vec::with_capacity(jobs.len());
    let mut kept = 0;
    // This process's turn at writing: held until the batch committed or failed.
    let turn = runtime.block_on(turns.acquire());
    let outcome = turn.and_then(|_turn| {
        let conn = writer.conn()?;
        let batch = (|| {
            let run = |conn: &Connection, sql: &str| conn.execute_batch(sql).map_err(sqlite_error);
            run(conn, "BEGIN IMMEDIATE")?;
            // Whether the previous write's savepoint is still open (kept, not yet released).
            let mut open = false;
            for job in jobs.by_ref() {
                // A kept write's savepoint is released when the next write opens its own, and by
                // COMMIT after the last. Released rather than left stacked: SQLite checks every
                // open savepoint on each page it changes (measured: 64 stacked savepoints cost a
                // third of the group's rate).
                run(
                    conn,
                    if open {
                        "RELEASE write; SAVEPOINT write"
                    } else {
                        "SAVEPOINT write"
                    },
                )?;
                // A write's statements run at once on this thread; its future ends on its first
                // poll unless the write waits for something else.
                let done = runtime.block_on(job(Ok(&mut *conn)));
                answers.push(done.answer);
                open = done.keep;
                if done.keep {
                    kept += 1;
                } else {
                    run(conn, "ROLLBACK TO write; RELEASE write")?;
                }
            }
            // COMMIT also ends the last write's savepoint, keeping what it wrote.
            run(conn, "COMMIT")
        })();
        if batch.is_err() && !conn.is_autocommit() {
            // A transaction that failed (a full disk fails COMMIT) is rolled back, so the next
            // BEGIN can run; a connection that cannot even do that is closed and the next turn
            // opens a fresh one. So the writer recovers by itself once the cause is gone.
            if conn.execute_batch("ROLLBACK").is_err() || !conn.is_autocommit() {
                writer.conn = None;
            }
        }
        batch
    });
    let failed = outcome.err();
    match &failed {
        None => {
            counts.commits.inc();
            counts.writes.inc_by(kept);
        }
        Some(err) => {
            let writes = answers.len() + jobs.len();
            tracing::warn!(error = %err, writes, "group commit failed: every write of it refused");
        }
    }
    for answer in answers {
        answer(failed.as_ref());
    }
    if let Some(err) = &failed {
        for job in jobs {
            (runtime.block_on(job(Err(err))).answer)(None);
        }
    }
}

/// A copy of `err` for each caller of a failed batch (sqlx errors cannot be cloned) that keeps
/// what the caller is told: busy or unreachable stays retryable (UNAVAILABLE), anything else
/// stays internal.
fn shared(err: &sqlx::Error) -> sqlx::Error {
    if is_full(err) {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            err.to_string(),
        ))
    } else if is_busy(err) {
        sqlx::Error::Io(std::io::Error::other(err.to_string()))
    } else {
        sqlx::Error::Protocol(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sqlx::any::AnyPoolOptions;

    use super::*;

    /// The writer's pool on a fresh file with table `t`.
    async fn writer(dir: &std::path::Path) -> AnyPool {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("sqlite");
        sqlx::query("CREATE TABLE t (n BIGINT PRIMARY KEY)")
            .execute(&pool)
            .await
            .expect("table");
        pool
    }

    #[derive(Debug)]
    enum Failure {
        Refused(i64),
        Database(sqlx::Error),
    }

    impl From<sqlx::Error> for Failure {
        fn from(e: sqlx::Error) -> Self {
            Failure::Database(e)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_together_share_one_commit_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = writer(dir.path()).await;
        let group = GroupCommit::start(
            dir.path().join("t.db"),
            Duration::from_secs(5),
            pool.clone(),
        )
        .expect("writer thread");
        // The first write holds its transaction open until the 63 others are queued, so they
        // all land in the next one.
        let release = Arc::new(tokio::sync::Notify::new());
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut calls = Vec::new();
        for n in 0..64_i64 {
            let (group, release, flag) = (group.clone(), release.clone(), started.clone());
            calls.push(tokio::spawn(async move {
                group
                    .write::<i64, Failure>(Box::new(move |mut tx| {
                        Box::pin(async move {
                            if n == 0 {
                                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                                release.notified().await;
                            }
                            tx.execute("INSERT INTO t (n) VALUES ($1)", &[n.into()])
                                .await?;
                            // Every 8th write fails after writing: its row must not stay.
                            if n % 8 == 7 {
                                return Err(Failure::Refused(n));
                            }
                            Ok(n)
                        })
                    }))
                    .await
            }));
            while !started.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::task::yield_now().await;
            }
        }
        while QUEUE - group.jobs.capacity() < 63 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        for (n, call) in calls.into_iter().enumerate() {
            match call.await.expect("write task") {
                Ok(value) => assert_eq!(value, n as i64),
                Err(Failure::Refused(value)) => assert_eq!((value, value % 8), (n as i64, 7)),
                Err(Failure::Database(e)) => panic!("write {n}: {e}"),
            }
        }
        let stored: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&pool)
            .await
            .expect("select");
        let expected: Vec<i64> = (0..64).filter(|n| n % 8 != 7).collect();
        assert_eq!(stored, expected);
        assert_eq!(
            group.counts().commits.get(),
            2,
            "one commit for the first, one for the rest"
        );
        assert_eq!(
            group.counts().writes.get(),
            56,
            "the failed ones are not counted"
        );
    }
}
