//! Building and running book-service: the same code for `main`, `bookstore up` and tests.

use std::{future::Future, sync::Arc};

use bookstore_common::{
    auth::{Authenticator, SharedKeys},
    paging::PageTokens,
    proto::book::book_service_server::BookServiceServer,
    server::{self, Serving},
    token::Expectations,
};
use tokio::{net::TcpListener, sync::Notify};
use tonic::{
    server::NamedService,
    service::{interceptor::InterceptedService, Routes},
};
use tonic_health::{server::HealthReporter, ServingStatus};

use crate::{
    books::Books, config::Config, db::Db, error::DOMAIN, jwks::KeyFetcher, service::Handlers,
};

/// Largest request book-service decodes (SPEC: 256 KiB).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// gRPC services of book-service, for per-service health.
pub const SERVICE_NAMES: &[&str] = &[<BookServiceServer<Handlers> as NamedService>::NAME];

/// Serves book-service on `listener` until `shutdown` completes, then drains and returns.
/// Health stays NOT_SERVING until auth-service's public keys have been fetched.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let db = Db::connect(&config.database_url).await?;
    let page_tokens = PageTokens::new(db.secret("list_books_page_token").await?);
    let handlers = Handlers {
        books: Books {
            db: db.clone(),
            page_tokens,
        },
    };

    let health = HealthReporter::new();
    for name in std::iter::once(&"").chain(SERVICE_NAMES) {
        health
            .set_service_status(*name, ServingStatus::NotServing)
            .await;
    }
    let keys = SharedKeys::default();
    let unknown_kid = Arc::new(Notify::new());
    let fetcher = KeyFetcher::new(
        &config.auth_url,
        keys.clone(),
        unknown_kid.clone(),
        health.clone(),
        SERVICE_NAMES,
    )?;
    let fetching = tokio::spawn(fetcher.run());
    // Stop fetching before health turns NOT_SERVING, so a first fetch that succeeds during the
    // drain cannot turn it back to SERVING.
    let stop_fetching = fetching.abort_handle();
    let shutdown = async move {
        shutdown.await;
        stop_fetching.abort();
    };
    let authenticator = Authenticator::with_unknown_kid_notify(
        keys,
        Expectations {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        },
        DOMAIN,
        unknown_kid,
    );

    let routes = Routes::new(InterceptedService::new(
        BookServiceServer::new(handlers).max_decoding_message_size(MAX_REQUEST_BYTES),
        authenticator,
    ));
    tracing::info!(addr = %listener.local_addr()?, auth_url = %config.auth_url, "book-service listening");
    let served = server::serve(
        listener,
        Serving {
            routes,
            health,
            service_names: SERVICE_NAMES,
        },
        shutdown,
    )
    .await;
    fetching.abort(); // also when serving failed before any shutdown signal
    db.close().await;
    served?;
    Ok(())
}
