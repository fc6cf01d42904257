//! Group commit on the SQLite writer. SQLite commits one transaction at a time and, with
//! `synchronous=FULL`, each commit waits for an fsync: one write per transaction caps a
//! process at one write per fsync however many callers wait. Here the writer connection is
//! owned by one task that takes every write queued while the previous commit ran, runs them in
//! one transaction, each inside its own savepoint (a write that fails is rolled back alone and
//! fails only its caller), commits once, and only then answers each caller. Nothing is
//! acknowledged before the commit that holds it, so a crash loses only unacknowledged writes.

use std::panic::AssertUnwindSafe;

use futures::{future::BoxFuture, FutureExt};
use prometheus::IntCounter;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::errors::{is_busy, is_full};

/// Writes in one transaction, at most (bounds how long the first of them waits).
const MAX_BATCH: usize = 256;
/// Writes queued for the writer before callers wait to queue.
const QUEUE: usize = 1024;

/// A write: its statements, run on the writer's connection inside a transaction. Whatever it
/// returns reaches its caller only after the transaction commits.
pub type Work<T, E> =
    Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send>;

/// A queued write, its result type erased. It is given the connection (or the error that kept
/// its transaction from running) and leaves what the writer must do next.
type Job = Box<
    dyn for<'c> FnOnce(Result<&'c mut AnyConnection, &'c sqlx::Error>) -> BoxFuture<'c, Done>
        + Send,
>;

/// A write that ran: keep its savepoint or roll it back, and answer its caller with the
/// commit's outcome.
struct Done {
    keep: bool,
    answer: Answer,
}

/// Tells a caller its result, given the error that failed the commit (`None`: committed).
type Answer = Box<dyn FnOnce(Option<&sqlx::Error>) + Send>;

/// The queue to the writer task (cheap to clone).
#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    counts: Counts,
}

/// What the writer task did, for `/metrics`: writes per commit is their ratio.
#[derive(Debug, Clone)]
pub struct Counts {
    /// `bookstore_db_group_commits_total`: group transactions committed.
    pub commits: IntCounter,
    /// `bookstore_db_group_commit_writes_total`: writes committed by them (a write that failed
    /// and was rolled back to its savepoint is not counted).
    pub writes: IntCounter,
}

impl GroupCommit {
    /// Starts the writer task on `pool` (one connection). It ends when every handle is gone.
    pub fn start(pool: AnyPool) -> Self {
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
        tokio::spawn(run(pool, queue, counts.clone()));
        GroupCommit { jobs, counts }
    }

    /// The writer task's counters.
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
                    Ok(conn) => match AssertUnwindSafe(work(conn)).catch_unwind().await {
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

/// The writer task: one group transaction per turn, with every write queued meanwhile.
async fn run(pool: AnyPool, mut queue: mpsc::Receiver<Job>, counts: Counts) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&pool, &mut batch, &counts).await;
    }
}

/// Runs `batch` in one transaction, each write in a savepoint, commits, then answers all.
/// A failure of the transaction itself (BEGIN, a savepoint, COMMIT: the database is busy,
/// broken or full) fails every write of the batch, with nothing of it stored.
async fn commit(pool: &AnyPool, batch: &mut Vec<Job>, counts: &Counts) {
    let mut jobs = batch.drain(..);
    let mut answers = Vec::with_capacity(jobs.len());
    let mut kept = 0;
    let outcome: Result<(), sqlx::Error> = async {
        let mut conn = pool.acquire().await?;
        let batch = async {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            // Whether the previous write's savepoint is still open (kept, not yet released).
            let mut open = false;
            for job in jobs.by_ref() {
                // A kept write's savepoint is released when the next write opens its own, in one
                // round trip to SQLite's thread, and by COMMIT after the last. Released rather than
                // left stacked: SQLite checks every open savepoint on each page it changes
                // (measured: 64 stacked savepoints cost a third of the group's rate).
                let begin = if open {
                    "RELEASE write; SAVEPOINT write"
                } else {
                    "SAVEPOINT write"
                };
                statements(&mut tx, begin).await?;
                let done = job(Ok(&mut *tx)).await;
                answers.push(done.answer);
                open = done.keep;
                if done.keep {
                    kept += 1;
                } else {
                    statements(&mut tx, "ROLLBACK TO write; RELEASE write").await?;
                }
            }
            // COMMIT also ends the last write's savepoint, keeping what it wrote.
            tx.commit().await
        }
        .await;
        if batch.is_err() {
            // A transaction that failed (a full disk fails COMMIT) may be left open on the
            // connection, and every later BEGIN on it would fail too: the connection is
            // closed instead of going back to the pool, and the next turn opens a fresh one.
            // So the writer recovers by itself once the cause is gone.
            conn.close_on_drop();
        }
        batch
    }
    .await;
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
            (job(Err(err)).await.answer)(None);
        }
    }
}

/// Runs `sql` (statements without parameters) in one round trip to the connection's thread.
fn statements<'c>(
    conn: &'c mut AnyConnection,
    sql: &'static str,
) -> BoxFuture<'c, Result<(), sqlx::Error>> {
    Box::pin(async move { conn.execute(sql).await.map(drop) })
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
        let group = GroupCommit::start(pool.clone());
        // The first write holds its transaction open until the 63 others are queued, so they
        // all land in the next one.
        let release = Arc::new(tokio::sync::Notify::new());
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut calls = Vec::new();
        for n in 0..64_i64 {
            let (group, release, flag) = (group.clone(), release.clone(), started.clone());
            calls.push(tokio::spawn(async move {
                group
                    .write::<i64, Failure>(Box::new(move |conn| {
                        Box::pin(async move {
                            if n == 0 {
                                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                                release.notified().await;
                            }
                            sqlx::query("INSERT INTO t (n) VALUES ($1)")
                                .bind(n)
                                .execute(conn)
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
