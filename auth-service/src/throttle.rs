//! Throttling of password checks and registrations (README, "Passwords and login"), the same
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
//! [`Counter`] and the time, tested below without a clock or a database.

use std::{sync::Arc, time::Duration};

use bookstore_kit::clock::Clock;
use tokio::sync::Notify;

use crate::{
    client::ClientAddr,
    db::Db,
    error::{Error, Result},
};

/// One throttling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// (username, client address).
    Pair,
    /// Username, from anywhere.
    User,
    /// Client address, for any username.
    Peer,
    /// Register calls of a client address.
    Register,
}

impl Scope {
    /// Stored name of the scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Pair => "pair",
            Scope::User => "user",
            Scope::Peer => "peer",
            Scope::Register => "register",
        }
    }

    /// (window length, attempts that trigger a lockout), in seconds and counts.
    fn rule(self, limits: &Limits) -> (i64, i64) {
        match self {
            Scope::Pair => (15 * 60, 5),
            Scope::User => (60 * 60, 100),
            Scope::Peer => (15 * 60, 100),
            Scope::Register => (60 * 60, limits.register_per_hour),
        }
    }

    /// How long a counter of this scope is worth keeping after its last change: the purge
    /// deletes counters idle for longer (they would start a fresh window anyway).
    pub const MAX_WINDOW_SECONDS: i64 = 60 * 60;
}

/// The configurable limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Register calls per client address per hour (`--register-limit`).
    pub register_per_hour: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            register_per_hour: 100,
        }
    }
}

/// First lockout of a (username, client) pair; doubles per further lockout.
const PAIR_FIRST_LOCKOUT: i64 = 30;
/// Longest lockout of a pair.
const PAIR_MAX_LOCKOUT: i64 = 15 * 60;

/// How long a pending check may stay unresolved before it is forgotten (its process died).
const PENDING_TTL: i64 = 60;
/// Longest an attempt waits for room before it is refused.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting attempt asks again when no local check finished (another replica's may
/// have).
const POLL: Duration = Duration::from_millis(100);

/// Attempt count of one key in one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Start of the current counting window (Unix seconds).
    pub window_start: i64,
    /// Counted failures in the current window.
    pub failures: i64,
    /// Lockouts so far (the pair lockout doubles with each).
    pub lockouts: i64,
    /// Refused until this time (Unix seconds); 0 when not locked.
    pub locked_until: i64,
    /// Admitted checks whose outcome is not recorded yet.
    pub pending: i64,
    /// When `pending` last grew (Unix seconds).
    pub pending_since: i64,
}

/// What a counter says about one more attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// Locked for this many more seconds.
    Refused(i64),
    /// Full of pending checks: ask again when one finishes.
    Full,
    /// One more fits.
    Free,
}

impl Counter {
    /// How long attempts are still refused, if they are.
    pub fn refused_for(&self, now: i64) -> Option<i64> {
        (now < self.locked_until).then(|| self.locked_until - now)
    }

    /// Starts a new window when the current one has passed, and forgets pending checks of a
    /// process that died.
    fn roll(&mut self, scope: Scope, limits: &Limits, now: i64) {
        let (window, _) = scope.rule(limits);
        if self.failures == 0 || now >= self.window_start + window {
            self.window_start = now;
            self.failures = 0;
        }
        if self.pending > 0 && now - self.pending_since > PENDING_TTL {
            self.pending = 0;
        }
    }

    fn room(&mut self, scope: Scope, limits: &Limits, now: i64) -> Room {
        self.roll(scope, limits, now);
        let (_, limit) = scope.rule(limits);
        match self.refused_for(now) {
            Some(wait) => Room::Refused(wait),
            None if self.failures + self.pending >= limit => Room::Full,
            None => Room::Free,
        }
    }

    /// Counts one failure at `now` and locks when the scope's limit is reached.
    pub fn record_failure(&mut self, scope: Scope, limits: &Limits, now: i64) {
        let (window, limit) = scope.rule(limits);
        self.roll(scope, limits, now);
        self.failures += 1;
        if self.failures < limit {
            return;
        }
        self.lockouts += 1;
        self.locked_until = match scope {
            Scope::Pair => {
                // Start counting afresh once the lockout ends.
                self.failures = 0;
                let doublings = u32::try_from(self.lockouts - 1).unwrap_or(u32::MAX).min(10);
                now + (PAIR_FIRST_LOCKOUT << doublings).min(PAIR_MAX_LOCKOUT)
            }
            // Refused for the rest of the window.
            Scope::User | Scope::Peer | Scope::Register => self.window_start + window,
        };
    }

