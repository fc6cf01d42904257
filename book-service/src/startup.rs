//! Building book-service: the same code for `main`, `bookstore up` and tests. The lifecycle
//! itself (serving, drain, close) is the kit's [`App`].

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use bookstore_contract::{
    proto::book::book_service_server::BookServiceServer, token::Expectations,
};
use bookstore_kit::{
    auth::{Authenticator, SharedKeys},
    channel::{self, SharedBearer},
    health::Health,
    metrics::Metrics,
    paging::PageTokens,
    revoked::{self, Revocations},
    stop_signal, App, Listeners, Service,
};
use tokio::sync::{oneshot, Notify};
use tonic::{
    server::NamedService,
    service::{interceptor::InterceptedService, Routes},
};
use tonic_health::ServingStatus;

use crate::{
    books::Books, config::Config, credentials::ClientCredentials, db::Db, error::DOMAIN,
    jwks::KeyFetcher, service::Handlers,
};

/// Largest request book-service decodes (256 KiB: a book is small, a mask list need not be).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// gRPC services of book-service, for per-service health.
pub const SERVICE_NAMES: &[&str] = &[<BookServiceServer<Handlers> as NamedService>::NAME];

/// Binds book-service's listeners, then builds it; run it with [`App::run_until_stopped`].
/// Health stays NOT_SERVING, and every call is answered UNAVAILABLE (`NOT_READY`), until
/// auth-service's public keys have been fetched and the whole backlog of revocations still
/// relevant has arrived; after that it stays SERVING, also while
/// auth-service is unreachable (book-service then verifies with what it knows: a token revoked
/// meanwhile is accepted at most until its `exp`).
pub async fn build(config: Config) -> anyhow::Result<App> {
    // First, before any connection of ours takes an ephemeral port ([`Listeners`]).
    let listeners = Listeners::bind(&config.serve).await?;
    let db = Db::connect(&config.serve.database_url).await?;
    let page_tokens = PageTokens::new(db.database().secret("list_books_page_token").await?);
    let database = db.database().clone();
    let handlers = Handlers {
        books: Books {
            db,
            page_tokens,
            clock: config.clock.clone(),
            total_sizes: Arc::default(),
            max_books_per_user: config.max_books_per_user,
        },
    };

    let purge = tokio::spawn(purge_periodically(handlers.books.clone()));
    let health = Health::new(SERVICE_NAMES, ServingStatus::NotServing).await;
    let metrics = Metrics::new();
    let keys = SharedKeys::default();
    let unknown_kid = Arc::new(Notify::new());
    let revocations = Revocations::default();
    let auth = channel::endpoint_with_flags(&config.auth_url, &config.auth_tls(), "auth-")?;
    let (keys_ready, keys_held) = oneshot::channel();
    let fetcher = KeyFetcher::new(
        auth.clone().timeout(Duration::from_secs(5)).connect_lazy(),
        keys.clone(),
        unknown_kid.clone(),
        keys_ready,
        &metrics,
    );
    let (revocations_ready, revocations_held) = oneshot::channel();
    let bearer = SharedBearer::default();
    let credentials = match (&config.auth_client_id, &config.auth_client_secret_file) {
        (Some(id), Some(file)) => Some(ClientCredentials::read(id, file)?),
        _ => None,
    };
    if credentials.is_none() && config.auth_client_cert.is_none() {
        tracing::warn!("no credential for auth-service's revocation stream: book-service stays NOT_READY until it has one (--auth-client-id and --auth-client-secret-file, or an mTLS client certificate)");
    }
    let renewer = credentials.map(|credentials| {
        let channel = auth.clone().timeout(Duration::from_secs(5)).connect_lazy();
        tokio::spawn(credentials.keep_fresh(channel, bearer.clone()))
    });
    let watcher = revoked::watch(
        auth.connect_lazy(),
        bearer,
        revocations.clone(),
        config.clock.clone(),
        Some(revocations_ready),
    );
    let ready = Arc::new(AtomicBool::new(false));
    let serving = {
        let (health, ready) = (health.clone(), ready.clone());
        async move {
            if keys_held.await.is_ok() && revocations_held.await.is_ok() {
                ready.store(true, Ordering::Release);
                health.set(ServingStatus::Serving).await;
            }
        }
    };
    let authenticator = Authenticator::remote(
        keys,
        Expectations {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        },
        DOMAIN,
        revocations,
        &metrics,
        unknown_kid,
        ready,
    );
    let routes = Routes::new(InterceptedService::new(
        BookServiceServer::new(handlers).max_decoding_message_size(MAX_REQUEST_BYTES),
        authenticator,
    ));
    tracing::info!(auth_url = %config.auth_url, "public keys come from auth-service");
    let service = Service {
        name: "book-service",
        routes,
        health,
        tasks: vec![
            tokio::spawn(fetcher.run()),
            tokio::spawn(watcher),
            tokio::spawn(serving),
            purge,
        ]
        .into_iter()
        .chain(renewer)
        .collect(),
        database: Some(database),
        stop: stop_signal().0,
        metrics,
        http: axum::Router::new(),
    };
    Ok(App::new(listeners, service))
}

/// Forgets CreateBook request ids older than a day ([`Books::purge`]), hourly.
async fn purge_periodically(books: Books) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match books.purge().await {
            Ok(purged) => tracing::debug!(purged, "purged old CreateBook request ids"),
            Err(e) => tracing::warn!(error = %e, "purging old CreateBook request ids failed"),
        }
    }
}
