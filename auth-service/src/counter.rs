//! The throttle's arithmetic: one [`Counter`] per (scope, key) and the rules of each
//! [`Scope`], pure functions of a counter and the time (tested below without a clock or a
//! database). [`crate::throttle`] applies them to the counters [`crate::db`] stores.

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
    /// When the oldest of the pending checks may have begun (Unix seconds): set when one is
    /// admitted while none is pending.
    pub pending_since: i64,
}

/// What a counter says about one more attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
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
    pub fn roll(&mut self, scope: Scope, limits: &Limits, now: i64) {
        let (window, _) = scope.rule(limits);
        if self.failures == 0 || now >= self.window_start + window {
            self.window_start = now;
            self.failures = 0;
        }
        if self.pending > 0 && now - self.pending_since > PENDING_TTL {
            self.pending = 0;
        }
    }

    pub fn room(&mut self, scope: Scope, limits: &Limits, now: i64) -> Room {
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

    /// Counts one more pending check. `pending_since` moves only when none was pending, so the
    /// checks a dead process (or a database that went away before their outcome was written)
    /// left pending are forgotten after [`PENDING_TTL`] even while new checks keep arriving:
    /// on a busy client address they would otherwise pile up until the layer refused everyone.
    /// The price: checks still running at that moment are forgotten with them (at most the
    /// checks in flight, once a minute, may go beyond the limit).
    pub fn admit(&mut self, now: i64) {
        if self.pending == 0 {
            self.pending_since = now;
        }
        self.pending += 1;
    }

    /// Records the outcome of one of this counter's pending checks.
    pub fn finish(&mut self, scope: Scope, limits: &Limits, failed: bool, now: i64) {
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

    #[test]
    fn stranded_pending_checks_expire_while_new_checks_keep_arriving() {
        let limits = Limits::default();
        let mut c = Counter::default();
        // 99 checks stranded at 0 (their outcomes never written), then one login every 10 s
        // from the same address, each admitted and succeeding: the layer is one check from
        // full until a minute after the stranded ones began, then they are forgotten.
        for _ in 0..99 {
            c.admit(0);
        }
        for now in (10..=60).step_by(10) {
            assert_eq!(c.room(Scope::Peer, &limits, now), Room::Free, "at {now}");
            c.admit(now);
            assert_eq!(c.room(Scope::Peer, &limits, now), Room::Full, "at {now}");
            c.finish(Scope::Peer, &limits, false, now + 1);
        }
        assert_eq!(c.room(Scope::Peer, &limits, 70), Room::Free);
        assert_eq!(c.pending, 0);
    }
}
