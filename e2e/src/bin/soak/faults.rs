//! The faults the soak injects, in turns, and the windows they cover: from the moment a fault
//! is injected until every replica is SERVING again. A failure is excused only inside a window
//! (plus [`GRACE`] for the calls that were in flight), and a revocation made just before or
//! during one is checked from the window's end.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::cluster::{Backend, Cluster};

/// How long after a window closes a failure still counts as the fault's: a call sent to a
/// replica as it died may take that long to fail, and a connection pool finds its broken
/// connections one call at a time.
pub const GRACE: Duration = Duration::from_secs(3);

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `kill -9` of a replica and its restart.
    Kill9,
    /// The database server stopped, down for 2 s, started.
    DatabaseRestart,
    /// Every auth-service paused (SIGSTOP) for 10 s.
    AuthAway,
}

impl Fault {
    pub fn label(self) -> &'static str {
        match self {
            Fault::Kill9 => "kill -9 of a replica, restarted",
            Fault::DatabaseRestart => "database restarted (down 2 s)",
            Fault::AuthAway => "auth-service away 10 s (both paused)",
        }
    }
}

/// One injected fault: when it began and, once the cluster serves again, when it ended.
#[derive(Debug, Clone)]
pub struct Window {
    pub fault: Fault,
    pub target: String,
    pub start: Instant,
    pub end: Option<Instant>,
}

/// The windows so far, shared by the injector and the workload.
#[derive(Debug, Default)]
pub struct Faults {
    windows: Mutex<Vec<Window>>,
}

impl Faults {
    fn windows(&self) -> std::sync::MutexGuard<'_, Vec<Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every window, for the report.
    pub fn all(&self) -> Vec<Window> {
        self.windows().clone()
    }

    /// Whether a failure of a call made in `[start, end]` falls in a window (or its grace).
    pub fn excuses(&self, start: Instant, end: Instant) -> bool {
        self.windows()
            .iter()
            .any(|w| start <= w.end.map_or(end, |e| e + GRACE) && end >= w.start)
    }

    /// The moment from which a revocation answered at `answered` must be felt within 1 s: the
    /// answer itself, or the end of a window that overlaps the following second (a paused
    /// auth-service cannot stream it, a restarted book-service learns it when it is ready).
    /// `None` while such a window is still open.
    pub fn felt_from(&self, answered: Instant) -> Option<Instant> {
        let mut from = answered;
        loop {
            let mut moved = false;
            for w in self.windows().iter() {
                if w.start <= from + Duration::from_secs(1) && w.end.is_none_or(|e| e >= from) {
                    let end = w.end?;
                    if end > from {
                        from = end;
                        moved = true;
                    }
                }
            }
            if !moved {
                return Some(from);
            }
        }
    }
}

/// Injects faults in turns until `until`, `calm` apart: kill -9 (of book-2, auth-2, book-3 in
/// turn: book-1 and auth-1 live throughout), a database restart (PostgreSQL only), auth-service
/// away for 10 s.
pub async fn inject(
    cluster: &mut Cluster,
    faults: &Faults,
    until: Instant,
    calm: Duration,
) -> anyhow::Result<()> {
    let victims: Vec<usize> = ["book-2", "auth-2", "book-3"]
        .iter()
        .filter_map(|name| cluster.replicas.iter().position(|r| r.name == *name))
        .collect();
    let mut turn = 0usize;
    let mut kills = 0usize;
    loop {
        tokio::time::sleep(calm).await;
        if Instant::now() + Duration::from_secs(12) > until {
            return Ok(());
        }
        let mut fault = [Fault::Kill9, Fault::DatabaseRestart, Fault::AuthAway][turn % 3];
        turn += 1;
        if fault == Fault::DatabaseRestart && cluster.backend == Backend::Sqlite {
            fault = Fault::Kill9;
        }
        let target = match fault {
            Fault::Kill9 => cluster.replicas[victims[kills % victims.len()]]
                .name
                .clone(),
            Fault::DatabaseRestart => "postgresql".into(),
            Fault::AuthAway => "auth-1, auth-2".into(),
        };
        let index = {
            let mut windows = faults.windows();
            windows.push(Window {
                fault,
                target,
                start: Instant::now(),
                end: None,
            });
            windows.len() - 1
        };
        match fault {
            Fault::Kill9 => {
                cluster.kill9_and_restart(victims[kills % victims.len()])?;
                kills += 1;
            }
            Fault::DatabaseRestart => {
                cluster.restart_database(Duration::from_secs(2)).await;
            }
            Fault::AuthAway => {
                cluster.pause_auth(true)?;
                tokio::time::sleep(Duration::from_secs(10)).await;
                cluster.pause_auth(false)?;
            }
        }
        cluster.wait_serving(Duration::from_secs(60)).await?;
        faults.windows()[index].end = Some(Instant::now());
    }
}
