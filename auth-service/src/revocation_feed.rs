//! The revocation stream (`RevocationService/WatchRevocations`) and this service's own copy of
//! it.
//!
//! Revocations are rows of the database, written in the transaction that causes them
//! ([`crate::db`]), so every replica streams every one and none is lost across a crash. One
//! [`Feed`] per process reads them: it polls for new rows at once when this process commits
//! one (a `Notify`) and every [`POLL`] otherwise (rows written by another replica or by the
//! `admin disable` subcommand), and keeps the rows that still matter in memory. Every stream,
//! and this service's own interceptor, is served from that copy: 1 or 1,000 open streams cost
//! the database the same one poll. Streams are capped per client address
//! ([`MAX_STREAMS_PER_ADDRESS`]) because each holds a task and a connection.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bookstore_contract::proto::auth::{Revocation, WatchRevocationsResponse};
use bookstore_kit::{
    clock::timestamp_from_seconds,
    revoked::{Revocations, PRUNE_INTERVAL},
    Stopping,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::{accounts::Accounts, caller::ClientAddr, db::RevocationRow, error::Error};

/// How often the feed looks for revocations committed elsewhere.
pub const POLL: Duration = Duration::from_millis(250);
/// Most revocations read by one query and sent in one message.
const BATCH: i64 = 1000;
/// Concurrent WatchRevocations streams one client address may hold (RESOURCE_EXHAUSTED beyond).
pub const MAX_STREAMS_PER_ADDRESS: usize = 16;

/// The revocations that still matter, in cursor order, as the feed last read them.
type Rows = Arc<Vec<Revocation>>;

/// This process's one reader of the `revocations` table (cheap to clone).
#[derive(Debug, Clone)]
pub struct Feed {
    rows: watch::Receiver<Rows>,
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

impl Feed {
    /// Loads every revocation that still matters, then leaves a task that follows new ones
    /// until `stopping` fires. Fails when the first load does (the service cannot start
    /// without knowing what is revoked).
    pub async fn start(
        accounts: Accounts,
        mut stopping: Stopping,
    ) -> Result<(Feed, tokio::task::JoinHandle<()>), Error> {
        let mut cursor = 0;
        let mut rows = Vec::new();
        read_new(&accounts, &mut cursor, &mut rows).await?;
        let (sender, receiver) = watch::channel(Arc::new(rows));
        let task = tokio::spawn(async move {
            loop {
                // Created before the query, so a revocation committed meanwhile still wakes us.
                let committed = accounts.revoked.notified();
                let now = accounts.clock.unix_seconds();
                let mut rows: Vec<Revocation> = sender
                    .borrow()
                    .iter()
                    .filter(|r| r.expire_time.map_or(0, |t| t.seconds) > now)
                    .cloned()
                    .collect();
                let pruned = rows.len() != sender.borrow().len();
                let kept = rows.len();
                match read_new(&accounts, &mut cursor, &mut rows).await {
                    // Streams wake only when there is something new (or less to keep).
                    Ok(()) if pruned || rows.len() != kept => {
                        sender.send_replace(Arc::new(rows));
                    }
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "reading revocations failed; retrying"),
                }
                tokio::select! {
                    () = committed => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = stopping.wait() => return,
                }
            }
        });
        let feed = Feed {
            rows: receiver,
            streams: Arc::default(),
        };
        Ok((feed, task))
    }

    /// A stream for `client` of the revocations after `after`, ending when `stopping` fires or
    /// the caller leaves. The first message comes at once, even when empty: the caller then
    /// knows it holds the whole backlog. RESOURCE_EXHAUSTED when `client` already holds
    /// [`MAX_STREAMS_PER_ADDRESS`] streams.
    pub fn watch(
        &self,
        client: &ClientAddr,
        after: i64,
        mut stopping: Stopping,
    ) -> Result<ReceiverStream<Result<WatchRevocationsResponse, Status>>, Error> {
        let slot = StreamSlot::take(&self.streams, client.throttle_key())?;
        let mut rows = self.rows.clone();
        let (sender, receiver) = mpsc::channel(4);
        tokio::spawn(async move {
            let _slot = slot;
            let mut cursor = after;
            let (mut first, mut caught_up) = (true, false);
            loop {
                let current = rows.borrow_and_update().clone();
                let start = current.partition_point(|r| r.cursor <= cursor);
                let new = &current[start..];
                if let Some(last) = new.last() {
                    cursor = last.cursor;
                }
                let mut batches: Vec<&[Revocation]> = new.chunks(BATCH as usize).collect();
                if first && batches.is_empty() {
                    batches.push(&[]);
                }
                first = false;
                let last = batches.len().saturating_sub(1);
                for (i, batch) in batches.into_iter().enumerate() {
                    let message = WatchRevocationsResponse {
                        revocations: batch.to_vec(),
                        // Everything up to the feed's latest read is in this message or before.
                        caught_up: caught_up || i == last,
                    };
                    caught_up = message.caught_up;
                    if sender.send(Ok(message)).await.is_err() {
                        return; // the caller left
                    }
                }
                tokio::select! {
                    changed = rows.changed() => if changed.is_err() { return },
                    () = stopping.wait() => return,
                    () = sender.closed() => return,
                }
            }
        });
        Ok(ReceiverStream::new(receiver))
    }

    /// Keeps `revocations` (this service's interceptor) current from the feed, until the task
    /// is aborted. Returns once the revocations still relevant are loaded.
    pub fn follow(
        &self,
        revocations: Revocations,
        accounts: &Accounts,
    ) -> tokio::task::JoinHandle<()> {
        let mut rows = self.rows.clone();
        revocations.apply(&rows.borrow_and_update());
        let clock = accounts.clock.clone();
        tokio::spawn(async move {
            let mut prune = tokio::time::interval(PRUNE_INTERVAL);
            loop {
                tokio::select! {
                    changed = rows.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let current = rows.borrow_and_update().clone();
                        let start = current.partition_point(|r| r.cursor <= revocations.cursor());
                        revocations.apply(&current[start..]);
                    }
                    _ = prune.tick() => revocations.prune(clock.unix_seconds()),
                }
            }
        })
    }
}

