//! The application builder both services run through, as in zero2prod: a service binds its
//! [`Listeners`] first, builds its state, and hands a [`Service`] to [`App::new`]; `main`,
//! `bookstore up` and tests then call [`App::local_addr`] and [`App::run_until_stopped`]. Tests
//! bind port 0 and learn the port before the first call, with no sleeps.
//!
//! The builder owns the listeners and the lifecycle: the gRPC listener (TLS when configured,
//! [`crate::tls`]) serving with the limits of [`crate::server`], health and reflection beside
//! the service's routes and every call counted in its [`Metrics`]; the HTTP side door
//! (`--http-listen`, [`crate::http`]); then on shutdown the service's background tasks and
//! streams stop, health turns NOT_SERVING, in-flight calls drain (bounded by
//! [`server::DRAIN_TIMEOUT`]) and the database closes. Both services get all of it at once.

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use tokio::net::TcpStream;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::{
    config::ServeConfig,
    connections::{self, Gate, GatedListener, Guarded},
    health::Health,
    metrics::Metrics,
    server,
    storage::Database,
    tls::Acceptor,
};

/// Tells long-lived calls (server streams) that the server is shutting down, so they end by
/// themselves and the drain does not wait for them.
#[derive(Debug, Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// Completes once shutdown has begun.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// The sender half of [`Stopping`], handed to the builder in [`Service::stop`].
#[derive(Debug)]
pub struct StopSignal(watch::Sender<bool>);

/// A new pair: give the [`StopSignal`] to the builder, the [`Stopping`] to whatever streams.
pub fn stop_signal() -> (StopSignal, Stopping) {
    let (sender, receiver) = watch::channel(false);
    (StopSignal(sender), Stopping(receiver))
}

/// What a service hands to the builder.
pub struct Service {
    /// The binary's name, for log lines (`auth-service`, `book-service`).
    pub name: &'static str,
    /// The service's own gRPC services, already size-limited and intercepted.
    pub routes: Routes,
    /// Its health; served as grpc.health.v1 and turned NOT_SERVING on shutdown.
    pub health: Health,
    /// Background work (key reloads, key fetching), stopped before health turns NOT_SERVING
    /// so that none of it can turn health back to SERVING during the drain.
    pub tasks: Vec<JoinHandle<()>>,
    /// The service's storage, closed once the calls have drained (none while
    /// [`crate::waiting`] stands in).
    pub database: Option<Database>,
    /// Fired when shutdown begins (before the drain), to end server streams.
    pub stop: StopSignal,
    /// The service's metrics; the gRPC server counts every call in them.
    pub metrics: Metrics,
    /// Routes the service adds to the HTTP side door (beside `/metrics` and `/healthz`).
    pub http: axum::Router,
}

/// A service bound to its listeners, ready to run.
pub struct App {
    listeners: Listeners,
    service: Service,
}

/// A service's listeners, bound before anything else of it starts: the gRPC listener (with its
/// TLS side) and the HTTP side door. A service binds them first in its `build`, before it
/// opens any connection of its own (database, auth-service): an outgoing connection takes an
/// ephemeral local port, and the default ports (50051, 50052) lie in Linux's ephemeral range,
/// so a connection opened first could hold the very port the service is about to listen on.
pub struct Listeners {
    listener: TcpListener,
    /// The TLS side of the listener, when it serves TLS.
    tls: Option<Acceptor>,
    /// The HTTP side door's listener, when `--http-listen` is set.
    http: Option<TcpListener>,
    /// `--max-connections`, across both listeners.
    max_connections: u32,
    /// `--cors-origins`: the web pages allowed to call the gRPC listener.
    cors_origins: Vec<String>,
}

impl Listeners {
    /// Binds `config.listen` (port 0 picks a free port) and `config.http_listen`, with TLS when
    /// `config` names a certificate: the files are read now, so a missing or mismatched file
    /// fails here with its name.
    pub async fn bind(config: &ServeConfig) -> anyhow::Result<Listeners> {
        if let Some((before, after)) = connections::raise_open_file_limit() {
            tracing::debug!(before, after, "open-file soft limit");
        }
        let tls = config.tls().map(Acceptor::new).transpose().context("TLS")?;
        let listen = config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let http = match config.http_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (--http-listen)"))?,
            ),
            None => None,
        };
        Ok(Listeners {
            listener,
            tls,
            http,
            max_connections: config.max_connections,
            cors_origins: config.cors_origins.clone(),
        })
    }
}

impl App {
    /// `service` on `listeners`, ready to run.
    pub fn new(listeners: Listeners, service: Service) -> App {
        App { listeners, service }
    }

    /// [`Listeners::bind`], then [`App::new`]: for a service that opens no connection before.
    pub async fn bind(config: &ServeConfig, service: Service) -> anyhow::Result<App> {
        Ok(App::new(Listeners::bind(config).await?, service))
    }

