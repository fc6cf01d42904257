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
//! An attempt is **reserved before the password is checked**: [`reserve`] reads every counter
//! the attempt touches, refuses it if any layer is locked, and otherwise counts it as a failure,
//! all in one write transaction. So of any number of concurrent attempts, exactly as many as a
//! layer allows reach the (slow) password check; the rest are refused at once. A password that
//! turns out right gives the attempt back ([`Reservation::succeeded`]). Refused attempts count
//! nowhere, so a burst from one address stops at its pair limit and cannot use up the username's
//! hourly allowance for the owner elsewhere.
//!
//! Counters live in the database ([`crate::db`]) so a restart does not reset them and, with a
//! shared database, every replica sees the same counts. The rules are pure functions of a
//! [`Counter`] and the time, tested below without a clock or a database.

use std::time::Duration;

use crate::{
    client::ClientAddr,
    db::Db,
    error::{Error, Result},
};

/// One throttling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Attempt count of one key in one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Start of the current counting window (Unix seconds).
    pub window_start: i64,
    /// Counted attempts in the current window.
    pub failures: i64,
    /// Lockouts so far (the pair lockout doubles with each).
    pub lockouts: i64,
    /// Refused until this time (Unix seconds); 0 when not locked.
    pub locked_until: i64,
}

impl Counter {
    /// How long attempts are still refused, if they are.
    pub fn refused_for(&self, now: i64) -> Option<i64> {
        (now < self.locked_until).then(|| self.locked_until - now)
    }

    /// Counts one attempt at `now` and locks when the scope's limit is reached. Returns whether
    /// this attempt locked the counter.
    pub fn record_failure(&mut self, scope: Scope, limits: &Limits, now: i64) -> bool {
        let (window, limit) = scope.rule(limits);
        if self.failures == 0 || now >= self.window_start + window {
            self.window_start = now;
            self.failures = 0;
        }
        self.failures += 1;
        if self.failures < limit {
            return false;
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
        true
    }

    /// Gives back an attempt that turned out to be a success: the pair starts afresh; other
    /// layers uncount it, and lift the lock it set, if it set one.
    fn refund(&mut self, scope: Scope, locked_by_it: bool) {
        if scope == Scope::Pair {
            *self = Counter::default();
            return;
        }
        if locked_by_it {
            self.lockouts = (self.lockouts - 1).max(0);
            self.locked_until = 0;
        } else {
            self.failures = (self.failures - 1).max(0);
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

/// An attempt counted before its password was checked.
#[derive(Debug)]
#[must_use = "a successful attempt must be given back with `succeeded`"]
pub struct Reservation {
    keys: Vec<(Scope, String)>,
    /// Per key: whether this attempt locked the counter.
    locked: Vec<bool>,
}

/// Reserves one attempt in every counter of `keys`: refused (RESOURCE_EXHAUSTED with the
/// longest remaining wait) if any is locked, else counted in all of them, atomically.
pub async fn reserve(
    db: &Db,
    keys: Vec<(Scope, String)>,
    limits: &Limits,
    now: i64,
) -> Result<Reservation> {
    let locked = db
        .update_throttle_counters(&keys, |counters| {
            let wait = counters.iter().filter_map(|c| c.refused_for(now)).max();
            if let Some(wait) = wait {
                return Err(Error::Throttled(Duration::from_secs(wait.unsigned_abs())));
            }
            Ok(counters
                .iter_mut()
                .zip(&keys)
                .map(|(counter, (scope, _))| counter.record_failure(*scope, limits, now))
                .collect())
        })
        .await?;
    Ok(Reservation { keys, locked })
}

impl Reservation {
    /// The password was right: give the attempt back (the pair is reset).
    pub async fn succeeded(self, db: &Db) -> Result<()> {
        db.update_throttle_counters(&self.keys, |counters| {
            for ((counter, (scope, _)), locked) in
                counters.iter_mut().zip(&self.keys).zip(&self.locked)
            {
                counter.refund(*scope, *locked);
            }
            Ok(())
        })
        .await
    }
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
        assert!(!c.record_failure(Scope::Register, &limits, 0));
        assert!(!c.record_failure(Scope::Register, &limits, 10));
        assert!(
            c.record_failure(Scope::Register, &limits, 20),
            "the third locks"
        );
        assert_eq!(c.refused_for(20), Some(3600 - 20));
    }

    #[test]
    fn a_refund_uncounts_the_attempt_and_lifts_only_its_own_lock() {
        let limits = Limits::default();
        let mut c = Counter::default();
        fail(&mut c, Scope::User, 98, 0);
        let locked = c.record_failure(Scope::User, &limits, 0);
        assert!(!locked);
        c.refund(Scope::User, locked);
        assert_eq!(c.failures, 98);
        fail(&mut c, Scope::User, 1, 0);
        let locked = c.record_failure(Scope::User, &limits, 0);
        assert!(locked, "the hundredth locks");
        c.refund(Scope::User, locked);
        assert_eq!(c.refused_for(0), None);
        let mut pair = Counter::default();
        fail(&mut pair, Scope::Pair, 5, 0);
        pair.refund(Scope::Pair, false);
        assert_eq!(pair, Counter::default(), "a success resets the pair");
    }
}
