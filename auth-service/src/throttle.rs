//! Throttling of password checks and registrations (docs/api.md, "Passwords and login"), the same
//! for names that exist and names that do not:
//!
//! - per (username, client address): after 5 failures within 15 minutes the pair is locked for
//!   30 s, doubling per lockout up to 15 minutes; a successful login resets it. Keyed by the
//!   address too, so an attacker elsewhere cannot lock the owner out;
//! - per username: at most 100 failures an hour (ASVS 2.2.1), then refused for the rest of the
//!   hour;
//! - per client address: at most 100 failures in 15 minutes, then refused until the window
//!   passes;
//! - Register: at most `--register-limit` calls per client address an hour.
//!
//! An attempt is **admitted before the password is checked**, in one write transaction that
//! reads every counter it touches ([`admit`]): refused at once if a layer is locked; admitted
//! (counted as pending) if every layer has room for one more failure beside the failures and
//! pending checks it already has; otherwise it waits for a pending check to finish and asks
//! again. Its outcome is then recorded ([`Admission::finish`]): a failure counts (and may lock),
//! a success resets the (username, client) pair. So of any number of concurrent wrong attempts,
//! exactly as many as a layer allows reach the (slow) password check and the rest are refused,
//! while concurrent *right* passwords all get through, each waiting at most for the checks
//! ahead of it. Refused attempts count nowhere, so a burst from one address stops at its pair
//! limit and cannot use up the username's hourly allowance for the owner elsewhere.
//!
//! Counters live in the database ([`crate::db`]) so a restart does not reset them and, with a
//! shared database, every replica sees the same counts. The rules are pure functions of a
//! [`crate::counter::Counter`] and the time, tested there without a clock or a database.

use std::{sync::Arc, time::Duration};

use bookstore_kit::clock::Clock;
use tokio::sync::Notify;

use crate::{
    caller::ClientAddr,
    counter::{Limits, Room, Scope},
    db::Db,
    error::{Error, Result},
};

/// Longest an attempt waits for room before it is refused.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting attempt asks again when no local check finished (another replica's may
/// have).
const POLL: Duration = Duration::from_millis(100);

/// The counters a password check touches: (username, client), username, client.
pub fn password_keys(username: &str, client: &ClientAddr) -> Vec<(Scope, String)> {
    let client = client.throttle_key();
    vec![
        (Scope::Pair, format!("{username}\n{client}")),
        (Scope::User, username.to_string()),
        (Scope::Peer, client),
    ]
}

/// Wakes attempts waiting for room when a check of this process finishes (attempts waiting on
/// another replica's checks poll instead). One finished check frees room for one more attempt,
/// so it wakes one waiter of each of its keys, not the whole crowd. Keys share a fixed set of
/// wake-up slots by hash; a waiter woken for another key of its slot finds no room and waits
/// again, and the poll bounds what such a miss can cost.
#[derive(Debug, Clone)]
pub struct Finished(Arc<[Notify; WAKE_SLOTS]>);

/// Wake-up slots of [`Finished`].
const WAKE_SLOTS: usize = 64;

impl Default for Finished {
    fn default() -> Self {
        Finished(Arc::new(std::array::from_fn(|_| Notify::new())))
    }
}

impl Finished {
    fn slot(&self, key: &(Scope, String)) -> &Notify {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.0[usize::try_from(hash % WAKE_SLOTS as u64).unwrap_or(0)]
    }
}

/// An attempt admitted to the password check; record its outcome with [`Admission::finish`].
#[derive(Debug)]
#[must_use = "an admitted attempt must record its outcome with `finish`"]
pub struct Admission {
    keys: Vec<(Scope, String)>,
}

