//! The bearer-token interceptor both services put in front of their protected RPCs.
//!
//! tonic runs an interceptor on the request headers before the body is decoded, so a request
//! without a valid token costs one header parse and, at most, one signature check.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, RwLock,
    },
};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tonic::{metadata::MetadataMap, service::Interceptor, Code, Request, Status};

use bookstore_contract::{
    error,
    token::{self, Claims, Expectations, KeySet, TokenError},
};

use prometheus::{IntCounter, IntCounterVec};

use crate::{clock::Clock, metrics::Metrics, revoked::Revocations};

/// Verified tokens kept at most (the cache is cleared of expired entries, or entirely, when full).
const CACHE_CAPACITY: usize = 10_000;
/// How often expired entries are dropped from the cache (also when it is not full): it then
/// holds about the tokens still live, not the last 10,000 ever seen.
const CACHE_SWEEP_SECONDS: i64 = 10;

/// Verified tokens by the SHA-256 of their text, and when expired ones were last dropped.
#[derive(Default)]
struct TokenCache {
    entries: HashMap<[u8; 32], Verified>,
    swept: i64,
}

/// A cached verification.
#[derive(Clone)]
struct Verified {
    claims: Claims,
    kid: String,
}

/// The public keys a service trusts, shared between the interceptor and whatever keeps them
/// fresh (auth-service's key ring, book-service's JWKS refresher).
pub type SharedKeys = Arc<RwLock<KeySet>>;

/// Checks `authorization: Bearer <jwt>` and puts the token's [`Claims`] into the request
/// extensions. Cheap to clone: every clone shares the keys and the cache.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("domain", &self.inner.domain)
            .finish_non_exhaustive()
    }
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
    /// False until the service holds the keys *and* every revocation still relevant: before
    /// that a valid token cannot be told from a revoked one, so every call is answered
    /// UNAVAILABLE (`NOT_READY`) rather than admitted. Always true where both are loaded before
    /// serving (auth-service).
    ready: Arc<AtomicBool>,
    /// Claims of tokens already verified, with the `kid` of the key that verified them, by
    /// SHA-256 of the token: a client that reuses its token pays the Ed25519 check once.
    /// Entries are only served before their `exp`, and only while their key is in the set (a
    /// key removed from the key set takes its tokens with it).
    cache: Mutex<TokenCache>,
    /// Revoked sessions and users: checked on every call, cached verifications included.
    revocations: Revocations,
    /// `bookstore_token_verifications_total{result}`.
    verifications: IntCounterVec,
    /// `bookstore_token_cache_hits_total`.
    cache_hits: IntCounter,
}

impl Authenticator {
    /// An authenticator over `keys` that requires `expect`'s issuer and audience and refuses
    /// what `revocations` holds.
    pub fn new(
        keys: SharedKeys,
        expect: Expectations,
        domain: &'static str,
        revocations: Revocations,
        metrics: &Metrics,
    ) -> Self {
        let ready = Arc::new(AtomicBool::new(true));
        Self::build(keys, expect, domain, revocations, metrics, None, ready)
    }

    /// For a service whose keys and revocations come from elsewhere (book-service): notifies
    /// `unknown_kid` whenever a token names a key that is not in the set, and refuses every
    /// call with UNAVAILABLE (`NOT_READY`) until `ready` is set.
    pub fn remote(
        keys: SharedKeys,
        expect: Expectations,
        domain: &'static str,
        revocations: Revocations,
        metrics: &Metrics,
        unknown_kid: Arc<Notify>,
        ready: Arc<AtomicBool>,
    ) -> Self {
        let unknown_kid = Some(unknown_kid);
        Self::build(
            keys,
            expect,
            domain,
            revocations,
            metrics,
            unknown_kid,
            ready,
        )
    }

    fn build(
        keys: SharedKeys,
        expect: Expectations,
        domain: &'static str,
        revocations: Revocations,
        metrics: &Metrics,
        unknown_kid: Option<Arc<Notify>>,
        ready: Arc<AtomicBool>,
    ) -> Self {
        let cache_hits = IntCounter::new(
            "bookstore_token_cache_hits_total",
            "Access tokens admitted from the verified-token cache (no signature check).",
        )
        .expect("valid metric");
        metrics.register(cache_hits.clone());
        let held = metrics.gauge(
            "bookstore_revocations_held",
            "Revocations this verifier holds (until the tokens they cover expire).",
            &[],
        );
        let counted = revocations.clone();
        metrics.sample_before_scrape(move || {
            held.with_label_values(&[] as &[&str])
                .set(i64::try_from(counted.len()).unwrap_or(i64::MAX));
        });
        Authenticator {
            inner: Arc::new(Inner {
                keys,
                expect,
                domain,
                unknown_kid,
                ready,
                cache: Mutex::default(),
                revocations,
                verifications: metrics.counter(
                    "bookstore_token_verifications_total",
                    "Access-token checks by result: valid, missing, invalid, expired, key_unknown, revoked.",
                    &["result"],
                ),
                cache_hits,
            }),
        }
    }

