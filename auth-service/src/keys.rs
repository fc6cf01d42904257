//! The Ed25519 signing keys: the first is made on first start and kept in the database;
//! `keys rotate` adds a newer one. The newest key signs; older keys stay published (GetJwks and
//! this service's own verifier) until every token they signed has expired.
//!
//! A running service reloads the keys every [`RELOAD_INTERVAL`], so a rotation done by the
//! `keys rotate` subcommand (another process) takes effect without a restart.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bookstore_contract::{
    proto::auth::Jwk,
    token::{self, KeySet, Signer},
};
use bookstore_kit::auth::SharedKeys;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::{
    db::{Db, KeyRow},
    error::{Error, Result},
};

/// How often a running service rereads the keys from the database.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The keys in memory: the active signer and the published public keys.
#[derive(Debug)]
pub struct KeyRing {
    /// The newest key, which signs new tokens.
    signer: RwLock<Signer>,
    /// Published keys, shared with this service's [`bookstore_kit::auth::Authenticator`].
    public: SharedKeys,
    /// The same keys as JWKs, for GetJwks.
    jwks: RwLock<Vec<Jwk>>,
    /// Access-token lifetime: how long a retired key stays published (plus leeway).
    access_ttl: i64,
}

impl KeyRing {
    /// Loads the keys, creating the first one if the database has none.
    pub async fn open(db: &Db, access_ttl: Duration, now: i64) -> Result<Self> {
        db.add_signing_key(&new_key(now), true).await?;
        let ring = KeyRing {
            signer: RwLock::new(Signer::new("", &SigningKey::from_bytes(&[0; 32]))),
            public: SharedKeys::default(),
            jwks: RwLock::new(Vec::new()),
            access_ttl: i64::try_from(access_ttl.as_secs()).unwrap_or(i64::MAX),
        };
        ring.reload(db, now).await?;
        Ok(ring)
    }

    /// Rereads the keys from the database.
    pub async fn reload(&self, db: &Db, now: i64) -> Result<()> {
        let rows = db.signing_keys().await?;
        let newest = rows
            .first()
            .ok_or_else(|| Error::Internal("no signing key in the database".into()))?;
        let signer = Signer::new(newest.kid.clone(), &signing_key(newest)?);
        let mut set = KeySet::default();
        let mut jwks = Vec::new();
        for row in &rows {
            let published = row
                .retire_time
                .is_none_or(|retired| retired + self.access_ttl + token::LEEWAY_SECONDS > now);
            if published {
                let public = signing_key(row)?.verifying_key();
                jwks.push(token::jwk(&row.kid, &public));
                set.insert(row.kid.clone(), public);
            }
        }
        *write(&self.signer) = signer;
        *write(&self.public) = set;
        *write(&self.jwks) = jwks;
        Ok(())
    }

    /// The key that signs new tokens.
    pub fn signer(&self) -> Signer {
        read(&self.signer).clone()
    }

    /// The published public keys as JWKs.
    pub fn jwks(&self) -> Vec<Jwk> {
        read(&self.jwks).clone()
    }

    /// The published keys, for the token verifier.
    pub fn shared_keys(&self) -> SharedKeys {
        Arc::clone(&self.public)
    }
}

/// Adds a new active key (`keys rotate`); returns its kid.
pub async fn rotate(db: &Db, now: i64) -> Result<String> {
    let key = new_key(now);
    db.add_signing_key(&key, false).await?;
    Ok(key.kid)
}

/// A fresh random key; its kid is the RFC 7638 JWK thumbprint of the public key.
fn new_key(now: i64) -> KeyRow {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    KeyRow {
        kid: URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())),
        private_key: key.to_bytes().to_vec(),
        create_time: now,
        retire_time: None,
    }
}

/// The private key stored in `row`.
pub fn signing_key(row: &KeyRow) -> Result<SigningKey> {
    let seed: [u8; 32] = row
        .private_key
        .as_slice()
        .try_into()
        .map_err(|_| Error::Internal(format!("signing key {} is not 32 bytes", row.kid)))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}
