//! Issuing tokens: the access token (a JWT signed by the active key) and the opaque refresh
//! token (256 random bits; only its SHA-256 is stored).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bookstore_contract::{scope::Scopes, token::Claims};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    db::{ClientRow, UserRow},
    keys::KeyRing,
};

/// A freshly issued token pair, as Login and RefreshToken return it.
#[derive(Debug)]
pub struct TokenPair {
    /// Signed JWT.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque refresh token (the only copy: the database keeps its hash).
    pub refresh_token: String,
    /// Seconds until the refresh token's family expires.
    pub refresh_expires_in: i64,
    /// The access token's scopes.
    pub scopes: Scopes,
}

/// Who tokens are issued by and for, and for how long.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Access-token lifetime in seconds.
    pub access_ttl: i64,
}

impl Issuer {
    /// A signed access token for `user` in the login session `sid`, and its lifetime in
    /// seconds. Its `iat` is no earlier than the user's `tokens_not_before`, so a token issued
    /// in the second of a password change is not caught by that change's revocation.
    pub fn access_token(
        &self,
        user: &UserRow,
        sid: &str,
        scopes: Scopes,
        keys: &KeyRing,
        now: i64,
    ) -> (String, i64) {
        let now = now.max(user.tokens_not_before);
        let claims = Claims {
            sub: user.id.clone(),
            username: user.username.clone(),
            admin: user.admin,
            sid: sid.to_string(),
            ..self.claims(scopes, now)
        };
        (keys.signer().sign(&claims), self.access_ttl)
    }

    /// A signed access token for the service client `client` (no username, not an admin, its
    /// `sid` naming the `generation` of the secret it proved), and its lifetime in seconds.
    pub fn client_token(
        &self,
        client: &ClientRow,
        generation: i64,
        scopes: Scopes,
        keys: &KeyRing,
        now: i64,
    ) -> (String, i64) {
        let claims = Claims {
            sub: client.id.clone(),
            client_id: Some(client.id.clone()),
            sid: crate::db::client_session(&client.id, generation),
            ..self.claims(scopes, now)
        };
        (keys.signer().sign(&claims), self.access_ttl)
    }

    /// The claims every token shares.
    fn claims(&self, scopes: Scopes, now: i64) -> Claims {
        Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: String::new(),
            username: String::new(),
            admin: false,
            iat: now,
            nbf: now,
            exp: now + self.access_ttl,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: String::new(),
            scope: scopes.to_string(),
            client_id: None,
        }
    }
}

/// A new refresh token and the hash to store.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// What the database stores for a refresh token. A plain SHA-256 suffices: the token has 256
/// random bits, so there is nothing to brute-force.
pub fn hash_refresh_token(token: &str) -> String {
    bookstore_kit::hex(&Sha256::digest(token.as_bytes()))
}
