//! Service clients: machine identities (a nightly job, another service, book-service watching
//! revocations) that get access tokens with IssueClientToken, the OAuth 2.0
//! client-credentials grant, instead of a person's password.
//!
//! A client has a name, a UUID (its tokens' `sub` and `client_id`), the scopes it may hold and
//! a secret: 256 random bits shown once, stored only as its SHA-256 (like refresh tokens: with
//! that much entropy there is nothing to brute-force, so no slow hash is needed, and a
//! secret given with `--secret-stdin` must be at least [`MIN_GIVEN_SECRET_CHARS`] long).
//! IssueClientToken is throttled like Login, on the same counters keyed `client:<id or
//! name>`. Rotating a secret keeps the old one working for a grace period; when that ends (or
//! at once without one) the old secret's tokens are revoked, and deleting a client revokes all
//! of its tokens, like `admin disable`.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bookstore_contract::{error::Violations, scope::Scopes};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    accounts::{narrow, Accounts},
    caller::ClientAddr,
    db::ClientRow,
    error::{Error, Result},
};

/// Shortest secret accepted from `--secret-stdin`.
pub const MIN_GIVEN_SECRET_CHARS: usize = 32;
/// Longest client secret accepted anywhere.
pub const MAX_SECRET_CHARS: usize = 256;
/// Longest client name.
pub const MAX_NAME_CHARS: usize = 64;
/// How often a running auth-service ends the graces that are over.
pub const GRACE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A fresh secret: 256 random bits, base64url.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for `secret`.
fn hash_secret(secret: &str) -> String {
    bookstore_kit::hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is `client`'s current secret.
pub fn holds_secret(client: &ClientRow, secret: &str) -> bool {
    client.secret_hash == hash_secret(secret)
}

/// `secret` when given and long enough, a fresh one otherwise; INVALID_ARGUMENT on
/// `secret` when given and too short or too long.
fn secret_or_new(given: Option<String>) -> Result<String> {
    let Some(secret) = given else {
        return Ok(new_secret());
    };
    let chars = secret.chars().count();
    if !(MIN_GIVEN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&chars) {
        let mut v = Violations::default();
        v.add(
            "secret",
            format!("must be {MIN_GIVEN_SECRET_CHARS}-{MAX_SECRET_CHARS} characters"),
        );
        return Err(Error::Invalid(v));
    }
    Ok(secret)
}

/// The scopes named in `scopes` (space- or comma-separated), at least one, all known.
pub fn parse_scopes(scopes: &str) -> Result<Scopes> {
    let names = scopes.split([' ', ',']).filter(|s| !s.is_empty());
    let parsed = Scopes::parse(names);
    let mut v = Violations::default();
    match parsed {
        Ok(scopes) if !scopes.is_empty() => return Ok(scopes),
        Ok(_) => v.add("scopes", "name at least one scope"),
        Err(name) => v.add(
            "scopes",
            format!(
                "unknown scope {name:?}; known: {}",
                bookstore_contract::scope::ALL.join(" ")
            ),
        ),
    }
    Err(Error::Invalid(v))
}

/// Records a violation unless `name` is 3-64 characters of `[a-z0-9_.-]`.
fn check_name(name: &str) -> Result<()> {
    let ok = (3..=MAX_NAME_CHARS).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if ok {
        return Ok(());
    }
    let mut v = Violations::default();
    v.add(
        "name",
        format!("must be 3-{MAX_NAME_CHARS} characters of a-z, 0-9, '_', '.' and '-'"),
    );
    Err(Error::Invalid(v))
}

impl Accounts {
    /// Registers the client `name` holding `scopes`; returns it and its secret (the only time
    /// the secret is available: only its hash is stored).
    pub async fn create_client(
        &self,
        name: &str,
        scopes: Scopes,
        secret: Option<String>,
    ) -> Result<(ClientRow, String)> {
        check_name(name)?;
        let secret = secret_or_new(secret)?;
        let client = ClientRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            scopes: scopes.to_string(),
            secret_hash: hash_secret(&secret),
            previous_hash: None,
            previous_until: None,
            generation: 0,
            create_time: self.clock.unix_seconds(),
        };
        self.db.insert_client(&client).await?;
        tracing::warn!(
            event = "client_created",
            client = name,
            client_id = client.id,
            scopes = client.scopes,
            "service client created"
        );
        Ok((client, secret))
    }

    /// Every client, by name (never a secret).
    pub async fn list_clients(&self) -> Result<Vec<ClientRow>> {
        self.db.clients().await
    }

    /// Deletes the client `name` and revokes every token it holds.
    pub async fn delete_client(&self, name: &str) -> Result<()> {
        let id = self
            .db
            .delete_client(name, self.revoking_now())
            .await?
            .ok_or(Error::ClientNotFound)?;
        self.revoked.notify_waiters();
        tracing::warn!(
            event = "client_deleted",
            client = name,
            client_id = id,
            "service client deleted; its tokens are revoked"
        );
        Ok(())
    }

    /// Gives the client `name` a new secret (returned: shown once); the old one keeps working
    /// for `grace`, then its tokens are revoked.
    pub async fn rotate_client_secret(
        &self,
        name: &str,
        grace: Duration,
        secret: Option<String>,
    ) -> Result<(ClientRow, String)> {
        let secret = secret_or_new(secret)?;
        let revoking = self.revoking_now();
        let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        let client = self
            .db
            .rotate_client_secret(
                name,
                &hash_secret(&secret),
                revoking.now.saturating_add(grace),
                revoking,
            )
            .await?
            .ok_or(Error::ClientNotFound)?;
        self.revoked.notify_waiters();
        tracing::warn!(
            event = "client_secret_rotated",
            client = name,
            client_id = client.id,
            grace_seconds = grace,
            "service client secret rotated"
        );
        Ok((client, secret))
    }

    /// An access token for the client `key` (its id or name) proving `secret`, holding its
    /// scopes or the fewer `scopes` asks for; throttled like Login.
    pub async fn issue_client_token(
        &self,
        key: &str,
        secret: String,
        scopes: &[String],
        client: &ClientAddr,
    ) -> Result<(String, i64, Scopes)> {
        let now = self.clock.unix_seconds();
        // A key no client can have (empty, too long, a NUL PostgreSQL cannot store) is
        // answered like an unknown one at once: it reaches no query and no throttle row.
        if key.is_empty() || key.len() > MAX_SECRET_CHARS || key.contains('\0') {
            return Err(Error::BadClientCredentials);
        }
        let found = self.db.client(key).await?;
        // Which secret matched names the token's generation: a token of the previous secret
        // is revoked with it when its grace ends.
        let offered = hash_secret(&secret);
        let generation = found.as_ref().and_then(|c| {
            if c.secret_hash == offered {
                Some(c.generation)
            } else if c.previous_hash.as_deref() == Some(offered.as_str())
                && c.previous_until.is_some_and(|until| now < until)
            {
                Some(c.generation - 1)
            } else {
                None
            }
        });
        let subject = format!("client:{key}");
        let accepted = generation.is_some();
        let verified = self
            .check_throttled(&subject, client, async { Ok(accepted) })
            .await?;
        let (Some(found), Some(generation), true) = (found, generation, verified) else {
            tracing::warn!(event = "client_auth_failed", client_key = key, %client, "wrong client id or secret");
            return Err(Error::BadClientCredentials);
        };
        let granted = Scopes::parse_lenient(&found.scopes);
        let scopes = narrow(granted, scopes)?;
        let (token, expires_in) = self
            .issuer
            .client_token(&found, generation, scopes, &self.keys, now);
        Ok((token, expires_in, scopes))
    }

    /// Ends the secret graces that are over, revoking the old secrets' tokens.
    pub async fn end_client_graces(&self) -> Result<usize> {
        let ended = self.db.end_client_graces(self.revoking_now()).await?;
        if ended > 0 {
            self.revoked.notify_waiters();
        }
        Ok(ended)
    }
}
