//! The work behind every auth-service RPC: accounts, logins, refresh-token rotation. Handlers in
//! [`crate::service`] validate and convert; this module decides.

use std::{net::IpAddr, sync::Arc};

use bookstore_contract::error::Violations;
use bookstore_kit::{
    clock::Clock,
    paging::{Cursor, PageRequest, PageTokens},
};

use crate::{
    db::{Db, Rotation, UserRow},
    error::{Error, Result},
    keys::KeyRing,
    password::{self, Hasher},
    throttle,
    tokens::{self, Issuer, TokenPair},
};

/// Shortest username.
pub const MIN_USERNAME_CHARS: usize = 3;
/// Longest username.
pub const MAX_USERNAME_CHARS: usize = 32;

/// Usernames are compared case-insensitively: every name is folded to lower case on the way in.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_lowercase()
}

/// Records every rule `username` (normalized) and `password` break, under the given field names.
pub fn check_new_account(
    violations: &mut Violations,
    username: Option<(&str, &str)>,
    password: (&str, &str),
) {
    if let Some((field, name)) = username {
        let len = name.chars().count();
        if !(MIN_USERNAME_CHARS..=MAX_USERNAME_CHARS).contains(&len) {
            violations.add(
                field,
                format!("must be {MIN_USERNAME_CHARS}-{MAX_USERNAME_CHARS} characters"),
            );
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
        {
            violations.add(
                field,
                "may contain only letters a-z, digits, '_', '.' and '-'",
            );
        }
    }
    let (field, password) = password;
    if let Some(problem) = password::policy_violation(password) {
        violations.add(field, problem);
    }
}

/// Everything the RPCs share: storage, keys, hashing, token settings, time.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// The database.
    pub db: Db,
    /// Signing and published keys.
    pub keys: Arc<KeyRing>,
    /// Password hashing (bounded blocking work).
    pub hasher: Hasher,
    /// Access-token settings.
    pub issuer: Issuer,
    /// Refresh-token family lifetime in seconds.
    pub refresh_ttl: i64,
    /// "Now".
    pub clock: Clock,
    /// ListUsers page tokens.
    pub page_tokens: PageTokens,
}

impl Accounts {
    /// Creates a user. `username` is normalized and valid, `password` passes the policy.
    pub async fn register(
        &self,
        username: String,
        password: String,
        admin: bool,
    ) -> Result<UserRow> {
        let user = UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            username,
            password_hash: self.hasher.hash(password).await?,
            admin,
            create_time: self.clock.unix_seconds(),
        };
        self.db.insert_user(&user).await?;
        Ok(user)
    }

    /// Checks the password of `username` (normalized) from `peer`, subject to throttling, and
    /// starts a refresh-token family.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        peer: Option<IpAddr>,
    ) -> Result<(UserRow, TokenPair)> {
        let now = self.clock.unix_seconds();
        throttle::check(&self.db, username, peer, now).await?;
        let user = self.db.user_by_name(username).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        if !self.hasher.verify(password, stored).await? {
            throttle::record_failure(&self.db, username, peer, now).await?;
            return Err(Error::BadCredentials);
        }
        let user = user.ok_or(Error::BadCredentials)?;
        throttle::record_success(&self.db, username, peer).await?;
        let (refresh_token, hash) = tokens::new_refresh_token();
        let expire_time = now + self.refresh_ttl;
        let family = uuid::Uuid::new_v4().to_string();
        self.db
            .insert_refresh_token(&hash, &family, &user.id, expire_time)
            .await?;
        let pair = self.pair(&user, refresh_token, expire_time, now);
        Ok((user, pair))
    }

    /// Spends `refresh_token` and issues its successor with a fresh access token. A spent
    /// token revokes its family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<(UserRow, TokenPair)> {
        let now = self.clock.unix_seconds();
        let (next, next_hash) = tokens::new_refresh_token();
        let old_hash = tokens::hash_refresh_token(refresh_token);
        match self
            .db
            .rotate_refresh_token(&old_hash, &next_hash, now)
            .await?
        {
            Rotation::Rotated {
                user_id,
                expire_time,
            } => {
                let user = self
                    .db
                    .user_by_id(&user_id)
                    .await?
                    .ok_or(Error::BadRefreshToken)?;
                let pair = self.pair(&user, next, expire_time, now);
                Ok((user, pair))
            }
            Rotation::Reused => {
                tracing::warn!("spent refresh token presented again: family revoked");
                Err(Error::BadRefreshToken)
            }
            Rotation::Invalid => Err(Error::BadRefreshToken),
        }
    }

    /// Revokes the family of `refresh_token`; unknown tokens are fine.
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        self.db
            .revoke_family(&tokens::hash_refresh_token(refresh_token))
            .await
    }

    /// The user `user_id` (from a verified token).
    pub async fn user(&self, user_id: &str) -> Result<UserRow> {
        self.db
            .user_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)
    }

    /// Replaces the password after checking the current one; revokes every refresh token.
    pub async fn change_password(&self, user_id: &str, current: String, new: String) -> Result<()> {
        let user = self.user(user_id).await?;
        if !self
            .hasher
            .verify(current, Some(user.password_hash))
            .await?
        {
            return Err(Error::WrongCurrentPassword);
        }
        let hash = self.hasher.hash(new).await?;
        self.db.change_password(user_id, &hash).await
    }

    /// The page of users `page` asks for, oldest first, and the next page's token (empty on
    /// the last page).
    pub async fn list_users(&self, page: &PageRequest) -> Result<(Vec<UserRow>, String)> {
        let users = self
            .db
            .list_users(page.after.as_ref(), page.size + 1)
            .await?;
        Ok(self.page_tokens.page(page, users, |u| Cursor {
            create_time: u.create_time,
            id: u.id.clone(),
        }))
    }

    fn pair(
        &self,
        user: &UserRow,
        refresh_token: String,
        refresh_expire: i64,
        now: i64,
    ) -> TokenPair {
        let (access_token, expires_in) = self.issuer.access_token(user, &self.keys, now);
        TokenPair {
            access_token,
            expires_in,
            refresh_token,
            refresh_expires_in: refresh_expire - now,
        }
    }
}
