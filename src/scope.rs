//! Scopes: what an access token may do, carried in its `scope` claim (space-separated, as in
//! OAuth 2.0). A user's token holds `books:read books:write`, and an admin's also `users:read
//! books:admin`; Login, RefreshToken and IssueClientToken can ask for fewer. Each RPC names
//! the scope it needs ([`require`]); a token without it is refused with PERMISSION_DENIED,
//! reason `INSUFFICIENT_SCOPE`, the needed scope in the ErrorInfo metadata (`required_scope`).

use std::fmt;

use tonic::{Code, Status};

use crate::{error, token::Claims};

/// GetBook, ListBooks.
pub const BOOKS_READ: &str = "books:read";
/// CreateBook, UpdateBook, DeleteBook.
pub const BOOKS_WRITE: &str = "books:write";
/// ListBooks with `owner_id` (another owner's books).
pub const BOOKS_ADMIN: &str = "books:admin";
/// UserService/ListUsers.
pub const USERS_READ: &str = "users:read";
/// RevocationService/WatchRevocations (service clients only).
pub const REVOCATIONS_WATCH: &str = "revocations:watch";

/// Every scope there is, in the order tokens list them.
pub const ALL: &[&str] = &[
    BOOKS_READ,
    BOOKS_WRITE,
    BOOKS_ADMIN,
    USERS_READ,
    REVOCATIONS_WATCH,
];

impl Claims {
    /// The scopes this token holds: its `scope` claim, or for a token made before scopes
    /// existed (no claim) what its user's token would hold now.
    pub fn scopes(&self) -> Scopes {
        if self.scope.is_empty() && self.client_id.is_none() {
            return Scopes::for_user(self.admin);
        }
        Scopes::parse_lenient(&self.scope)
    }
}

/// A set of known scopes, listed in [`ALL`]'s order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// What a user's token holds by default: books:read books:write, plus users:read
    /// books:admin for an admin.
    pub fn for_user(admin: bool) -> Scopes {
        let mut scopes = Scopes::default().with(BOOKS_READ).with(BOOKS_WRITE);
        if admin {
            scopes = scopes.with(USERS_READ).with(BOOKS_ADMIN);
        }
        scopes
    }

    /// The scopes named in `names`; the first unknown name is the error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        let mut scopes = Scopes::default();
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            if !ALL.contains(&name) {
                return Err(name.to_string());
            }
            scopes = scopes.with(name);
        }
        Ok(scopes)
    }

    /// The known scopes of a `scope` claim (unknown ones are ignored: a newer issuer may add
    /// scopes this verifier does not know, which grant nothing here).
    pub fn parse_lenient(claim: &str) -> Scopes {
        claim
            .split_whitespace()
            .filter(|name| ALL.contains(name))
            .fold(Scopes::default(), Scopes::with)
    }

    /// These scopes and `name` (one of [`ALL`]).
    pub fn with(self, name: &str) -> Scopes {
        match ALL.iter().position(|s| *s == name) {
            Some(bit) => Scopes(self.0 | 1 << bit),
            None => self,
        }
    }

    /// Whether `name` is among these.
    pub fn has(self, name: &str) -> bool {
        ALL.iter()
            .position(|s| *s == name)
            .is_some_and(|bit| self.0 & 1 << bit != 0)
    }

    /// Whether every scope of `other` is among these.
    pub fn covers(self, other: Scopes) -> bool {
        other.0 & !self.0 == 0
    }

    /// Whether there is none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `requested` when it is not empty and within these, these when it is empty; the error
    /// names the first requested scope that is unknown or not held.
    pub fn narrow<'a>(
        self,
        requested: impl IntoIterator<Item = &'a str>,
    ) -> Result<Scopes, String> {
        let requested: Vec<&str> = requested.into_iter().collect();
        let wanted = Scopes::parse(requested.iter().copied())
            .map_err(|name| format!("unknown scope {name:?}"))?;
        if wanted.is_empty() {
            return Ok(self);
        }
        match ALL.iter().find(|s| wanted.has(s) && !self.has(s)) {
            Some(name) => Err(format!("{name} is not granted to this account")),
            None => Ok(wanted),
        }
    }
}

impl fmt::Display for Scopes {
    /// Space-separated, as the `scope` claim carries them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = ALL.iter().copied().filter(|s| self.has(s)).collect();
        f.write_str(&names.join(" "))
    }
}

/// PERMISSION_DENIED, reason `INSUFFICIENT_SCOPE`, naming `scope` in the message and in the
/// ErrorInfo metadata (`required_scope`).
pub fn insufficient(domain: &str, scope: &str) -> Status {
    error::status_with_metadata(
        Code::PermissionDenied,
        domain,
        "INSUFFICIENT_SCOPE",
        format!("this token lacks the {scope} scope; ask for a token with it"),
        &[("required_scope", scope)],
    )
}

/// Ok when `claims` hold `scope`, else [`insufficient`].
pub fn require(claims: &Claims, domain: &str, scope: &str) -> Result<(), Status> {
    if claims.scopes().has(scope) {
        Ok(())
    } else {
        Err(insufficient(domain, scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_hold_books_scopes_and_admins_also_users_read_and_books_admin() {
        assert_eq!(
            Scopes::for_user(false).to_string(),
            "books:read books:write"
        );
        assert_eq!(
            Scopes::for_user(true).to_string(),
            "books:read books:write books:admin users:read"
        );
    }

    #[test]
    fn a_narrower_request_is_granted_and_a_wider_or_unknown_one_is_refused() {
        let user = Scopes::for_user(false);
        assert_eq!(
            user.narrow(["books:read"]).map(|s| s.to_string()),
            Ok("books:read".into())
        );
        assert_eq!(user.narrow([]), Ok(user));
        assert!(user.narrow(["users:read"]).is_err());
        assert!(user.narrow(["books:everything"]).is_err());
        assert!(Scopes::parse_lenient("books:read future:scope").has(BOOKS_READ));
    }
}
