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

use std::{
    io::Write,
    sync::{mpsc, Arc, Mutex},
    time::Duration,
};

/// How often gathered lines are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Bytes held at most between two writes: past it, lines are dropped (and counted) rather than
/// slowing calls or growing memory when the sink is stuck.
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// The writer handed to `tracing_subscriber::fmt` (cheap to clone).
#[derive(Debug, Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
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
const LAST_WRITE: Duration = Duration::from_secs(1);

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
            loop {
                let stopping = !matches!(
                    stopped.recv_timeout(FLUSH_EVERY),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                drain(&gathered, &mut sink, &mut spare);
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

/// Writes the gathered lines (and how many were dropped) to `sink`; `spare` is the empty buffer
/// swapped in, so both keep their capacity.
fn drain(shared: &Shared, sink: &mut impl Write, spare: &mut Vec<u8>) {
    let dropped = {
        let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut pending.bytes, spare);
        std::mem::take(&mut pending.dropped)
    };
    if !spare.is_empty() {
        let _ = sink.write_all(spare);
        spare.clear();
    }
    if dropped > 0 {
        let _ = writeln!(sink, "log: {dropped} lines dropped (output too slow)");
    }
    let _ = sink.flush();
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if pending.bytes.len() + buf.len() > MAX_PENDING {
            pending.dropped += 1;
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
        let (mut writer, flusher) = log_writer(sink.clone());
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
        let (mut writer, flusher) = log_writer(Stuck);
        writeln!(writer, "never written").expect("write");
        let started = std::time::Instant::now();
        drop(flusher);
        let waited = started.elapsed();
        assert!(waited >= LAST_WRITE, "gave up early: {waited:?}");
        assert!(waited < LAST_WRITE * 3, "held the exit: {waited:?}");
    }

    #[test]
    fn past_the_bound_lines_are_dropped_and_counted_not_held() {
        let mut writer = LogWriter {
            shared: Arc::default(),
        };
        let line = vec![b'x'; 1024 * 1024];
        for _ in 0..20 {
            assert_eq!(
                writer.write(&line).expect("write"),
                line.len(),
                "never an error"
            );
        }
        let mut sink = Vec::new();
        drain(&writer.shared, &mut sink, &mut Vec::new());
        assert!(sink.ends_with(b"log: 12 lines dropped (output too slow)\n"));
        assert_eq!(sink.iter().filter(|&&b| b == b'x').count(), 8 * line.len());
    }
}
