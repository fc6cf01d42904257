//! Building and running auth-service: the same code for `main`, `bookstore up` and tests (which
//! pass a listener bound to port 0 and a temporary database).

use std::{future::Future, sync::Arc};

use bookstore_common::{
    auth::Authenticator,
    paging::PageTokens,
    proto::auth::{auth_service_server::AuthServiceServer, user_service_server::UserServiceServer},
    server::{self, Serving},
    token::Expectations,
};
use tokio::net::TcpListener;
use tonic::{
    server::NamedService,
    service::{interceptor::InterceptedService, Routes},
};
use tonic_health::server::HealthReporter;

use crate::{
    accounts::Accounts,
    config::Config,
    db::Db,
    error::DOMAIN,
    keys::{KeyRing, RELOAD_INTERVAL},
    password::Hasher,
    service::Handlers,
    tokens::Issuer,
};

/// Largest request auth-service decodes (SPEC: 64 KiB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// gRPC services of auth-service, for per-service health.
pub const SERVICE_NAMES: &[&str] = &[
    <AuthServiceServer<Handlers> as NamedService>::NAME,
    <UserServiceServer<Handlers> as NamedService>::NAME,
];

/// Opens the database (migrating it), loads or creates the signing key, and assembles the
/// state every RPC and admin subcommand works with.
pub async fn accounts(config: &Config) -> anyhow::Result<Accounts> {
    let db = Db::connect(&config.database_url).await?;
    let keys = KeyRing::open(&db, config.access_token_ttl, config.clock.now()).await?;
    Ok(Accounts {
        db,
        keys: Arc::new(keys),
        hasher: Hasher::default(),
        issuer: Issuer {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: seconds(config.access_token_ttl),
        },
        refresh_ttl: seconds(config.refresh_token_ttl),
        clock: config.clock.clone(),
    })
}

fn seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Serves auth-service on `listener` until `shutdown` completes, then drains and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let accounts = accounts(&config).await?;
    let page_tokens = PageTokens::new(accounts.db.secret("list_users_page_token").await?);
    let authenticator = Authenticator::new(
        accounts.keys.shared_keys(),
        Expectations {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        },
        DOMAIN,
    );
    let reload = tokio::spawn(reload_keys(accounts.clone()));
    let db = accounts.db.clone();
    let handlers = Handlers {
        accounts,
        page_tokens,
    };

    let health = HealthReporter::new();
    health.set_serving::<AuthServiceServer<Handlers>>().await;
    health.set_serving::<UserServiceServer<Handlers>>().await;
    let routes = Routes::new(
        AuthServiceServer::new(handlers.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
    )
    .add_service(InterceptedService::new(
        UserServiceServer::new(handlers).max_decoding_message_size(MAX_REQUEST_BYTES),
        authenticator,
    ));
    tracing::info!(addr = %listener.local_addr()?, "auth-service listening");
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
    reload.abort();
    db.close().await;
    served?;
    Ok(())
}

/// Rereads the signing keys now and then, so `keys rotate` from another process takes effect.
async fn reload_keys(accounts: Accounts) {
    loop {
        tokio::time::sleep(RELOAD_INTERVAL).await;
        if let Err(e) = accounts
            .keys
            .reload(&accounts.db, accounts.clock.now())
            .await
        {
            tracing::warn!(error = %e, "reloading signing keys failed; keeping the current ones");
        }
    }
}
