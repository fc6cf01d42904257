//! Memory and open files of the long-lived processes (auth-1 and book-1, never killed), sampled
//! every 5 s from /proc. "Flat" compares the last quarter of the run with its second quarter
//! (the first is warm-up: pools filling, caches growing to their bounds). The RSS is judged, and
//! its anonymous part (`RssAnon`: heap and stacks) printed beside it: a few MiB in a debug
//! build, where 10 % is allocator noise.

use std::time::{Duration, Instant};

/// One process's samples.
#[derive(Debug)]
pub struct Track {
    pub name: String,
    pid: u32,
    samples: Vec<Sample>,
}

/// One reading, in KiB and file descriptors.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    rss: u64,
    anon: u64,
    files: u64,
}

/// The medians of a stretch of the run.
#[derive(Debug, Clone, Copy)]
pub struct Medians {
    pub rss_kib: u64,
    pub anon_kib: u64,
    pub files: u64,
}

impl Track {
    pub fn new(name: &str, pid: u32) -> Track {
        Track {
            name: name.to_string(),
            pid,
            samples: Vec::new(),
        }
    }

    fn sample(&mut self) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid));
        let field = |name: &str| -> Option<u64> {
            let status = status.as_ref().ok()?;
            let line = status.lines().find(|l| l.starts_with(name))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        let (rss_kib, anon_kib) = (field("VmRSS:"), field("RssAnon:"));
        let files = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count() as u64)
            .ok();
        if let (Some(rss), Some(anon), Some(files)) = (rss_kib, anon_kib, files) {
            self.samples.push(Sample {
                at: Instant::now(),
                rss,
                anon,
                files,
            });
        }
    }

    /// The medians of the samples in `[from, to)` of the run (fractions of it).
    fn median(&self, start: Instant, end: Instant, from: f64, to: f64) -> Option<Medians> {
        let span = end.duration_since(start).as_secs_f64();
        let inside: Vec<Sample> = (self.samples.iter())
            .filter(|s| {
                let at = s.at.duration_since(start).as_secs_f64() / span;
                at >= from && at < to
            })
            .copied()
            .collect();
        let median = |field: fn(&Sample) -> u64| {
            let mut values: Vec<u64> = inside.iter().map(field).collect();
            values.sort_unstable();
            values.get(values.len() / 2).copied()
        };
        Some(Medians {
            rss_kib: median(|s| s.rss)?,
            anon_kib: median(|s| s.anon)?,
            files: median(|s| s.files)?,
        })
    }

    /// The medians of each quarter, for the report.
    pub fn trend(&self, start: Instant, end: Instant) -> Vec<Medians> {
        (0..4)
            .filter_map(|q| self.median(start, end, q as f64 / 4.0, (q as f64 + 1.0) / 4.0))
            .collect()
    }

    /// (second quarter, last quarter) medians.
    pub fn quarters(&self, start: Instant, end: Instant) -> Option<(Medians, Medians)> {
        Some((
            self.median(start, end, 0.25, 0.5)?,
            self.median(start, end, 0.75, 1.01)?,
        ))
    }
}

/// Samples every track until `until`.
pub async fn sample(tracks: &mut [Track], until: Instant) {
    while Instant::now() < until {
        for track in tracks.iter_mut() {
            track.sample();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