/// Reads every revocation after `cursor` that still matters into `rows`, moving `cursor`.
async fn read_new(
    accounts: &Accounts,
    cursor: &mut i64,
    rows: &mut Vec<Revocation>,
) -> Result<(), Error> {
    loop {
        let now = accounts.clock.unix_seconds();
        let read = accounts.db.revocations_after(*cursor, now, BATCH).await?;
        if let Some(last) = read.last() {
            *cursor = last.cursor;
        }
        rows.extend(read.iter().map(to_proto));
        if (read.len() as i64) < BATCH {
            return Ok(());
        }
    }
}

/// One open stream of a client address, given back when the stream ends.
struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl StreamSlot {
    fn take(streams: &Arc<Mutex<HashMap<String, usize>>>, key: String) -> Result<Self, Error> {
        let mut open = streams
            .lock()
            .expect("the stream counts are never left poisoned");
        let count = open.entry(key.clone()).or_default();
        if *count >= MAX_STREAMS_PER_ADDRESS {
            return Err(Error::TooManyStreams(MAX_STREAMS_PER_ADDRESS));
        }
        *count += 1;
        Ok(StreamSlot {
            streams: streams.clone(),
            key,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .lock()
            .expect("the stream counts are never left poisoned");
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

fn to_proto(row: &RevocationRow) -> Revocation {
    Revocation {
        cursor: row.cursor,
        session_id: row.session_id.clone().unwrap_or_default(),
        user_id: row.user_id.clone().unwrap_or_default(),
        not_before: row.not_before.map(timestamp_from_seconds),
        expire_time: Some(timestamp_from_seconds(row.expire_time)),
    }
}