    /// The address of the HTTP side door, when there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .http
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The address the gRPC listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners
            .listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` completes, then drains and closes. Errors of the listener are
    /// returned; the background tasks and the database are cleaned up either way.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let App {
            listeners:
                Listeners {
                    listener,
                    tls,
                    http,
                    max_connections,
                    cors_origins,
                },
            service,
        } = self;
        let Service {
            name,
            routes,
            health,
            mut tasks,
            database,
            stop,
            metrics,
            http: http_routes,
        } = service;
        let connections = metrics.gauge(
            "bookstore_db_connections",
            "Database connections by pool and state.",
            &["pool", "state"],
        );
        if let Some(counts) = database.as_ref().and_then(Database::group_commit_counts) {
            metrics.register(counts.commits.clone());
            metrics.register(counts.writes.clone());
        }
        let pools = database.clone();
        metrics.sample_before_scrape(move || {
            for (pool, open, idle) in pools.iter().flat_map(Database::pool_use) {
                let idle = i64::try_from(idle).unwrap_or(i64::MAX);
                connections.with_label_values(&[pool, "idle"]).set(idle);
                connections
                    .with_label_values(&[pool, "in_use"])
                    .set(i64::from(open) - idle);
            }
        });
        let refused = metrics.counter(
            "bookstore_connections_refused_total",
            "Connections closed at once because --max-connections were already open.",
            &[],
        );
        let gate = Gate::new(
            max_connections as usize,
            refused.with_label_values(&[] as &[&str]),
        );
        if let Some(http) = http {
            let router = crate::http::router(metrics.clone(), health.clone(), http_routes);
            let http = GatedListener {
                listener: http,
                gate: gate.clone(),
            };
            let mut stopping = Stopping(stop.0.subscribe());
            tracing::info!(addr = %http.listener.local_addr()?, "{name} HTTP side door listening");
            tasks.push(tokio::spawn(async move {
                let served = axum::serve(http, router)
                    .with_graceful_shutdown(async move { stopping.wait().await })
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "HTTP side door failed");
                }
            }));
        }
        if let Some(acceptor) = &tls {
            tasks.push(tokio::spawn(acceptor.clone().reload_on_change()));
        }
        let stop_tasks: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();

        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = {
            let health = health.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down: health NOT_SERVING, draining calls");
                stop_tasks.iter().for_each(tokio::task::AbortHandle::abort);
                let _ = stop.0.send(true);
                health.set(ServingStatus::NotServing).await;
                let _ = stopping_tx.send(());
            }
        };

        tracing::info!(addr = %addr, tls = tls.is_some(), "{name} listening");
        let router = server::grpc_server(routes, &health, &metrics, &cors_origins);
        type Serving<'a> = std::pin::Pin<
            Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send + 'a>,
        >;
        let server: Serving<'_> = match &tls {
            Some(acceptor) => Box::pin(router.serve_with_incoming_shutdown(
                acceptor.incoming(listener, server::TCP_KEEPALIVE, gate),
                signal,
            )),
            None => Box::pin(router.serve_with_incoming_shutdown(
                plaintext_incoming(listener, server::TCP_KEEPALIVE, gate),
                signal,
            )),
        };

        // Bound the drain: once the signal has fired, in-flight calls get DRAIN_TIMEOUT.
        let deadline = async {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(server::DRAIN_TIMEOUT).await;
                tracing::warn!("drain timeout reached, abandoning in-flight calls");
            } else {
                std::future::pending::<()>().await;
            }
        };
        let served = tokio::select! {
            result = server => result,
            () = deadline => Ok(()),
        };
        // Also when serving failed before any shutdown signal.
        tasks.iter().for_each(JoinHandle::abort);
        if let Some(database) = database {
            database.close().await;
        }
        served.with_context(|| format!("serving on {addr} failed"))
    }
}

/// Plaintext connections accepted on `listener`: no delay, TCP keepalive, each under the
/// connection cap and the first-request deadline ([`connections`]). A stream the server owns,
/// not a task: when the server stops (or is aborted, as the stand-in of
/// [`crate::waiting`] is) the listener is closed at once, so the real server can bind the same
/// address right after.
fn plaintext_incoming(
    listener: TcpListener,
    keepalive: std::time::Duration,
    gate: Gate,
) -> impl futures::Stream<Item = std::io::Result<Guarded<TcpStream>>> + Send + 'static {
    futures::stream::unfold((listener, gate), move |(listener, gate)| async move {
        loop {
            let (tcp, _) = connections::accept(&listener).await;
            let Some(place) = gate.place() else {
                continue; // dropped: closed at once
            };
            connections::tune(&tcp, keepalive);
            return Some((Ok(place.guard(tcp)), (listener, gate)));
        }
    })
}
