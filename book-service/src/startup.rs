//! Building book-service: the same code for `main`, `bookstore up` and tests. The lifecycle
//! itself (serving, drain, close) is the kit's [`App`].

use std::sync::Arc;

use bookstore_contract::{
    proto::book::book_service_server::BookServiceServer, token::Expectations,
};
use bookstore_kit::{
    auth::{Authenticator, SharedKeys},
    health::Health,
    paging::PageTokens,
    App, Service,
};
use tokio::sync::Notify;
use tonic::{
    server::NamedService,
    service::{interceptor::InterceptedService, Routes},
};
use tonic_health::ServingStatus;

use crate::{
    books::Books, config::Config, db::Db, error::DOMAIN, jwks::KeyFetcher, service::Handlers,
};

/// Largest request book-service decodes (256 KiB: a book is small, a mask list need not be).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// gRPC services of book-service, for per-service health.
pub const SERVICE_NAMES: &[&str] = &[<BookServiceServer<Handlers> as NamedService>::NAME];

/// Builds book-service and binds its listener; run it with [`App::run_until_stopped`].
/// Health stays NOT_SERVING until auth-service's public keys have been fetched.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let db = Db::connect(&config.serve.database_url).await?;
    let page_tokens = PageTokens::new(db.database().secret("list_books_page_token").await?);
    let database = db.database().clone();
    let handlers = Handlers {
        books: Books {
            db,
            page_tokens,
            clock: config.clock.clone(),
        },
    };

    let health = Health::new(SERVICE_NAMES, ServingStatus::NotServing).await;
    let keys = SharedKeys::default();
    let unknown_kid = Arc::new(Notify::new());
    let fetcher = KeyFetcher::new(
        &config.auth_url,
        keys.clone(),
        unknown_kid.clone(),
        health.clone(),
    )?;
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
    tracing::info!(auth_url = %config.auth_url, "public keys come from auth-service");
    let service = Service {
        name: "book-service",
        routes,
        health,
        tasks: vec![tokio::spawn(fetcher.run())],
        database,
    };
    App::bind(config.serve.listen, service).await
}
