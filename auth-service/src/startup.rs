//! Building auth-service: the same code for `main`, `bookstore up` and tests (which ask for port
//! 0 and a temporary database). The lifecycle itself (serving, drain, close) is the kit's
//! [`App`].

use std::sync::Arc;

use bookstore_contract::{
    proto::auth::{
        auth_service_server::AuthServiceServer, revocation_service_server::RevocationServiceServer,
        user_service_server::UserServiceServer,
    },
    token::Expectations,
};
use bookstore_kit::{
    auth::Authenticator, health::Health, metrics::Metrics, paging::PageTokens,
    revoked::Revocations, stop_signal, App, Listeners, Service,
};
use tokio::sync::Notify;
use tonic::{
    server::NamedService,
    service::{interceptor::InterceptedService, Routes},
};
use tonic_health::ServingStatus;

use crate::{
    accounts::Accounts,
    caller::TrustedProxies,
    config::Config,
    counter::Limits,
    db::Db,
    error::DOMAIN,
    keys::{KeyRing, RELOAD_INTERVAL},
    password::Hasher,
    revocation_feed::Feed,
    service::Handlers,
    throttle::Finished,
    tokens::Issuer,
};

/// Largest request auth-service decodes (64 KiB: names and passwords are small).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// gRPC services of auth-service, for per-service health.
pub const SERVICE_NAMES: &[&str] = &[
    <AuthServiceServer<Handlers> as NamedService>::NAME,
    <UserServiceServer<Handlers> as NamedService>::NAME,
    <RevocationServiceServer<Handlers> as NamedService>::NAME,
];

/// Opens the database (migrating it), loads or creates the signing key, and assembles the
/// state every RPC and admin subcommand works with.
pub async fn accounts(config: &Config, metrics: &Metrics) -> anyhow::Result<Accounts> {
    let db = Db::connect(&config.serve.database_url).await?;
    let keys = KeyRing::open(&db, config.access_token_ttl, config.clock.unix_seconds()).await?;
    let page_tokens = PageTokens::new(db.database().secret("list_users_page_token").await?);
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
        page_tokens,
        limits: Limits {
            register_per_hour: i64::from(config.register_limit),
        },
        finished: Finished::default(),
        revoked: Arc::new(Notify::new()),
        logins: metrics.counter(
            "bookstore_logins_total",
            "Login attempts by result: success, failure (wrong password, unknown or disabled user) or throttled.",
            &["result"],
        ),
    })
}

fn seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Binds auth-service's listeners, then builds it; run it with [`App::run_until_stopped`].
pub async fn build(config: Config) -> anyhow::Result<App> {
    // First, before any connection of ours takes an ephemeral port ([`Listeners`]).
    let listeners = Listeners::bind(&config.serve).await?;
    let metrics = Metrics::new();
    let accounts = accounts(&config, &metrics).await?;
    let (stop, stopping) = stop_signal();
    // This service's interceptor refuses revoked tokens too, from its own database.
    let revocations = Revocations::default();
    let (feed, feed_task) = Feed::start(accounts.clone(), stopping.clone()).await?;
    let follow = feed.follow(revocations.clone(), &accounts);
    let authenticator = Authenticator::new(
        accounts.keys.shared_keys(),
        Expectations {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        },
        DOMAIN,
        revocations,
        &metrics,
    );
    let jwks = jwks_route(accounts.keys.clone());
    let reload = tokio::spawn(reload_keys(accounts.clone()));
    let purge = tokio::spawn(purge_periodically(accounts.clone()));
    let graces = tokio::spawn(end_client_graces(accounts.clone()));
    let database = accounts.db.database().clone();
    let handlers = Handlers {
        accounts,
        proxies: TrustedProxies::new(config.trusted_proxies.clone()),
        feed,
        authenticator: authenticator.clone(),
        stopping,
    };
    let routes = Routes::new(
        AuthServiceServer::new(handlers.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
    )
    .add_service(
        RevocationServiceServer::new(handlers.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
    )
    .add_service(InterceptedService::new(
        UserServiceServer::new(handlers).max_decoding_message_size(MAX_REQUEST_BYTES),
        authenticator,
    ));
    let service = Service {
        name: "auth-service",
        routes,
        health: Health::new(SERVICE_NAMES, ServingStatus::Serving).await,
        tasks: vec![reload, purge, graces, follow, feed_task],
        database: Some(database),
        stop,
        metrics,
        http: jwks,
    };
    Ok(App::new(listeners, service))
}

/// How long HTTP clients may cache the key set: a rotated key is published this long before
/// it signs (keys reload every 2 s, and a retired key stays published until its tokens expire),
/// and JWT libraries refetch on an unknown `kid` anyway.
const JWKS_MAX_AGE: &str = "public, max-age=60";

/// `GET /.well-known/jwks.json` (RFC 7517): the same keys as GetJwks, for API gateways and
/// JWT libraries that do not speak gRPC.
fn jwks_route(keys: Arc<KeyRing>) -> axum::Router {
    use axum::{http::header, routing::get, Json};
    axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let keys = keys.clone();
            async move {
                let jwks: Vec<serde_json::Value> = keys
                    .jwks()
                    .into_iter()
                    .map(|k| {
                        serde_json::json!({
                            "kty": k.kty, "crv": k.crv, "kid": k.kid, "x": k.x,
                            "alg": k.alg, "use": k.r#use,
                        })
                    })
                    .collect();
                (
                    [(header::CACHE_CONTROL, JWKS_MAX_AGE)],
                    Json(serde_json::json!({ "keys": jwks })),
                )
            }
        }),
    )
}

/// How often spent refresh tokens and stale throttle counters are deleted.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Deletes what can no longer matter ([`Accounts::purge`]), now and then.
async fn purge_periodically(accounts: Accounts) {
    loop {
        tokio::time::sleep(PURGE_INTERVAL).await;
        if let Err(e) = accounts.purge().await {
            tracing::warn!(error = %e, "purging expired rows failed; will try again");
        }
    }
}

/// Ends service-client secret graces as they run out (every second: a rotation's `--grace`
/// may be seconds), revoking the old secrets' tokens.
async fn end_client_graces(accounts: Accounts) {
    loop {
        tokio::time::sleep(crate::clients::GRACE_CHECK_INTERVAL).await;
        if let Err(e) = accounts.end_client_graces().await {
            tracing::warn!(error = %e, "ending client secret graces failed; will try again");
        }
    }
}

/// Rereads the signing keys now and then, so `keys rotate` from another process takes effect.
async fn reload_keys(accounts: Accounts) {
    loop {
        tokio::time::sleep(RELOAD_INTERVAL).await;
        if let Err(e) = accounts
            .keys
            .reload(&accounts.db, accounts.clock.unix_seconds())
            .await
        {
            tracing::warn!(error = %e, "reloading signing keys failed; keeping the current ones");
        }
    }
}
