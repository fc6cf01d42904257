//! Starting before the database is there. A replica started beside a PostgreSQL server that is
//! still booting (docker compose, a rolling restart) must neither crash-loop nor look healthy:
//! [`until_database_reachable`] serves health NOT_SERVING on the service's own listeners while
//! it retries with backoff, one log line per attempt, and returns once a connection succeeds.
//! A fault that waiting cannot cure (a wrong password, a missing database) ends the start with
//! one line instead.

use std::time::Duration;

use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::{
    config::ServeConfig, health::Health, metrics::Metrics, signal, stop_signal, storage, App,
    Service,
};

/// First pause between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Returns `Ok(true)` once the database of `serve` accepts connections (at once for SQLite),
/// `Ok(false)` if the process was asked to stop while waiting, and an error for a fault
/// waiting cannot cure. Meanwhile `services` (and the overall status) are NOT_SERVING on
/// `serve.listen` and `/healthz`. The listener is released just before returning, for the
/// real server to bind: a client connecting in that instant is refused and retries. A port 0
/// in `serve` is replaced by the port the stand-in got, so the service keeps the address it
/// announced.
pub async fn until_database_reachable(
    serve: &mut ServeConfig,
    name: &'static str,
    services: &'static [&'static str],
) -> anyhow::Result<bool> {
    let url = serve.database_url.clone();
    let url = url.as_str();
    let mut attempt = storage::probe(url).await;
    match &attempt {
        Ok(()) => return Ok(true),
        Err(e) if !storage::is_busy(e) => anyhow::bail!("database: {}", storage::describe(e)),
        Err(_) => {}
    }
    let (stop, _stopping) = stop_signal();
    let placeholder = Service {
        name,
        routes: Routes::default(),
        health: Health::new(services, ServingStatus::NotServing).await,
        tasks: Vec::new(),
        database: None,
        stop,
        metrics: Metrics::new(),
        http: axum::Router::new(),
    };
    let app = App::bind(serve, placeholder).await?;
    serve.listen = app.local_addr();
    serve.http_listen = app.http_addr().or(serve.http_listen);
    // Stopped by abort, not by a drain: it serves health only, and a drain would wait for
    // idle client connections to close.
    let serving = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let mut backoff = FIRST_BACKOFF;
    let reachable = loop {
        match attempt {
            Ok(()) => break true,
            Err(e) if storage::is_busy(&e) => {
                tracing::warn!(
                    error = %storage::describe(&e),
                    retry_in_ms = backoff.as_millis(),
                    "database unreachable; health is NOT_SERVING until it answers"
                );
            }
            Err(e) => {
                serving.abort();
                anyhow::bail!("database: {}", storage::describe(&e));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = signal::shutdown_signal() => break false,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt = storage::probe(url).await;
    };
    serving.abort();
    // Wait for the abort, so the listener is closed before the real server binds its address.
    let _ = serving.await;
    if reachable {
        tracing::info!("database reachable; starting");
    }
    Ok(reachable)
}
