//! Keyset paging shared by ListUsers and ListBooks: page sizes and opaque, tamper-evident page
//! tokens.
//!
//! A page token names the last row of the previous page (its create_time and id) and a
//! fingerprint of the filters it was made for, signed with a per-database secret (HMAC-SHA256,
//! truncated to 128 bits). The next page is `WHERE (create_time, id) > (?, ?)`, so every page
//! costs what the first one costs. A token that was edited, made by another database, or sent
//! with other filters does not verify and is INVALID_ARGUMENT.
//!
//! Both lists page the same way: the handler turns `page_size` and `page_token` into a
//! [`PageRequest`] with [`PageTokens::request`] (violations gathered with the request's
//! others), the domain layer fetches `size + 1` rows after `after` and finishes the page with
//! [`PageTokens::page`].

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use bookstore_contract::error::Violations;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Larger requested page sizes are clamped to this.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// The effective page size for a requested one; `None` for a negative request.
fn page_size_of(requested: i32) -> Option<i64> {
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

/// A validated page request: how many rows, and after which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows on the page (defaulted and clamped).
    pub size: i64,
    /// Where the page starts; `None` for the first page.
    pub after: Option<Cursor>,
    /// Fingerprint of the filters, for the next page's token.
    pub filters: String,
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

    /// The page a request asks for, for a list whose filters fingerprint to `filters`. A
    /// negative `page_size` or a `page_token` that is not genuine or not of these filters adds
    /// a violation of that field.
    pub fn request(
        &self,
        page_size: i32,
        page_token: &str,
        filters: String,
        violations: &mut Violations,
    ) -> PageRequest {
        let size = page_size_of(page_size).unwrap_or_else(|| {
            violations.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        });
        let after = if page_token.is_empty() {
            None
        } else {
            let cursor = self.decode(page_token, &filters);
            if cursor.is_none() {
                violations.add(
                    "page_token",
                    "is not a page token of this list (or its filters changed)",
                );
            }
            cursor
        };
        PageRequest {
            size,
            after,
            filters,
        }
    }

    /// Finishes the page `request` asked for from `rows`, fetched with a limit of
    /// `request.size + 1`: keeps the first `size` rows and, when there were more, returns the
    /// token of the page after the last kept row (`cursor` says where a row sits).
    pub fn page<T>(
        &self,
        request: &PageRequest,
        mut rows: Vec<T>,
        cursor: impl FnOnce(&T) -> Cursor,
    ) -> (Vec<T>, String) {
        let size = usize::try_from(request.size).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        let next = match rows.last() {
            Some(last) if more => self.encode(&cursor(last), &request.filters),
            _ => String::new(),
        };
        (rows, next)
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
        assert_eq!(page_size_of(0), Some(50));
        assert_eq!(page_size_of(7), Some(7));
        assert_eq!(page_size_of(5000), Some(1000));
        assert_eq!(page_size_of(-1), None);
    }

    #[test]
    fn a_page_keeps_page_size_rows_and_a_token_only_when_more_follow() {
        let tokens = PageTokens::new([7; 32]);
        let at = |i: &i64| Cursor {
            create_time: *i,
            id: i.to_string(),
        };
        let mut violations = Violations::default();
        let first = tokens.request(2, "", "f".into(), &mut violations);
        let (rows, next) = tokens.page(&first, vec![1, 2, 3], at);
        assert_eq!(rows, [1, 2]);
        let second = tokens.request(2, &next, "f".into(), &mut violations);
        assert_eq!(second.after, Some(at(&2)));
        let (rows, next) = tokens.page(&second, vec![3, 4], at);
        assert_eq!((rows, next), (vec![3, 4], String::new()));
        assert!(violations.is_empty());
    }

    #[test]
    fn a_negative_size_and_a_foreign_token_are_both_reported() {
        let tokens = PageTokens::new([7; 32]);
        let other = PageTokens::new([8; 32]).encode(
            &Cursor {
                create_time: 1,
                id: "a".into(),
            },
            "f",
        );
        let mut violations = Violations::default();
        let request = tokens.request(-1, &other, "f".into(), &mut violations);
        assert_eq!(request.after, None);
        let fields: Vec<_> = violations.iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["page_size", "page_token"]);
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
