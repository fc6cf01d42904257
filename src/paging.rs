//! Keyset paging shared by ListUsers and ListBooks: page sizes and opaque, tamper-evident page
//! tokens.
//!
//! A page token names the last row of the previous page (its create_time and id) and a
//! fingerprint of the filters it was made for, signed with a per-database secret (HMAC-SHA256,
//! truncated to 128 bits). The next page is `WHERE (create_time, id) > (?, ?)`, so every page
//! costs what the first one costs. A token that was edited, made by another database, or sent
//! with other filters does not verify and is INVALID_ARGUMENT.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Larger requested page sizes are clamped to this.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// The effective page size for a requested one; `None` for a negative request.
pub fn page_size(requested: i32) -> Option<i64> {
    match requested {
        n if n < 0 => None,
        0 => Some(DEFAULT_PAGE_SIZE),
        n => Some(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

/// Where the next page starts: after this (create_time, id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// create_time of the last row returned.
    pub create_time: i64,
    /// id of the last row returned.
    pub id: String,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    t: i64,
    i: String,
    /// Fingerprint of the filters the token belongs to.
    f: String,
}

/// Signs and checks page tokens with one secret.
#[derive(Clone)]
pub struct PageTokens {
    secret: [u8; 32],
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

impl PageTokens {
    /// Page tokens signed with `secret`.
    pub fn new(secret: [u8; 32]) -> Self {
        PageTokens { secret }
    }

    /// The token for the page after `cursor`, valid only with the same `filters` string.
    pub fn encode(&self, cursor: &Cursor, filters: &str) -> String {
        let payload = Payload {
            t: cursor.create_time,
            i: cursor.id.clone(),
            f: filters.to_string(),
        };
        // Serializing a plain struct cannot fail.
        let json = serde_json::to_vec(&payload).expect("page token payload serializes");
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(self.mac(&json))
        )
    }

    /// The cursor in `token` if it is genuine and was made for `filters`.
    pub fn decode(&self, token: &str, filters: &str) -> Option<Cursor> {
        let (body, mac) = token.split_once('.')?;
        let json = URL_SAFE_NO_PAD.decode(body).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let mut check = self.hmac();
        check.update(&json);
        check.verify_truncated_left(&mac).ok()?;
        if mac.len() != 16 {
            return None;
        }
        let payload: Payload = serde_json::from_slice(&json).ok()?;
        (payload.f == filters).then_some(Cursor {
            create_time: payload.t,
            id: payload.i,
        })
    }

    fn hmac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.hmac();
        mac.update(data);
        mac.finalize().into_bytes()[..16].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_clamp_and_refuse_negatives() {
        assert_eq!(page_size(0), Some(50));
        assert_eq!(page_size(7), Some(7));
        assert_eq!(page_size(5000), Some(1000));
        assert_eq!(page_size(-1), None);
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering_other_secrets_and_other_filters() {
        let tokens = PageTokens::new([7; 32]);
        let cursor = Cursor {
            create_time: 42,
            id: "abc".into(),
        };
        let token = tokens.encode(&cursor, "author=x");
        assert_eq!(tokens.decode(&token, "author=x"), Some(cursor.clone()));
        assert_eq!(tokens.decode(&token, "author=y"), None);
        assert_eq!(PageTokens::new([8; 32]).decode(&token, "author=x"), None);
        let forged = PageTokens::new([7; 32]).encode(
            &Cursor {
                create_time: 0,
                id: "a".into(),
            },
            "author=x",
        );
        let (_, mac) = forged.split_once('.').expect("has a dot");
        let (body, _) = token.split_once('.').expect("has a dot");
        assert_eq!(tokens.decode(&format!("{body}.{mac}"), "author=x"), None);
        assert_eq!(tokens.decode("garbage", ""), None);
        assert_eq!(tokens.decode("", ""), None);
    }
}
