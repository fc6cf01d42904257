//! Revoked access tokens, held in memory by every verifier.
//!
//! auth-service streams revocations (`RevocationService/WatchRevocations`): a login session
//! ended (every token with that `sid`), or every token of a user issued before a moment. A
//! verifier keeps each one only until the tokens it covers have expired (its `expire_time`), so
//! memory is bounded by what was revoked within one access-token lifetime. [`watch`] keeps the
//! set current from auth-service; the interceptor asks [`Revocations::is_revoked`] on every call,
//! cached verifications included.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use bookstore_contract::{
    proto::auth::{
        revocation_service_client::RevocationServiceClient, Revocation, WatchRevocationsRequest,
    },
    token::Claims,
};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use tracing::Instrument;

use crate::{
    channel::{SharedBearer, WithBearer},
    clock::Clock,
};

/// The revocations a verifier knows. Cheap to clone; clones share the set.
#[derive(Debug, Clone, Default)]
pub struct Revocations(Arc<RwLock<Known>>);

#[derive(Debug, Default)]
struct Known {
    /// Revoked session id → when its tokens have all expired (Unix seconds).
    sessions: HashMap<String, i64>,
    /// User id → (tokens issued before this are revoked, when those have all expired).
    users: HashMap<String, (i64, i64)>,
    /// `cursor` of the last revocation applied.
    cursor: i64,
}

impl Revocations {
    /// Adds `revocations` (in stream order) and moves the cursor past them.
    pub fn apply(&self, revocations: &[Revocation]) {
        let mut known = self.0.write().unwrap_or_else(|p| p.into_inner());
        for r in revocations {
            let expire = r.expire_time.as_ref().map_or(i64::MAX, |t| t.seconds);
            if !r.session_id.is_empty() {
                known.sessions.insert(r.session_id.clone(), expire);
            } else if !r.user_id.is_empty() {
                let not_before = r.not_before.as_ref().map_or(i64::MAX, |t| t.seconds);
                let entry = known.users.entry(r.user_id.clone()).or_insert((0, 0));
                entry.0 = entry.0.max(not_before);
                entry.1 = entry.1.max(expire);
            }
            known.cursor = known.cursor.max(r.cursor);
        }
    }

