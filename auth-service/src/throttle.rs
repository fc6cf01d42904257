//! Failed-login throttling in three layers (README, "Passwords and login"), the same for names that exist and
//! names that do not:
//!
//! - per (username, peer address): after 5 failures within 15 minutes the pair is locked for
//!   30 s, doubling per lockout up to 15 minutes; a successful login resets it. Keyed by the
//!   address too, so an attacker elsewhere cannot lock the owner out;
//! - per username: at most 100 failures an hour (ASVS 2.2.1), then refused for the rest of the
//!   hour;
//! - per peer address: at most 100 failures in 15 minutes, then refused until the window passes.
//!
//! Counters live in the database ([`crate::db`]) so a restart does not reset them. The rules are
//! pure functions of a [`Counter`] and the time, tested below without a clock or a database.

use std::{net::IpAddr, time::Duration};

use crate::{db::Db, error::Result};

/// One throttling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// (username, peer address).
    Pair,
    /// Username, from anywhere.
    User,
    /// Peer address, for any username.
    Peer,
}

impl Scope {
    /// Stored name of the scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Pair => "pair",
            Scope::User => "user",
            Scope::Peer => "peer",
        }
    }

    /// (window length, failures that trigger a lockout), in seconds and counts.
    fn rule(self) -> (i64, i64) {
        match self {
            Scope::Pair => (15 * 60, 5),
            Scope::User => (60 * 60, 100),
            Scope::Peer => (15 * 60, 100),
        }
    }
}

/// First lockout of a (username, peer) pair; doubles per further lockout.
const PAIR_FIRST_LOCKOUT: i64 = 30;
/// Longest lockout of a pair.
const PAIR_MAX_LOCKOUT: i64 = 15 * 60;

/// Failure count of one key in one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Start of the current counting window (Unix seconds).
    pub window_start: i64,
    /// Failures in the current window.
    pub failures: i64,
    /// Lockouts so far (the pair lockout doubles with each).
    pub lockouts: i64,
    /// Refused until this time (Unix seconds); 0 when not locked.
    pub locked_until: i64,
}

impl Counter {
    /// How long logins are still refused, if they are.
    pub fn refused_for(&self, now: i64) -> Option<i64> {
        (now < self.locked_until).then(|| self.locked_until - now)
    }

    /// Counts one failure at `now` and locks when the scope's limit is reached.
    pub fn record_failure(&mut self, scope: Scope, now: i64) {
        let (window, limit) = scope.rule();
        if self.failures == 0 || now >= self.window_start + window {
            self.window_start = now;
            self.failures = 0;
        }
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
            Scope::User | Scope::Peer => self.window_start + window,
        };
    }
}

/// The three (scope, key) counters a login attempt touches.
fn keys(username: &str, peer: Option<IpAddr>) -> [(Scope, String); 3] {
    let peer = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    [
        (Scope::Pair, format!("{username}\n{peer}")),
        (Scope::User, username.to_string()),
        (Scope::Peer, peer),
    ]
}

/// Refuses the attempt when any layer is locked, with the longest remaining wait.
pub async fn check(db: &Db, username: &str, peer: Option<IpAddr>, now: i64) -> Result<()> {
    let mut wait = 0;
    for (scope, key) in keys(username, peer) {
        if let Some(left) = db.throttle_counter(scope, &key).await?.refused_for(now) {
            wait = wait.max(left);
        }
    }
    if wait > 0 {
        return Err(crate::error::Error::Throttled(Duration::from_secs(
            wait.unsigned_abs(),
        )));
    }
    Ok(())
}

/// Counts a failed attempt in every layer (one transaction).
pub async fn record_failure(db: &Db, username: &str, peer: Option<IpAddr>, now: i64) -> Result<()> {
    let keys = keys(username, peer);
    db.update_throttle_counters(&keys, |scope, counter| counter.record_failure(scope, now))
        .await
}

/// A successful login clears the (username, peer) pair.
pub async fn record_success(db: &Db, username: &str, peer: Option<IpAddr>) -> Result<()> {
    let [(scope, key), ..] = keys(username, peer);
    db.delete_throttle_counter(scope, &key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(counter: &mut Counter, scope: Scope, times: usize, now: i64) {
        for _ in 0..times {
            counter.record_failure(scope, now);
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
            c.record_failure(Scope::User, i * 30);
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
}
