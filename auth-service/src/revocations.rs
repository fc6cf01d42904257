//! The revocation stream (`RevocationService/WatchRevocations`) and this service's own copy of
//! it.
//!
//! Revocations are rows of the database, written in the transaction that causes them
//! ([`crate::db`]), so every replica streams every one and none is lost across a crash. A
//! stream first sends what is still relevant after the caller's cursor, then polls for new rows:
//! at once when this process commits one (a `Notify`), and every [`POLL`] otherwise (rows
//! written by another replica or by the `admin disable` subcommand).

use std::time::Duration;

use bookstore_contract::proto::auth::{Revocation, WatchRevocationsResponse};
use bookstore_kit::{
    clock::timestamp_from_seconds,
    revocation::{Revocations, PRUNE_INTERVAL},
    Stopping,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::{accounts::Accounts, db::RevocationRow, error::Error};

/// How often a stream looks for revocations committed elsewhere.
pub const POLL: Duration = Duration::from_millis(250);
/// Most revocations sent in one message.
const BATCH: i64 = 1000;

/// A stream of revocations after `after`, ending when `stopping` fires or the caller leaves.
/// The first message comes at once, even when empty: the caller then knows it has caught up.
pub fn watch(
    accounts: Accounts,
    after: i64,
    mut stopping: Stopping,
) -> ReceiverStream<Result<WatchRevocationsResponse, Status>> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut cursor = after;
        let mut first = true;
        loop {
            // Created before the query, so a revocation committed meanwhile still wakes us.
            let committed = accounts.revoked.notified();
            let now = accounts.clock.unix_seconds();
            let rows = match accounts.db.revocations_after(cursor, now, BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = sender.send(Err(e.into())).await;
                    return;
                }
            };
            let full = rows.len() as i64 == BATCH;
            if let Some(last) = rows.last() {
                cursor = last.cursor;
            }
            if first || !rows.is_empty() {
                first = false;
                let batch = WatchRevocationsResponse {
                    revocations: rows.iter().map(to_proto).collect(),
                };
                if sender.send(Ok(batch)).await.is_err() {
                    return; // the caller left
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                () = committed => {}
                () = tokio::time::sleep(POLL) => {}
                () = stopping.wait() => return,
                () = sender.closed() => return,
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// Keeps `revocations` (this service's interceptor) current from its own database, until the
/// task is aborted. Returns once the revocations still relevant are loaded, leaving a task
/// that follows new ones.
pub async fn follow(
    accounts: Accounts,
    revocations: Revocations,
    stopping: Stopping,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    use tokio_stream::StreamExt;
    let mut stream = watch(accounts.clone(), revocations.cursor(), stopping.clone());
    match stream.next().await {
        Some(Ok(batch)) => revocations.apply(&batch.revocations),
        Some(Err(status)) => return Err(Error::Internal(format!("loading revocations: {status}"))),
        None => return Ok(tokio::spawn(async {})),
    }
    Ok(tokio::spawn(async move {
        let mut prune = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            tokio::select! {
                next = stream.next() => match next {
                    Some(Ok(batch)) => revocations.apply(&batch.revocations),
                    Some(Err(status)) => {
                        tracing::warn!(message = status.message(), "following revocations failed; retrying");
                        tokio::time::sleep(POLL).await;
                        stream = watch(accounts.clone(), revocations.cursor(), stopping.clone());
                    }
                    None => return,
                },
                _ = prune.tick() => revocations.prune(accounts.clock.unix_seconds()),
            }
        }
    }))
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
