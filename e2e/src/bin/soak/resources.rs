//! RSS and open files of the long-lived processes (auth-1 and book-1, never killed), sampled
//! every 5 s from /proc. "Flat" compares the last quarter of the run with its second quarter
//! (the first is warm-up: pools filling, caches growing to their bounds).

use std::time::{Duration, Instant};

/// One process's samples.
#[derive(Debug)]
pub struct Track {
    pub name: String,
    pid: u32,
    samples: Vec<(Instant, u64, u64)>,
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
        let rss_kib = status.ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
            line.split_whitespace().nth(1)?.parse().ok()
        });
        let files = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count() as u64)
            .ok();
        if let (Some(rss), Some(files)) = (rss_kib, files) {
            self.samples.push((Instant::now(), rss, files));
        }
    }

    /// The median RSS (KiB) and open files of the samples in `[from, to)` of the run.
    fn median(&self, start: Instant, end: Instant, from: f64, to: f64) -> Option<(u64, u64)> {
        let span = end.duration_since(start).as_secs_f64();
        let inside: Vec<_> = (self.samples.iter())
            .filter(|(t, _, _)| {
                let at = t.duration_since(start).as_secs_f64() / span;
                at >= from && at < to
            })
            .collect();
        if inside.is_empty() {
            return None;
        }
        let mut rss: Vec<u64> = inside.iter().map(|s| s.1).collect();
        let mut files: Vec<u64> = inside.iter().map(|s| s.2).collect();
        rss.sort_unstable();
        files.sort_unstable();
        Some((rss[rss.len() / 2], files[files.len() / 2]))
    }

    /// (second quarter, last quarter) medians.
    pub fn quarters(&self, start: Instant, end: Instant) -> Option<((u64, u64), (u64, u64))> {
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