    /// Whether the token with `claims` has been revoked.
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let known = self.0.read().unwrap_or_else(|p| p.into_inner());
        (!claims.sid.is_empty() && known.sessions.contains_key(&claims.sid))
            || known
                .users
                .get(&claims.sub)
                .is_some_and(|(not_before, _)| claims.iat < *not_before)
    }

    /// Forgets revocations whose tokens have all expired at `now`.
    pub fn prune(&self, now: i64) {
        let mut known = self.0.write().unwrap_or_else(|p| p.into_inner());
        known.sessions.retain(|_, expire| *expire > now);
        known.users.retain(|_, (_, expire)| *expire > now);
    }

    /// Where the stream should resume.
    pub fn cursor(&self) -> i64 {
        self.0.read().unwrap_or_else(|p| p.into_inner()).cursor
    }

    /// How many revocations are held.
    pub fn len(&self) -> usize {
        let known = self.0.read().unwrap_or_else(|p| p.into_inner());
        known.sessions.len() + known.users.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How often expired revocations are forgotten.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(30);
/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Keeps `revocations` current from the RevocationService at `channel`, forever: subscribes
/// from the held cursor, applies each batch, and on any failure reconnects with backoff and
/// catches up from the cursor (the stream resends what was missed). `caught_up` fires once the
/// stream says the whole backlog has arrived (`caught_up` on a message), which may take several
/// messages. While auth-service is unreachable
/// the verifier goes on with what it knows, and a warning says for how long it has been behind.
///
/// The stream needs a credential: `bearer` (a token with `revocations:watch`, sent when it
/// holds one) or the channel's client certificate (mTLS).
pub async fn watch(
    channel: Channel,
    bearer: SharedBearer,
    revocations: Revocations,
    clock: Clock,
    mut caught_up: Option<oneshot::Sender<()>>,
) {
    let held = bearer.clone();
    let mut client = RevocationServiceClient::with_interceptor(channel, WithBearer { bearer });
    let mut backoff = Duration::from_millis(100);
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    let mut down_since: Option<tokio::time::Instant> = None;
    loop {
        let request = WatchRevocationsRequest {
            after: revocations.cursor(),
        };
        let span = tracing::info_span!("watch revocations", otel.kind = "client");
        match client.watch_revocations(request).instrument(span).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    tokio::select! {
                        message = stream.message() => match message {
                            Ok(Some(batch)) => {
                                revocations.apply(&batch.revocations);
                                if !batch.caught_up {
                                    continue; // more of the backlog follows
                                }
                                if let Some(since) = down_since.take() {
                                    tracing::info!(
                                        behind_seconds = since.elapsed().as_secs_f64(),
                                        cursor = revocations.cursor(),
                                        "revocation stream caught up"
                                    );
                                }
                                if let Some(ready) = caught_up.take() {
                                    let _ = ready.send(());
                                }
                                backoff = Duration::from_millis(100);
                            }
                            Ok(None) => break,
                            Err(status) => {
                                tracing::warn!(code = ?status.code(), message = status.message(), "revocation stream failed");
                                break;
                            }
                        },
                        _ = prune.tick() => revocations.prune(clock.unix_seconds()),
                    }
                }
            }
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
            {
                // Right after start the service client's first token may still be on its way:
                // a refusal then is expected, and only one that lasts is worth a warning.
                let no_token_yet = held.read().unwrap_or_else(|p| p.into_inner()).is_none()
                    && down_since.is_none_or(|since| since.elapsed() < Duration::from_secs(5));
                if no_token_yet {
                    tracing::debug!(code = ?status.code(), "revocation stream refused before the first token");
                } else {
                    tracing::warn!(code = ?status.code(), message = status.message(), "auth-service refused the revocation stream: give this service a client with revocations:watch (--auth-client-id, --auth-client-secret-file) or an mTLS client certificate");
                }
            }
            Err(status) => {
                tracing::debug!(code = ?status.code(), "cannot subscribe to revocations yet");
            }
        }
        let since = *down_since.get_or_insert_with(tokio::time::Instant::now);
        if since.elapsed() >= Duration::from_secs(1) {
            tracing::warn!(
                behind_seconds = since.elapsed().as_secs_f64(),
                "revocation stream down; verifying with the revocations already known"
            );
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        revocations.prune(clock.unix_seconds());
    }
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn claims(sub: &str, sid: &str, iat: i64) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: sub.into(),
            username: "u".into(),
            admin: false,
            iat,
            nbf: iat,
            exp: iat + 900,
            jti: "j".into(),
            sid: sid.into(),
            scope: String::new(),
            client_id: None,
        }
    }

    #[test]
    fn sessions_and_users_are_revoked_until_their_tokens_expire() {
        let revocations = Revocations::default();
        revocations.apply(&[
            Revocation {
                cursor: 1,
                session_id: "s1".into(),
                expire_time: at(2000),
                ..Default::default()
            },
            Revocation {
                cursor: 2,
                user_id: "u2".into(),
                not_before: at(1000),
                expire_time: at(1900),
                ..Default::default()
            },
        ]);
        assert_eq!(revocations.cursor(), 2);
        assert!(revocations.is_revoked(&claims("u1", "s1", 900)));
        assert!(!revocations.is_revoked(&claims("u1", "s9", 900)));
        assert!(revocations.is_revoked(&claims("u2", "s2", 999)));
        assert!(
            !revocations.is_revoked(&claims("u2", "s2", 1000)),
            "issued after"
        );
        revocations.prune(1950);
        assert_eq!(revocations.len(), 1);
        revocations.prune(2000);
        assert!(revocations.is_empty());
    }
}
