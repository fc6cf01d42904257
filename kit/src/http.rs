//! The HTTP side door (`--http-listen`): plain HTTP/1.1 for tools that do not speak gRPC.
//!
//! - `GET /metrics`: the service's [`Metrics`] in the Prometheus text format;
//! - `GET /healthz`: 200 while the service is SERVING, 503 otherwise;
//! - whatever the service adds ([`Service::http`](crate::Service)), such as auth-service's
//!   `/.well-known/jwks.json`.
//!
//! Other paths are 404 and other methods 405. Nothing here is secret: no private key, no
//! per-user data, no token.

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Router};

use crate::{health::Health, metrics::Metrics};

/// The side door's routes: `/metrics`, `/healthz` and `extra`.
pub(crate) fn router(metrics: Metrics, health: Health, extra: Router) -> Router {
    Router::new()
        .route("/metrics", get(scrape).with_state(metrics))
        .route("/healthz", get(healthz).with_state(health))
        .merge(extra)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
}

async fn scrape(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.encode(),
    )
}

async fn healthz(State(health): State<Health>) -> impl IntoResponse {
    if health.is_serving() {
        (StatusCode::OK, "SERVING\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING\n")
    }
}
