//! Issuing tokens: the access token (a JWT signed by the active key) and the opaque refresh
//! token (256 random bits; only its SHA-256 is stored).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bookstore_contract::token::Claims;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{db::UserRow, keys::KeyRing};

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
        keys: &KeyRing,
        now: i64,
    ) -> (String, i64) {
        let now = now.max(user.tokens_not_before);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.id.clone(),
            username: user.username.clone(),
            admin: user.admin,
            iat: now,
            nbf: now,
            exp: now + self.access_ttl,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: sid.to_string(),
        };
        (keys.signer().sign(&claims), self.access_ttl)
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
