//! Access tokens: the claims they carry, the public keys that verify them, and the one
//! verifier both services use.
//!
//! An access token is a compact JWS (RFC 7515) signed with Ed25519 (`alg` `EdDSA`), header `typ`
//! `at+jwt` and `kid`, claims shaped after RFC 9068. Signing and signature checks are the
//! `jsonwebtoken` crate's; around it the verifier stays narrow: it accepts exactly one
//! algorithm, so `alg: none`, HMAC with the public key, embedded `jwk` headers and the like have
//! no code path that could accept them, and it adds what the library does not check (the size
//! limit before anything is decoded, `typ`, `crit` in any form, `kid` looked up only in the
//! in-memory [`KeySet`]).

use std::collections::HashMap;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ed25519_dalek::{pkcs8::EncodePrivateKey, SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::proto::auth::Jwk;

/// Tokens longer than this are rejected before any decoding (8 KiB, docs/api.md "Tokens").
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds (at most 30 s, docs/api.md "Tokens").
pub const LEEWAY_SECONDS: i64 = 30;
/// The `typ` header of an access token (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";
/// The one signature algorithm accepted.
pub const ALGORITHM: &str = "EdDSA";

/// Claims of an access token (RFC 9068 shape plus `username` and `admin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: must equal the verifier's configured issuer.
    pub iss: String,
    /// Audience: must equal the verifier's configured audience.
    pub aud: String,
    /// Subject: the user's id (UUID), or the service client's id.
    pub sub: String,
    /// The user's name at the time the token was issued (absent on a service client's token).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Whether the user was an admin when the token was issued.
    pub admin: bool,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The login session (refresh-token family) the token belongs to; refreshed tokens keep
    /// it. A revoked session revokes every token carrying its id. Empty in tokens made before
    /// sessions were named (they can still be revoked per user).
    #[serde(default)]
    pub sid: String,
    /// What the token may do: space-separated scopes ([`crate::scope`]). Tokens made before
    /// scopes existed have none and get their user's default ([`Claims::scopes`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// Set on a service client's token (its id, as `sub` is); absent on a user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Why a token was refused. Every variant becomes UNAUTHENTICATED; the variant is logged and
/// named in the ErrorInfo reason so a client developer can tell expiry from forgery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token is larger than 8 KiB")]
    TooLarge,
    #[error("access token is not a well-formed JWT")]
    Malformed,
    #[error("access token algorithm is not EdDSA")]
    Algorithm,
    #[error("access token type is not at+jwt")]
    Type,
    #[error("access token has critical header extensions")]
    Critical,
    #[error("access token was signed with an unknown key")]
    UnknownKey(String),
    #[error("access token signature is invalid")]
    Signature,
    #[error("access token has the wrong issuer or audience")]
    Claims,
    #[error("access token has expired")]
    Expired,
    #[error("access token is not valid yet")]
    NotYetValid,
}

impl TokenError {
    /// UPPER_SNAKE_CASE reason for the ErrorInfo detail.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Expired => "TOKEN_EXPIRED",
            TokenError::UnknownKey(_) => "TOKEN_KEY_UNKNOWN",
            _ => "TOKEN_INVALID",
        }
    }
}

/// The public keys a verifier trusts, by `kid`. Lookups are in memory only: a `kid` is never
/// used as a path, URL or query.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

impl KeySet {
    /// Adds (or replaces) a key.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        self.keys
            .insert(kid.into(), DecodingKey::from_ed_der(key.as_bytes()));
    }

    /// Whether the key `kid` is in the set (a cached verification is served only while it is).
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Builds a key set from GetJwks output. Keys of another type, curve or algorithm, or with
    /// a malformed `x`, are skipped: they could never verify one of our tokens.
    pub fn from_jwks(jwks: &[Jwk]) -> Self {
        let mut set = KeySet::default();
        for jwk in jwks {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" || jwk.alg != ALGORITHM {
                continue;
            }
            let Some(bytes) = URL_SAFE_NO_PAD
                .decode(&jwk.x)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                continue;
            };
            if let Ok(key) = VerifyingKey::from_bytes(&bytes) {
                set.insert(jwk.kid.clone(), key);
            }
        }
        set
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held (book-service before its first GetJwks).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }
}

/// The public JWK of an Ed25519 key.
pub fn jwk(kid: &str, key: &VerifyingKey) -> Jwk {
    Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        kid: kid.into(),
        x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
        alg: ALGORITHM.into(),
        r#use: "sig".into(),
    }
}

/// What a token must say about who issued it and for whom.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
}

/// Verifies `token` against `keys` at time `now` (Unix seconds), returning its claims and the
/// `kid` of the key that verified it.
///
/// Order matters: size first (unread), then the header (algorithm, type, `crit`, key), then the
/// signature, and only then are the claims parsed (by `jsonwebtoken`, which checks the
/// signature before it deserializes the claims), so unsigned input never reaches the claim
/// parser. Expiry is checked here against `now`, so tests can verify at any time.
pub fn verify(
    token: &str,
    keys: &KeySet,
    expect: &Expectations,
    now: i64,
) -> Result<(Claims, String), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let header_b64 = token.split('.').next().unwrap_or_default();
    // The one header field read here: `jsonwebtoken` decodes `"crit": null` as "no crit", and
    // a token carrying `crit` in any form is refused.
    let header_fields: serde_json::Map<String, serde_json::Value> = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::Malformed)?;
    if header_fields.contains_key("crit") {
        return Err(TokenError::Critical);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
        _ => TokenError::Malformed,
    })?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::Algorithm);
    }
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(TokenError::Type);
    }
    let kid = header.kid.ok_or(TokenError::Malformed)?;
    let key = keys
        .get(&kid)
        .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
    let claims = jsonwebtoken::decode::<Claims>(token, key, &validation(expect))
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidEddsaKey => TokenError::Signature,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::Claims,
                _ => TokenError::Malformed,
            }
        })?
        .claims;
    if now > claims.exp + LEEWAY_SECONDS {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now + LEEWAY_SECONDS {
        return Err(TokenError::NotYetValid);
    }
    Ok((claims, kid))
}

/// What `jsonwebtoken` checks: EdDSA only, the issuer and audience, every time claim present.
/// `exp` and `nbf` are compared by [`verify`] against its `now`.
fn validation(expect: &Expectations) -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation
}

/// A key that signs access tokens: the Ed25519 key in the form `jsonwebtoken` signs with.
#[derive(Clone)]
pub struct Signer {
    kid: String,
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.kid)
    }
}

impl Signer {
    /// A signer for `key`, published as `kid`.
    pub fn new(kid: impl Into<String>, key: &SigningKey) -> Self {
        // PKCS#8 encoding of a 32-byte Ed25519 seed cannot fail.
        let der = key
            .to_pkcs8_der()
            .expect("an Ed25519 key encodes as PKCS#8");
        Signer {
            kid: kid.into(),
            key: EncodingKey::from_ed_der(der.as_bytes()),
        }
    }

    /// The `kid` tokens of this signer carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims`: the only encoder of access tokens.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(self.kid.clone());
        // Serializing plain claims and signing with a valid Ed25519 key cannot fail.
        jsonwebtoken::encode(&header, claims, &self.key).expect("Ed25519 signing succeeds")
    }
}

/// Base64url (no padding) of a JSON value: one JWS segment (the forgery tests build tokens
/// that no library would).
pub fn encode_segment<T: Serialize>(value: &T) -> String {
    // Serializing our own plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("claims and headers serialize"))
}
