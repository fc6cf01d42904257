//! What the workload saw: every call counted by RPC and outcome, every failure with its time
//! (judged against the fault windows at the end), every refresh token ever accepted, and the
//! violations found along the way.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Instant,
};

use tonic::Code;

use crate::faults::Faults;

/// A failed call, kept until the windows are all known.
#[derive(Debug)]
struct Failure {
    rpc: &'static str,
    replica: Arc<str>,
    code: Code,
    message: String,
    start: Instant,
    end: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    calls: BTreeMap<(&'static str, String), u64>,
    failures: Vec<Failure>,
    refresh_accepted: HashSet<String>,
    violations: Vec<String>,
    revocations_checked: u64,
    books_checked: u64,
}

/// The shared record.
#[derive(Debug, Default)]
pub struct History {
    inner: Mutex<Inner>,
}

impl History {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one answer of `rpc` and keeps a failure for judging. Expected refusals
    /// (`expected`: the code a check wants, such as UNAUTHENTICATED for a revoked token) are
    /// counted, not kept.
    pub fn answer<T>(
        &self,
        rpc: &'static str,
        replica: &Arc<str>,
        start: Instant,
        result: &Result<T, tonic::Status>,
        expected: &[Code],
    ) {
        let mut inner = self.inner();
        let outcome = match result {
            Ok(_) => "OK".to_string(),
            Err(status) => format!("{:?}", status.code()),
        };
        *inner.calls.entry((rpc, outcome)).or_default() += 1;
        if let Err(status) = result {
            if !expected.contains(&status.code()) {
                inner.failures.push(Failure {
                    rpc,
                    replica: replica.clone(),
                    code: status.code(),
                    message: status.message().chars().take(200).collect(),
                    start,
                    end: Instant::now(),
                });
            }
        }
    }

    /// Records that `token` was accepted by RefreshToken; a second acceptance is a violation.
    pub fn refresh_accepted(&self, token: &str) {
        let mut inner = self.inner();
        if !inner.refresh_accepted.insert(token.to_string()) {
            inner
                .violations
                .push("a refresh token was accepted twice".to_string());
        }
    }

    pub fn violation(&self, what: String) {
        self.inner().violations.push(what);
    }

    pub fn revocation_checked(&self) {
        self.inner().revocations_checked += 1;
    }

    pub fn book_checked(&self) {
        self.inner().books_checked += 1;
    }

    /// Turns every failure outside the fault windows, or with a code other than UNAVAILABLE,
    /// into a violation, and returns the report's figures.
    pub fn judge(&self, faults: &Faults, start: Instant) -> Report {
        let mut inner = self.inner();
        let mut excused = 0u64;
        let mut found = Vec::new();
        for f in &inner.failures {
            if f.code == Code::Unavailable && faults.excuses(f.start, f.end) {
                excused += 1;
            } else {
                found.push(format!(
                    "+{:.2}s..+{:.2}s {} to {} failed with {:?} ({}) {}",
                    f.start.saturating_duration_since(start).as_secs_f64(),
                    f.end.saturating_duration_since(start).as_secs_f64(),
                    f.rpc,
                    f.replica,
                    f.code,
                    f.message,
                    if faults.excuses(f.start, f.end) {
                        "during a fault"
                    } else {
                        "outside every fault"
                    }
                ));
            }
        }
        inner.violations.extend(found);
        Report {
            calls: inner.calls.clone(),
            excused,
            violations: inner.violations.clone(),
            revocations_checked: inner.revocations_checked,
            books_checked: inner.books_checked,
            refresh_tokens_accepted: inner.refresh_accepted.len(),
        }
    }
}

/// The figures the soak prints.
#[derive(Debug)]
pub struct Report {
    pub calls: BTreeMap<(&'static str, String), u64>,
    pub excused: u64,
    pub violations: Vec<String>,
    pub revocations_checked: u64,
    pub books_checked: u64,
    pub refresh_tokens_accepted: usize,
}
