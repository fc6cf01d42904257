//! Access tokens: the claims they carry, the public keys that verify them, and the one
//! verifier both services use.
//!
//! An access token is a compact JWS (RFC 7515) signed with Ed25519 (`alg` `EdDSA`), header `typ`
//! `at+jwt` and `kid`, claims shaped after RFC 9068. The verifier is deliberately narrow: it
//! decodes the header itself and accepts exactly one algorithm, so `alg: none`, HMAC with the
//! public key, embedded `jwk` headers and the like have no code path that could accept them.

use std::collections::HashMap;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::proto::auth::Jwk;

/// Tokens longer than this are rejected before any decoding (8 KiB, README "Tokens").
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds (at most 30 s, README "Tokens").
pub const LEEWAY_SECONDS: i64 = 30;
/// The `typ` header of an access token (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";
/// The one signature algorithm accepted.
pub const ALGORITHM: &str = "EdDSA";

/// The JOSE header we write. Verification parses [`RawHeader`] instead, to see every field.
#[derive(Debug, Serialize)]
pub struct Header<'a> {
    /// Always [`ALGORITHM`].
    pub alg: &'a str,
    /// Always [`TOKEN_TYPE`].
    pub typ: &'a str,
    /// Id of the signing key, looked up in the verifier's [`KeySet`].
    pub kid: &'a str,
}

/// Claims of an access token (RFC 9068 shape plus `username` and `admin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: must equal the verifier's configured issuer.
    pub iss: String,
    /// Audience: must equal the verifier's configured audience.
    pub aud: String,
    /// Subject: the user's id (UUID).
    pub sub: String,
    /// The user's name at the time the token was issued.
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
}

/// Everything a header may carry that we need to look at to reject it.
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
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
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl KeySet {
    /// Adds (or replaces) a key.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(kid.into(), key);
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

    fn get(&self, kid: &str) -> Option<&VerifyingKey> {
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

/// Verifies `token` against `keys` at time `now` (Unix seconds).
///
/// Order matters: size first (unread), then the header (algorithm, type, `crit`, key), then the
/// signature, and only then are the claims parsed, so unsigned input never reaches the claim
/// parser.
pub fn verify(
    token: &str,
    keys: &KeySet,
    expect: &Expectations,
    now: i64,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: RawHeader = decode_json(header_b64)?;
    if header.alg.as_deref() != Some(ALGORITHM) {
        return Err(TokenError::Algorithm);
    }
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(TokenError::Type);
    }
    if header.crit.is_some() {
        return Err(TokenError::Critical);
    }
    let kid = header.kid.ok_or(TokenError::Malformed)?;
    let key = keys.get(&kid).ok_or(TokenError::UnknownKey(kid))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(TokenError::Signature)?;
    let signed_len = header_b64.len() + 1 + claims_b64.len();
    key.verify_strict(&token.as_bytes()[..signed_len], &signature)
        .map_err(|_| TokenError::Signature)?;

    let claims: Claims = decode_json(claims_b64)?;
    if claims.iss != expect.issuer || claims.aud != expect.audience {
        return Err(TokenError::Claims);
    }
    if now > claims.exp + LEEWAY_SECONDS {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now + LEEWAY_SECONDS {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Base64url (no padding) of a JSON value: one JWS segment.
pub fn encode_segment<T: Serialize>(value: &T) -> String {
    // Serializing our own plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("claims and headers serialize"))
}

/// Signs `claims` with `key` under `kid`: the only encoder of access tokens.
pub fn sign(claims: &Claims, kid: &str, key: &ed25519_dalek::SigningKey) -> String {
    use ed25519_dalek::Signer;
    let header = Header {
        alg: ALGORITHM,
        typ: TOKEN_TYPE,
        kid,
    };
    let signing_input = format!("{}.{}", encode_segment(&header), encode_segment(claims));
    let signature = key.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}
