//! Where log lines go on their way to the sink (stderr). A call's thread appends its formatted
//! line to a shared buffer (one short lock and a copy: no system call, no thread to wake), and a
//! background thread writes whatever has gathered every [`FLUSH_EVERY`] in one `write`.
//!
//! Why not `tracing_appender::non_blocking`: its worker thread sleeps on a channel and is woken
//! for every line that finds it idle, a futex wake and two context switches per call on a busy
//! server; measured, that was most of the per-call log line's cost. Here the thread wakes on a
//! timer whatever the traffic. The price: a line reaches the sink up to [`FLUSH_EVERY`] late,
//! and a process killed with SIGKILL loses at most that much; on a normal exit (the
//! [`Flusher`] dropped) everything is written, unless the sink takes more than a second.
//!
//! When the sink cannot keep up (a flood of calls), ordinary lines past [`MAX_PENDING`] bytes
//! are dropped rather than slowing calls or growing memory. Security events (a line with an
//! `event` field: `login_failed`, `refresh_reuse`, `password_changed`, ...) and warnings are
//! not: they have a reserve of their own ([`MAX_PENDING_PRIORITY`]) that ordinary lines cannot
//! use up. Dropped lines are counted (`bookstore_log_lines_dropped_total`) and reported by a
//! line in the log at most once a second.

use std::{
    io::Write,
    sync::{mpsc, Arc, LazyLock, Mutex},
    time::{Duration, Instant},
};

use prometheus::IntCounter;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How often gathered lines are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Bytes held at most between two writes (every 50 ms: 40 MB/s of log before any is dropped):
/// past it, lines are dropped (and counted) rather than slowing calls or growing memory when
/// the sink is stuck.
pub const MAX_PENDING: usize = 2 * 1024 * 1024;
/// Further bytes held for security events and warnings only.
pub const MAX_PENDING_PRIORITY: usize = 8 * 1024 * 1024;
/// Least time between two "lines dropped" reports in the log.
const REPORT_DROPS_EVERY: Duration = Duration::from_secs(1);

/// `bookstore_log_lines_dropped_total`: one process-wide count (the log is process-wide),
/// registered by every service's [`crate::metrics::Metrics`].
pub static LINES_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "bookstore_log_lines_dropped_total",
        "Log lines dropped because the log output could not keep up (security events are kept).",
    )
    .expect("a valid metric")
});

/// The writer handed to `tracing_subscriber::fmt` (cheap to clone): it makes one [`Line`]
/// writer per event, which knows whether the event has priority.
#[derive(Debug, Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes one event's line.
#[derive(Debug)]
pub struct Line {
    shared: Arc<Shared>,
    /// A security event or a warning: kept when ordinary lines are dropped.
    priority: bool,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        self.line(false)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        let priority = matches!(*meta.level(), Level::WARN | Level::ERROR)
            || meta.fields().field("event").is_some();
        self.line(priority)
    }
}

impl LogWriter {
    fn line(&self, priority: bool) -> Line {
        Line {
            shared: self.shared.clone(),
            priority,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
}

/// How long an exiting process waits for the last lines to be written: a sink nobody reads (a
/// full pipe) must not keep it from exiting.
pub const LAST_WRITE: Duration = Duration::from_secs(1);

/// Writes what is left and stops the background thread when dropped (waiting at most
/// [`LAST_WRITE`]).
#[derive(Debug)]
pub struct Flusher {
    stop: Option<mpsc::Sender<()>>,
    /// Disconnected when the background thread has ended.
    ended: mpsc::Receiver<()>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        let _ = self.ended.recv_timeout(LAST_WRITE);
    }
}

/// A writer gathering lines for `sink`, and the guard of its background thread.
pub fn log_writer<W: Write + Send + 'static>(mut sink: W) -> (LogWriter, Flusher) {
    let shared = Arc::new(Shared::default());
    let (stop, stopped) = mpsc::channel::<()>();
    let (ending, ended) = mpsc::channel::<()>();
    let gathered = shared.clone();
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            // Dropped when this thread ends, which is what the Flusher waits for.
            let _ending = ending;
            let mut spare = Vec::new();
            let mut drops = Drops::default();
            loop {
                let stopping = !matches!(
                    stopped.recv_timeout(FLUSH_EVERY),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                drain(&gathered, &mut sink, &mut spare, &mut drops, stopping);
                if stopping {
                    break;
                }
            }
        })
        .expect("spawn the log writer thread");
    let flusher = Flusher {
        stop: Some(stop),
        ended,
    };
    (LogWriter { shared }, flusher)
}