/// Admits one password check against every counter of `keys`: refused (RESOURCE_EXHAUSTED with
/// the longest remaining wait) if any is locked; otherwise waits, bounded, until every layer
/// has room, and counts it as pending in all of them, atomically.
pub async fn admit(
    db: &Db,
    keys: Vec<(Scope, String)>,
    limits: &Limits,
    clock: &Clock,
    finished: &Finished,
) -> Result<Admission> {
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut waited = false;
    loop {
        let now = clock.unix_seconds();
        // After a wait, look on a reader first: waiters woken by a slot shared with another
        // key must not queue for the single writer only to find their layer still full.
        let full = if waited {
            full_key(db, &keys, limits, now).await?
        } else {
            None
        };
        if let Some(full) = full {
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Throttled(Duration::from_secs(1)));
            }
            // `notify_one` keeps a permit when nobody waits, so a check that finished since
            // the look above is not missed.
            let _ = tokio::time::timeout(POLL, finished.slot(&keys[full]).notified()).await;
            continue;
        }
        let limits = *limits;
        let admitted = db
            .update_throttle_counters(keys.clone(), move |counters, keys| {
                let rooms: Vec<Room> = counters
                    .iter_mut()
                    .zip(keys)
                    .map(|(c, (scope, _))| c.room(*scope, &limits, now))
                    .collect();
                let wait = rooms
                    .iter()
                    .filter_map(|r| match r {
                        Room::Refused(wait) => Some(*wait),
                        _ => None,
                    })
                    .max();
                if let Some(wait) = wait {
                    return Err(Error::Throttled(Duration::from_secs(wait.unsigned_abs())));
                }
                if let Some(full) = rooms.iter().position(|r| *r == Room::Full) {
                    return Ok(Some(full));
                }
                for counter in counters.iter_mut() {
                    counter.admit(now);
                }
                Ok(None)
            })
            .await?;
        let Some(full) = admitted else {
            return Ok(Admission { keys });
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Throttled(Duration::from_secs(1)));
        }
        waited = true;
        let _ = tokio::time::timeout(POLL, finished.slot(&keys[full]).notified()).await;
    }
}

/// The index of a counter of `keys` with no room for one more check now, if any (read only; a
/// locked layer counts as room, so that the writing transaction reports the refusal).
async fn full_key(
    db: &Db,
    keys: &[(Scope, String)],
    limits: &Limits,
    now: i64,
) -> Result<Option<usize>> {
    let counters = db.throttle_counters(keys).await?;
    Ok(counters
        .into_iter()
        .zip(keys)
        .position(|(mut c, (scope, _))| c.room(*scope, limits, now) == Room::Full))
}

impl Admission {
    /// Records the outcome: a failure counts in every layer (and may lock), a success resets
    /// the pair. Then wakes the attempts waiting for room.
    pub async fn finish(
        self,
        db: &Db,
        failed: bool,
        limits: &Limits,
        clock: &Clock,
        finished: &Finished,
    ) -> Result<()> {
        let now = clock.unix_seconds();
        let limits = *limits;
        let result = db
            .update_throttle_counters(self.keys.clone(), move |counters, keys| {
                for (counter, (scope, _)) in counters.iter_mut().zip(keys) {
                    counter.finish(*scope, &limits, failed, now);
                }
                Ok(())
            })
            .await;
        for key in &self.keys {
            finished.slot(key).notify_one();
        }
        result
    }
}

/// Counts one call in the counter of `key` (every call counts, whatever its outcome): refused
/// with the remaining wait when the counter is locked.
pub async fn count(db: &Db, key: (Scope, String), limits: &Limits, now: i64) -> Result<()> {
    let limits = *limits;
    db.update_throttle_counters(vec![key], move |counters, keys| {
        let scope = keys[0].0;
        let counter = &mut counters[0];
        counter.roll(scope, &limits, now);
        if let Some(wait) = counter.refused_for(now) {
            return Err(Error::Throttled(Duration::from_secs(wait.unsigned_abs())));
        }
        counter.record_failure(scope, &limits, now);
        Ok(())
    })
    .await
}

/// Refuses at once, from a read, when `client`'s address counter is locked: RefreshToken and
/// Logout check it before touching any token, so a flood of junk tokens ends in
/// RESOURCE_EXHAUSTED without costing a write per call.
pub async fn check_address(db: &Db, client: &ClientAddr, now: i64) -> Result<()> {
    let key = (Scope::Peer, client.throttle_key());
    let counters = db.throttle_counters(&[key]).await?;
    match counters.first().and_then(|c| c.refused_for(now)) {
        Some(wait) => Err(Error::AddressThrottled(Duration::from_secs(
            wait.unsigned_abs(),
        ))),
        None => Ok(()),
    }
}

/// Counts one failure against `client`'s address counter (a refresh token that does not
/// exist), which locks it like failed logins do.
pub async fn address_failure(
    db: &Db,
    client: &ClientAddr,
    limits: &Limits,
    now: i64,
) -> Result<()> {
    let limits = *limits;
    let key = (Scope::Peer, client.throttle_key());
    db.update_throttle_counters(vec![key], move |counters, _| {
        counters[0].record_failure(Scope::Peer, &limits, now);
        Ok(())
    })
    .await
}
