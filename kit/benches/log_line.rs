//! What the per-call log line costs the thread that writes it: the `info` line of
//! [`bookstore_kit::call_log::handled`], through the subscriber the services install
//! ([`bookstore_kit::telemetry`]), into a real file. Run with
//! `cargo bench -p bookstore-kit --bench log_line` (figures in BENCHMARKS.md); add
//! `LOG_FORMAT=json` for the JSON lines.
//!
//! Lines go out in bursts of [`BURST`] with a pause between them longer than the log writer's
//! flush interval, so none is dropped for want of room (a dropped line would cost less than a
//! written one and flatter the figure).

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use bookstore_kit::{call_log, log_writer::FLUSH_EVERY, telemetry};

/// Lines per burst: well under what fits between two flushes.
const BURST: u32 = 2_000;
/// Bursts measured.
const BURSTS: u32 = 200;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("service.log");
    let file = std::fs::File::create(&path).expect("log file");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();
    let telemetry = telemetry::init(file, "bench");
    let user = "0190b5f8-0000-7000-8000-000000000000".to_string();
    let line = || {
        call_log::handled(
            black_box("/bookstore.book.v1.BookService/GetBook"),
            Some(black_box(&user)),
            tonic::Code::Ok,
            black_box(0.123),
        );
    };
    for _ in 0..BURST {
        line(); // warm up
    }
    let mut spent = Duration::ZERO;
    for _ in 0..BURSTS {
        std::thread::sleep(FLUSH_EVERY * 2);
        let start = Instant::now();
        for _ in 0..BURST {
            line();
        }
        spent += start.elapsed();
    }
    drop(telemetry); // writes what is left
    let written = std::fs::read_to_string(&path).expect("read the log");
    let kept = written.lines().filter(|l| l.contains("handled")).count();
    // The warm-up burst is in the file too.
    assert_eq!(kept, (BURST * (BURSTS + 1)) as usize, "lines were dropped");
    println!(
        "{:<48} {:>10.2} µs/line ({} bytes/line)",
        "call log line at info, to a file",
        spent.as_nanos() as f64 / f64::from(BURST * BURSTS) / 1000.0,
        written.len() / kept.max(1),
    );
}