/// Drops not yet reported in the log, and when the last report was.
#[derive(Debug, Default)]
struct Drops {
    unreported: u64,
    last_report: Option<Instant>,
}

/// Writes the gathered lines to `sink`, and how many were dropped when a report is due (at
/// most once a second, and always at the end); `spare` is the empty buffer swapped in, so
/// both keep their capacity.
fn drain(
    shared: &Shared,
    sink: &mut impl Write,
    spare: &mut Vec<u8>,
    drops: &mut Drops,
    ending: bool,
) {
    drops.unreported += {
        let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut pending.bytes, spare);
        std::mem::take(&mut pending.dropped)
    };
    if !spare.is_empty() {
        let _ = sink.write_all(spare);
        spare.clear();
    }
    let due = drops
        .last_report
        .is_none_or(|last| last.elapsed() >= REPORT_DROPS_EVERY);
    if drops.unreported > 0 && (due || ending) {
        let dropped = std::mem::take(&mut drops.unreported);
        let _ = writeln!(
            sink,
            "log: {dropped} lines dropped (output too slow; security events kept)"
        );
        drops.last_report = Some(Instant::now());
    }
    let _ = sink.flush();
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let room = match self.priority {
            true => MAX_PENDING + MAX_PENDING_PRIORITY,
            false => MAX_PENDING,
        };
        if pending.bytes.len() + buf.len() > room {
            pending.dropped += 1;
            LINES_DROPPED.inc();
        } else {
            pending.bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_sink_in_order_within_the_interval_and_all_of_them_on_drop() {
        let sink = Captured::default();
        let (writer, flusher) = log_writer(sink.clone());
        let mut writer = writer.line(false);
        writer.write_all(b"one\n").expect("write");
        let deadline = std::time::Instant::now() + 20 * FLUSH_EVERY;
        while sink.0.lock().expect("lock").is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "not written on the timer"
            );
            std::thread::sleep(FLUSH_EVERY / 5);
        }
        for n in 0..1000 {
            writeln!(writer, "line {n}").expect("write");
        }
        drop(flusher);
        let text = String::from_utf8(sink.0.lock().expect("lock").clone()).expect("utf-8");
        let expected: String = std::iter::once("one\n".to_string())
            .chain((0..1000).map(|n| format!("line {n}\n")))
            .collect();
        assert_eq!(text, expected);
    }

    /// A sink whose reader went away: every write blocks.
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_sink_that_never_takes_the_last_lines_delays_exit_by_at_most_a_second() {
        let (writer, flusher) = log_writer(Stuck);
        let mut writer = writer.line(false);
        writeln!(writer, "never written").expect("write");
        let started = std::time::Instant::now();
        drop(flusher);
        let waited = started.elapsed();
        assert!(waited >= LAST_WRITE, "gave up early: {waited:?}");
        assert!(waited < LAST_WRITE * 3, "held the exit: {waited:?}");
    }

    #[test]
    fn past_the_bound_ordinary_lines_are_dropped_and_counted_but_security_events_are_kept() {
        let writer = LogWriter {
            shared: Arc::default(),
        };
        let (mut ordinary, mut security) = (writer.line(false), writer.line(true));
        let line = vec![b'x'; 1024 * 1024];
        let before = LINES_DROPPED.get();
        for _ in 0..20 {
            assert_eq!(
                ordinary.write(&line).expect("write"),
                line.len(),
                "never an error"
            );
        }
        security.write_all(b"event=login_failed\n").expect("write");
        let kept = MAX_PENDING / line.len();
        assert_eq!(LINES_DROPPED.get() - before, (20 - kept) as u64);
        let mut sink = Vec::new();
        let mut drops = Drops::default();
        drain(
            &writer.shared,
            &mut sink,
            &mut Vec::new(),
            &mut drops,
            false,
        );
        let report = format!(
            "event=login_failed\nlog: {} lines dropped (output too slow; security events kept)\n",
            20 - kept
        );
        assert!(sink.ends_with(report.as_bytes()));
        assert_eq!(
            sink.iter().filter(|&&b| b == b'x').count(),
            kept * line.len()
        );
        // Drops are reported at most once a second.
        ordinary
            .write_all(&vec![b'y'; MAX_PENDING + 1])
            .expect("write");
        let mut sink = Vec::new();
        drain(
            &writer.shared,
            &mut sink,
            &mut Vec::new(),
            &mut drops,
            false,
        );
        assert!(sink.is_empty(), "reported again within the second");
        drain(&writer.shared, &mut sink, &mut Vec::new(), &mut drops, true);
        assert!(sink.ends_with(b"log: 1 lines dropped (output too slow; security events kept)\n"));
    }
}
