//! The bearer-token interceptor both services put in front of their protected RPCs.
//!
//! tonic runs an interceptor on the request headers before the body is decoded, so a request
//! without a valid token costs one header parse and, at most, one signature check.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tonic::{metadata::MetadataMap, service::Interceptor, Code, Request, Status};

use bookstore_contract::{
    error,
    token::{self, Claims, Expectations, KeySet, TokenError},
};

use crate::clock::Clock;

/// Verified tokens kept at most (the cache is cleared of expired entries, or entirely, when full).
const CACHE_CAPACITY: usize = 10_000;

/// The public keys a service trusts, shared between the interceptor and whatever keeps them
/// fresh (auth-service's key ring, book-service's JWKS refresher).
pub type SharedKeys = Arc<RwLock<KeySet>>;

/// Checks `authorization: Bearer <jwt>` and puts the token's [`Claims`] into the request
/// extensions. Cheap to clone: every clone shares the keys and the cache.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    /// Keys tokens may be signed with.
    keys: SharedKeys,
    /// Required issuer and audience.
    expect: Expectations,
    /// ErrorInfo domain of the refusals.
    domain: &'static str,
    /// Woken on a token with an unknown `kid`, so book-service refetches the JWKS at once
    /// (a freshly rotated key) instead of waiting for its next background refresh.
    unknown_kid: Option<Arc<Notify>>,
    /// Claims of tokens already verified, by SHA-256 of the token: a client that reuses its
    /// token pays the Ed25519 check once. Entries are only served before their `exp`.
    cache: Mutex<HashMap<[u8; 32], Claims>>,
}

impl Authenticator {
    /// An authenticator over `keys` that requires `expect`'s issuer and audience.
    pub fn new(keys: SharedKeys, expect: Expectations, domain: &'static str) -> Self {
        Self::build(keys, expect, domain, None)
    }

    /// Like [`Authenticator::new`], and notifies `unknown_kid` whenever a token names a key
    /// that is not in the set.
    pub fn with_unknown_kid_notify(
        keys: SharedKeys,
        expect: Expectations,
        domain: &'static str,
        unknown_kid: Arc<Notify>,
    ) -> Self {
        Self::build(keys, expect, domain, Some(unknown_kid))
    }

    fn build(
        keys: SharedKeys,
        expect: Expectations,
        domain: &'static str,
        unknown_kid: Option<Arc<Notify>>,
    ) -> Self {
        Authenticator {
            inner: Arc::new(Inner {
                keys,
                expect,
                domain,
                unknown_kid,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Verifies the bearer token in `metadata` and returns its claims.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Claims, Status> {
        let token = bearer_token(metadata).ok_or_else(|| {
            error::status(
                Code::Unauthenticated,
                self.inner.domain,
                "TOKEN_MISSING",
                "missing `authorization: Bearer <access token>` metadata",
            )
        })?;
        self.verify(token).map_err(|e| {
            tracing::debug!(error = ?e, "token refused");
            if let (TokenError::UnknownKey(_), Some(notify)) = (&e, &self.inner.unknown_kid) {
                notify.notify_one();
            }
            error::status(
                Code::Unauthenticated,
                self.inner.domain,
                e.reason(),
                e.to_string(),
            )
        })
    }

    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > token::MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let now = Clock::system().unix_seconds();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.cache().get(&digest) {
            if now <= claims.exp + token::LEEWAY_SECONDS {
                return Ok(claims.clone());
            }
        }
        let claims = {
            let keys = self.inner.keys.read().unwrap_or_else(|p| p.into_inner());
            token::verify(token, &keys, &self.inner.expect, now)?
        };
        let mut cache = self.cache();
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, c| now <= c.exp + token::LEEWAY_SECONDS);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(digest, claims.clone());
        Ok(claims)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Claims>> {
        // A panic while holding the lock cannot leave the map inconsistent: use it anyway.
        self.inner.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let claims = self.authenticate(request.metadata())?;
        tracing::Span::current().record("user_id", claims.sub.as_str());
        request.extensions_mut().insert(claims);
        Ok(request)
    }
}

/// The token of an `authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The verified claims of a request that passed the [`Authenticator`].
///
/// Missing claims mean a protected service was mounted without its interceptor: a bug, so the
/// answer is INTERNAL, not UNAUTHENTICATED.
pub fn claims<T>(request: &Request<T>, domain: &'static str) -> Result<Claims, Status> {
    request
        .extensions()
        .get::<Claims>()
        .cloned()
        .ok_or_else(|| {
            error::internal(
                domain,
                &"request reached a protected handler without verified claims",
            )
        })
}
