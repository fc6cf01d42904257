//! The bookshelf page of `bookstore up`: the files `npm run build` wrote to `web/dist/`,
//! built into this binary (no Node needed to serve them), plus `/config.json`, which tells the
//! page where the two services listen. The page calls them with gRPC-Web from its own origin,
//! which `bookstore up` adds to both services' `--cors-origins`.

use std::net::SocketAddr;

use axum::{
    http::{header, HeaderValue},
    response::IntoResponse,
    routing::get,
    Json, Router,
};
use tokio::net::TcpListener;

const INDEX_HTML: &str = include_str!("../../web/dist/index.html");
const APP_JS: &str = include_str!("../../web/dist/app.js");
const APP_CSS: &str = include_str!("../../web/dist/app.css");

/// The origins a browser sends for a page served on `addr`: the address itself and, on the
/// loopback address, `localhost` too (what people type).
pub fn origins(addr: SocketAddr) -> Vec<String> {
    let mut origins = vec![format!("http://{addr}")];
    if addr.ip().is_loopback() {
        origins.push(format!("http://localhost:{}", addr.port()));
    }
    origins
}

/// The page's routes; `auth_url` and `book_url` go to the page in `/config.json`.
pub fn router(auth_url: &str, book_url: &str) -> Router {
    let config = serde_json::json!({ "auth_url": auth_url, "book_url": book_url });
    // The page may talk to its own origin and to the two services, and to nothing else.
    let policy = format!(
        "default-src 'self'; connect-src 'self' {auth_url} {book_url}; img-src 'self' data:; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    );
    let policy = HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(
        "default-src 'self'; frame-ancestors 'none'",
    ));
    let file = |content_type: &'static str, body: &'static str| {
        let policy = policy.clone();
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                    (header::CONTENT_SECURITY_POLICY, policy),
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                    (
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("no-referrer"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                ],
                body,
            )
                .into_response()
        })
    };
    Router::new()
        .route("/", file("text/html; charset=utf-8", INDEX_HTML))
        .route("/index.html", file("text/html; charset=utf-8", INDEX_HTML))
        .route("/app.js", file("text/javascript; charset=utf-8", APP_JS))
        .route("/app.css", file("text/css; charset=utf-8", APP_CSS))
        .route(
            "/config.json",
            get(move || {
                let config = config.clone();
                async move { Json(config) }
            }),
        )
}

/// Serves `router` on `listener` until `stop` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await?;
    Ok(())
}
