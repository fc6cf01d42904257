//! The soak: 2 auth-service and 3 book-service processes on one database under a mixed
//! workload, with faults injected in turns (kill -9 of a replica and its restart, the database
//! restarted, auth-service away for 10 s). Every acknowledged call is recorded and the history
//! checked: acknowledged writes reflected, no refresh token accepted twice, no token accepted a
//! second after its revocation, only UNAVAILABLE during faults, RSS and open files of the
//! long-lived processes flat within 10 %. Prints calls, faults and violations; exits 1 on any
//! violation.
//!
//! ```sh
//! cargo build --release --bins
//! cargo run --release -p bookstore-e2e --bin soak -- --minutes 30            # PostgreSQL (root)
//! cargo run --release -p bookstore-e2e --bin soak -- --minutes 30 --backend sqlite
//! ```

mod cluster;
mod faults;
mod history;
mod resources;
mod workload;

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;

use crate::{
    cluster::{Backend, Cluster, Kind},
    faults::Faults,
    history::History,
    resources::Track,
    workload::Context,
};

/// Flat means: the last quarter's median within this much of the second quarter's.
const FLAT: f64 = 1.10;

#[derive(Debug, Parser)]
#[command(about = "Soak the services under injected faults and check the history.")]
struct Args {
    /// How long the workload runs, in minutes (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    minutes: f64,
    /// The database the replicas share.
    #[arg(long, value_enum, default_value_t = Backend::Postgres)]
    backend: Backend,
    /// Where the auth-service and book-service binaries are (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Concurrent actors (each a user at a time).
    #[arg(long, default_value_t = 8)]
    actors: usize,
    /// Seconds of calm between two faults.
    #[arg(long, default_value_t = 10)]
    calm: u64,
    /// Seed of the actors' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match soak(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn soak(args: Args) -> anyhow::Result<bool> {
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    };
    // Tokens expire and revocations are forgotten within the first quarter of the run, so the
    // caches they fill have reached their bounds before the resources are compared.
    let run = Duration::from_secs_f64(args.minutes * 60.0);
    let access_token_ttl = (run / 4).clamp(Duration::from_secs(20), Duration::from_secs(120));
    let mut cluster = Cluster::start(args.backend, &bin_dir, access_token_ttl).await?;
    println!(
        "soak: {:?}, 2 auth-service + 3 book-service, {} actors, {} min (logs in {})",
        args.backend,
        args.actors,
        args.minutes,
        cluster.log_dir().display()
    );
    let start = Instant::now();
    let until = start + run;
    let faults = Arc::new(Faults::default());
    let history = Arc::new(History::default());
    let context = Arc::new(Context::new(
        &cluster.endpoints(Kind::Auth),
        &cluster.endpoints(Kind::Book),
        history.clone(),
        faults.clone(),
        until,
        access_token_ttl / 2,
    )?);
    let mut tracks: Vec<Track> = ["auth-1", "book-1"]
        .iter()
        .filter_map(|name| {
            let replica = cluster.replicas.iter().find(|r| r.name == *name)?;
            Some(Track::new(name, replica.pid()?))
        })
        .collect();
    let calm = Duration::from_secs(args.calm);
    let (injected, (), ()) = tokio::join!(
        faults::inject(&mut cluster, &faults, until, calm),
        workload::run(context, args.actors, args.seed),
        resources::sample(&mut tracks, until),
    );
    injected?;
    let end = until.min(Instant::now());
    let report = history.judge(&faults, start);

    println!("\ncalls (answers by RPC and code):");
    let mut total = 0;
    for ((rpc, outcome), n) in &report.calls {
        println!("  {rpc:<38} {outcome:<18} {n:>8}");
        total += n;
    }
    println!("  {:<57} {total:>8}", "total");
    println!(
        "  {} failures excused (UNAVAILABLE inside a fault window or {} s after it)",
        report.excused,
        faults::GRACE.as_secs()
    );
    println!(
        "  {} book reads checked against the history, {} revoked-token probes refused, {} refresh tokens accepted once each",
        report.books_checked, report.revocations_checked, report.refresh_tokens_accepted
    );
    println!("\nfaults injected:");
    for w in faults.all() {
        let lasted = w.end.map(|e| e.duration_since(w.start));
        println!(
            "  +{:>6.1}s  {:<40} {:<16} served again after {:.1} s",
            w.start.duration_since(start).as_secs_f64(),
            w.fault.label(),
            w.target,
            lasted.unwrap_or_default().as_secs_f64()
        );
    }
    let mut violations = report.violations;
    println!("\nlong-lived processes (median of the 2nd quarter -> last quarter):");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for track in &tracks {
        let Some((second, last)) = track.quarters(start, end) else {
            violations.push(format!("{}: too few samples", track.name));
            continue;
        };
        println!(
            "  {:<7} RSS {:>6.1} -> {:>6.1} MiB ({:+.1} %), open files {} -> {}",
            track.name,
            mib(second.rss_kib),
            mib(last.rss_kib),
            (last.rss_kib as f64 / second.rss_kib as f64 - 1.0) * 100.0,
            second.files,
            last.files
        );
        let by_quarter = |field: fn(&resources::Medians) -> u64| {
            (track.trend(start, end).iter())
                .map(|m| format!("{:.1}", mib(field(m))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "          by quarter: RSS {} MiB; of it anonymous (heap, stacks) {} MiB",
            by_quarter(|m| m.rss_kib),
            by_quarter(|m| m.anon_kib)
        );
        if last.rss_kib as f64 > second.rss_kib as f64 * FLAT {
            violations.push(format!("{}'s RSS grew more than 10 %", track.name));
        }
        if last.files as f64 > second.files as f64 * FLAT {
            violations.push(format!("{}'s open files grew more than 10 %", track.name));
        }
    }
    println!("\nviolations: {}", violations.len());
    for v in violations.iter().take(50) {
        println!("  {v}");
    }
    cluster.stop();
    if !violations.is_empty() {
        cluster.dir.disable_cleanup(true);
        println!(
            "the replicas' logs are kept in {}",
            cluster.log_dir().display()
        );
    }
    Ok(violations.is_empty())
}