    /// Verifies the bearer token in `metadata` and returns its claims.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Claims, Status> {
        if !self.inner.ready.load(Ordering::Acquire) {
            return Err(error::status(
                Code::Unavailable,
                self.inner.domain,
                "NOT_READY",
                "not ready: still loading auth-service's public keys and revocations; retry shortly",
            ));
        }
        let outcome = self.check(metadata);
        let result = match &outcome {
            Ok(_) => "valid",
            Err((reason, _)) => result_label(reason),
        };
        self.inner.verifications.with_label_values(&[result]).inc();
        outcome.map_err(|(reason, message)| {
            error::status(Code::Unauthenticated, self.inner.domain, reason, message)
        })
    }

    /// The claims of the bearer token in `metadata`, or the ErrorInfo reason and message of
    /// the refusal.
    fn check(&self, metadata: &MetadataMap) -> Result<Claims, (&'static str, String)> {
        let token = bearer_token(metadata).map_err(|(reason, message)| (reason, message.into()))?;
        let claims = self.verify(token).map_err(|e| {
            tracing::debug!(error = ?e, "token refused");
            if let (TokenError::UnknownKey(_), Some(notify)) = (&e, &self.inner.unknown_kid) {
                notify.notify_one();
            }
            (e.reason(), e.to_string())
        })?;
        if self.inner.revocations.is_revoked(&claims) {
            return Err((
                "TOKEN_REVOKED",
                "access token has been revoked (logout, password change or disabled account); log in again".into(),
            ));
        }
        Ok(claims)
    }

    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > token::MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let now = Clock::system().unix_seconds();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let keys = self.inner.keys.read().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = self.cache().entries.get(&digest) {
            if now <= hit.claims.exp + token::LEEWAY_SECONDS && keys.contains(&hit.kid) {
                self.inner.cache_hits.inc();
                return Ok(hit.claims.clone());
            }
        }
        let (claims, kid) = token::verify(token, &keys, &self.inner.expect, now)?;
        drop(keys);
        let mut cache = self.cache();
        if cache.entries.len() >= CACHE_CAPACITY || now - cache.swept >= CACHE_SWEEP_SECONDS {
            (cache.entries).retain(|_, c| now <= c.claims.exp + token::LEEWAY_SECONDS);
            cache.swept = now;
            if cache.entries.len() >= CACHE_CAPACITY {
                cache.entries.clear();
            }
        }
        cache.entries.insert(
            digest,
            Verified {
                claims: claims.clone(),
                kid,
            },
        );
        Ok(claims)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        // A panic while holding the lock cannot leave the map inconsistent: use it anyway.
        self.inner.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let claims = self.authenticate(request.metadata())?;
        if let Some(user) = request.extensions().get::<crate::call_log::CallUser>() {
            user.set(&claims.sub);
        }
        // The call's span, when traces are exported (OpenTelemetry's name for the user).
        tracing::Span::current().record("enduser.id", claims.sub.as_str());
        request.extensions_mut().insert(claims);
        Ok(request)
    }
}

/// The `result` label of a refusal's ErrorInfo reason (`TOKEN_KEY_UNKNOWN` → `key_unknown`),
/// without allocating on the hot path.
fn result_label(reason: &str) -> &'static str {
    match reason {
        "TOKEN_MISSING" => "missing",
        "TOKEN_EXPIRED" => "expired",
        "TOKEN_KEY_UNKNOWN" => "key_unknown",
        "TOKEN_REVOKED" => "revoked",
        _ => "invalid",
    }
}

/// The token of the one `authorization: Bearer <token>` entry (scheme case-insensitive), or
/// the ErrorInfo reason and message of the refusal. Two entries are refused rather than one
/// picked: a proxy and a client that disagree about the caller must not be resolved silently.
fn bearer_token(metadata: &MetadataMap) -> Result<&str, (&'static str, &'static str)> {
    const MISSING: (&str, &str) = (
        "TOKEN_MISSING",
        "missing `authorization: Bearer <access token>` metadata",
    );
    let mut entries = metadata.get_all("authorization").iter();
    let value = entries.next().ok_or(MISSING)?;
    if entries.next().is_some() {
        return Err((
            "TOKEN_INVALID",
            "more than one `authorization` metadata entry; send exactly one",
        ));
    }
    let (scheme, token) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .ok_or(MISSING)?;
    let token = token.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
        Ok(token)
    } else {
        Err(MISSING)
    }
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

#[cfg(test)]
mod tests {
    use bookstore_contract::token::Signer;
    use ed25519_dalek::SigningKey;

    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: "user".into(),
            username: "alice".into(),
            admin: false,
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: "jti".into(),
            sid: "session".into(),
            scope: String::new(),
            client_id: None,
        }
    }

    fn metadata(token: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        let value = format!("Bearer {token}").parse().expect("metadata");
        metadata.insert("authorization", value);
        metadata
    }

    #[test]
    fn a_cached_token_is_refused_once_its_key_has_left_the_key_set() {
        let old = SigningKey::from_bytes(&[1; 32]);
        let new = SigningKey::from_bytes(&[2; 32]);
        let keys = SharedKeys::default();
        keys.write()
            .expect("lock")
            .insert("old", old.verifying_key());
        let authenticator = Authenticator::new(
            keys.clone(),
            Expectations {
                issuer: "iss".into(),
                audience: "aud".into(),
            },
            "test",
            Revocations::default(),
            &Metrics::new(),
        );
        let token = Signer::new("old", &old).sign(&claims(Clock::system().unix_seconds()));
        let request = metadata(&token);
        authenticator.authenticate(&request).expect("verified");
        authenticator
            .authenticate(&request)
            .expect("served from the cache");

        let mut rotated = KeySet::default();
        rotated.insert("new", new.verifying_key());
        *keys.write().expect("lock") = rotated;
        let refused = authenticator
            .authenticate(&request)
            .expect_err("the key is gone");
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
}
