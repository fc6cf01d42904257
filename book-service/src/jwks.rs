//! auth-service's public keys, held in memory for the token verifier.
//!
//! At start the keys are fetched with GetJwks, retrying with backoff; until the first success
//! book-service reports NOT_SERVING (and refuses every token, having no key; health also waits
//! for the revocations still relevant, see `startup`). Then they are
//! refreshed every [`REFRESH_INTERVAL`], and at once when a token names an unknown `kid` (a key
//! just rotated in), at most once per [`MIN_REFRESH_GAP`] so forged kids cannot turn
//! book-service into a flood against auth-service. A failed refresh keeps the cached keys:
//! book-service goes on serving while auth-service is down. No request ever waits on
//! auth-service.

use std::{sync::Arc, time::Duration};

use bookstore_contract::{
    proto::auth::{auth_service_client::AuthServiceClient, GetJwksRequest},
    token::KeySet,
};
use bookstore_kit::{auth::SharedKeys, channel::PropagateTrace, metrics::Metrics};
use prometheus::{IntCounterVec, IntGauge};
use tokio::{
    sync::{oneshot, Notify},
    time::Instant,
};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Background refresh period.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Least time between two fetches triggered by unknown kids.
pub const MIN_REFRESH_GAP: Duration = Duration::from_secs(5);
/// Longest wait between two attempts of the first fetch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Keeps [`SharedKeys`] filled from auth-service's GetJwks.
pub struct KeyFetcher {
    client: AuthServiceClient<InterceptedService<Channel, PropagateTrace>>,
    /// The verifier's keys.
    keys: SharedKeys,
    /// Woken by the interceptor on an unknown kid.
    unknown_kid: Arc<Notify>,
    /// Fired once keys are held.
    ready: Option<oneshot::Sender<()>>,
    /// `bookstore_jwks_refreshes_total{result}`.
    refreshes: IntCounterVec,
    /// `bookstore_jwks_keys`: public keys held.
    held: IntGauge,
}

impl KeyFetcher {
    /// A fetcher over `channel` to auth-service (connected lazily, so auth-service may be down
    /// when book-service starts); `ready` fires once keys are held.
    pub fn new(
        channel: Channel,
        keys: SharedKeys,
        unknown_kid: Arc<Notify>,
        ready: oneshot::Sender<()>,
        metrics: &Metrics,
    ) -> Self {
        let held = IntGauge::new("bookstore_jwks_keys", "Public keys held from auth-service.")
            .expect("valid metric");
        metrics.register(held.clone());
        KeyFetcher {
            client: AuthServiceClient::with_interceptor(channel, PropagateTrace),
            keys,
            unknown_kid,
            ready: Some(ready),
            refreshes: metrics.counter(
                "bookstore_jwks_refreshes_total",
                "Fetches of auth-service's public keys by result: success or failure.",
                &["result"],
            ),
            held,
        }
    }

    /// Runs forever: the first fetch with retries, then the refresh loop.
    pub async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        while !self.refresh().await {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
        let mut last = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(REFRESH_INTERVAL) => {}
                () = self.unknown_kid.notified() => {
                    tokio::time::sleep_until(last + MIN_REFRESH_GAP).await;
                }
            }
            self.refresh().await;
            last = Instant::now();
        }
    }

    /// Fetches the keys; on success replaces the held set. Returns whether keys are now held.
    async fn refresh(&mut self) -> bool {
        use tracing::Instrument;
        let span = tracing::info_span!("refresh public keys", otel.kind = "client");
        let fetched = self
            .client
            .get_jwks(GetJwksRequest {})
            .instrument(span)
            .await;
        match fetched {
            Ok(response) => {
                let set = KeySet::from_jwks(&response.into_inner().keys);
                if set.is_empty() {
                    tracing::warn!("auth-service published no usable key; keeping the cached keys");
                } else {
                    tracing::debug!(keys = set.len(), "public keys refreshed");
                    self.held.set(i64::try_from(set.len()).unwrap_or(i64::MAX));
                    *self.keys.write().unwrap_or_else(|p| p.into_inner()) = set;
                }
                self.refreshes.with_label_values(&["success"]).inc();
            }
            Err(status) => {
                self.refreshes.with_label_values(&["failure"]).inc();
                tracing::warn!(code = ?status.code(), message = status.message(), "fetching public keys from auth-service failed; keeping the cached keys");
            }
        }
        !self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}