    /// Records the outcome of one of this counter's pending checks.
    fn finish(&mut self, scope: Scope, limits: &Limits, failed: bool, now: i64) {
        self.pending = (self.pending - 1).max(0);
        if failed {
            self.record_failure(scope, limits, now);
        } else if scope == Scope::Pair {
            // A success resets the pair (but not the other checks still in flight).
            *self = Counter {
                pending: self.pending,
                pending_since: self.pending_since,
                ..Counter::default()
            };
        }
    }
}

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
                    counter.pending += 1;
                    counter.pending_since = now;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(counter: &mut Counter, scope: Scope, times: usize, now: i64) {
        for _ in 0..times {
            counter.record_failure(scope, &Limits::default(), now);
        }
    }

    #[test]
    fn pair_locks_after_five_failures_and_doubles_up_to_fifteen_minutes() {
        let mut c = Counter::default();
        fail(&mut c, Scope::Pair, 4, 1000);
        assert_eq!(c.refused_for(1000), None);
        fail(&mut c, Scope::Pair, 1, 1000);
        assert_eq!(c.refused_for(1000), Some(30));
        assert_eq!(c.refused_for(1030), None);
        let mut now = 1030;
        let mut expected = vec![60, 120, 240, 480, 900, 900];
        expected.reverse();
        while let Some(wait) = expected.pop() {
            fail(&mut c, Scope::Pair, 5, now);
            assert_eq!(c.refused_for(now), Some(wait));
            now += wait;
        }
    }

    #[test]
    fn pair_failures_outside_the_window_start_a_new_count() {
        let mut c = Counter::default();
        fail(&mut c, Scope::Pair, 4, 0);
        fail(&mut c, Scope::Pair, 1, 15 * 60);
        assert_eq!(c.refused_for(15 * 60), None);
        assert_eq!(c.failures, 1);
    }

    #[test]
    fn username_is_refused_for_the_rest_of_the_hour_after_100_failures() {
        let mut c = Counter::default();
        for i in 0..100 {
            c.record_failure(Scope::User, &Limits::default(), i * 30);
        }
        assert_eq!(c.refused_for(2970), Some(3600 - 2970));
        assert_eq!(c.refused_for(3600), None);
    }

    #[test]
    fn peer_is_refused_until_its_fifteen_minute_window_passes() {
        let mut c = Counter::default();
        fail(&mut c, Scope::Peer, 99, 10);
        assert_eq!(c.refused_for(10), None);
        fail(&mut c, Scope::Peer, 1, 100);
        assert_eq!(c.refused_for(100), Some(10 + 900 - 100));
    }

    #[test]
    fn registrations_stop_at_the_configured_hourly_limit() {
        let limits = Limits {
            register_per_hour: 3,
        };
        let mut c = Counter::default();
        for now in [0, 10, 20] {
            assert_eq!(c.refused_for(now), None);
            c.record_failure(Scope::Register, &limits, now);
        }
        assert_eq!(c.refused_for(20), Some(3600 - 20));
    }

    #[test]
    fn pending_checks_fill_a_layer_and_their_outcomes_free_it() {
        let limits = Limits::default();
        let mut c = Counter::default();
        fail(&mut c, Scope::Pair, 3, 0);
        c.pending = 2;
        c.pending_since = 0;
        assert_eq!(c.room(Scope::Pair, &limits, 0), Room::Full);
        c.finish(Scope::Pair, &limits, false, 1);
        assert_eq!(
            c,
            Counter {
                pending: 1,
                pending_since: 0,
                ..Counter::default()
            }
        );
        assert_eq!(c.room(Scope::Pair, &limits, 1), Room::Free);
        c.finish(Scope::Pair, &limits, true, 1);
        assert_eq!(c.room(Scope::Pair, &limits, 1), Room::Free);
        assert_eq!(c.failures, 1);
    }

    #[test]
    fn pending_checks_of_a_dead_process_expire_after_a_minute() {
        let limits = Limits::default();
        let mut c = Counter {
            pending: 5,
            pending_since: 100,
            ..Counter::default()
        };
        assert_eq!(c.room(Scope::Pair, &limits, 150), Room::Full);
        assert_eq!(c.room(Scope::Pair, &limits, 161), Room::Free);
        assert_eq!(c.pending, 0);
    }
}
