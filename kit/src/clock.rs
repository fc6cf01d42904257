//! The one time model of both services: a [`Clock`] that reads "now" as a UTC
//! `chrono::DateTime`, injectable so tests move time instead of sleeping.
//!
//! Token claims and auth-service's stored times are whole Unix seconds
//! ([`Clock::unix_seconds`]); book times keep microseconds ([`Clock::unix_micros`]) so that
//! books created within one second still list in creation order. [`timestamp`] turns either
//! into the protobuf `Timestamp` the API returns.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

use chrono::{DateTime, Utc};

/// A source of "now". Cheap to clone; clones share the source.
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System,
    /// Microseconds since the Unix epoch, set by a [`ManualTime`].
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(Source::System)
    }

    /// A clock that starts at `start` and moves only when its [`ManualTime`] says so.
    pub fn manual(start: DateTime<Utc>) -> (Clock, ManualTime) {
        let micros = Arc::new(AtomicI64::new(start.timestamp_micros()));
        (Clock(Source::Manual(micros.clone())), ManualTime(micros))
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Source::System => Utc::now(),
            Source::Manual(micros) => {
                DateTime::from_timestamp_micros(micros.load(Ordering::SeqCst))
                    .unwrap_or(DateTime::UNIX_EPOCH)
            }
        }
    }

    /// Now in whole seconds since the Unix epoch (the unit of token claims).
    pub fn unix_seconds(&self) -> i64 {
        self.now().timestamp()
    }

    /// Now in microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        self.now().timestamp_micros()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Source::System => f.write_str("Clock::system()"),
            Source::Manual(_) => write!(f, "Clock::manual({})", self.now()),
        }
    }
}

/// The hand that moves a manual [`Clock`] (tests only need this; production never makes one).
#[derive(Debug, Clone)]
pub struct ManualTime(Arc<AtomicI64>);

impl ManualTime {
    /// Moves the clock forward by `seconds`.
    pub fn advance_seconds(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1_000_000, Ordering::SeqCst);
    }
}

/// A protobuf `Timestamp` for `time`.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf `Timestamp` for Unix seconds (auth-service's stored times).
pub fn timestamp_from_seconds(seconds: i64) -> prost_types::Timestamp {
    timestamp(DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::UNIX_EPOCH))
}

/// A protobuf `Timestamp` for Unix microseconds (book-service's stored times).
pub fn timestamp_from_micros(micros: i64) -> prost_types::Timestamp {
    timestamp(DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).expect("valid time");
        let (clock, hand) = Clock::manual(start);
        let copy = clock.clone();
        assert_eq!(clock.unix_seconds(), 1_700_000_000);
        hand.advance_seconds(90);
        assert_eq!(copy.unix_seconds(), 1_700_000_090);
        assert_eq!(copy.unix_micros(), 1_700_000_090_000_000);
    }

    #[test]
    fn timestamps_keep_seconds_and_sub_second_precision() {
        let t = timestamp_from_micros(1_700_000_000_123_456);
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_456_000));
        let t = timestamp_from_seconds(42);
        assert_eq!((t.seconds, t.nanos), (42, 0));
    }
}
