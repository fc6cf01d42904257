//! The work behind every auth-service RPC: accounts, logins, refresh-token rotation. Handlers in
//! [`crate::service`] validate and convert; this module decides.

use std::sync::Arc;

use bookstore_contract::token::LEEWAY_SECONDS;
use tokio::sync::Notify;

use bookstore_contract::{error::Violations, scope::Scopes};
use bookstore_kit::{
    clock::Clock,
    paging::{Cursor, PageRequest, PageTokens},
};

use crate::{
    caller::ClientAddr,
    counter::{Limits, Scope},
    db::{Db, Ending, Revoking, Rotation, SessionStart, UserRow},
    error::{Error, Result},
    keys::KeyRing,
    password::{self, Hasher},
    throttle::{self, Finished},
    tokens::{self, Issuer, TokenPair},
};

/// The throttle key of work done from this machine (the admin subcommands).
const LOCAL: &str = "local";

/// Shortest username.
pub const MIN_USERNAME_CHARS: usize = 3;
/// Longest username.
pub const MAX_USERNAME_CHARS: usize = 32;

/// Usernames are compared case-insensitively: every name is folded to lower case on the way in.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_lowercase()
}

/// Whether `username` (normalized) could name an account: Login refuses other names at once,
/// without a password check or a throttle row (an over-long name must not be stored).
pub fn could_exist(username: &str) -> bool {
    username.chars().count() <= MAX_USERNAME_CHARS && username.chars().all(allowed_char)
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)
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
        if !name.chars().all(allowed_char) {
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
    /// Throttle limits.
    pub limits: Limits,
    /// Wakes password checks waiting for room in a throttle layer.
    pub finished: Finished,
    /// Woken when this process commits a revocation, so revocation streams send it at once.
    pub revoked: Arc<Notify>,
    /// `bookstore_logins_total{result}`.
    pub logins: prometheus::IntCounterVec,
}

impl Accounts {
    /// Registers a user for `client`: counted against the client's hourly Register limit
    /// first, then a taken name is answered at once, before any hashing. `username` is
    /// normalized and valid, `password` passes the policy.
    pub async fn register(
        &self,
        username: String,
        password: String,
        client: &ClientAddr,
    ) -> Result<UserRow> {
        let now = self.clock.unix_seconds();
        // Every Register call counts, whatever its outcome.
        throttle::count(
            &self.db,
            (Scope::Register, client.throttle_key()),
            &self.limits,
            now,
        )
        .await
        .map_err(|e| match e {
            Error::Throttled(after) => {
                tracing::warn!(event = "register_throttled", %client, "register limit reached");
                Error::RegisterLimited(after)
            }
            other => other,
        })?;
        self.create(username, password, false, &client.throttle_key())
            .await
    }

    /// Creates an admin from this machine (the `admin create` subcommand): no Register limit.
    pub async fn create_admin(&self, username: String, password: String) -> Result<UserRow> {
        self.create(username, password, true, LOCAL).await
    }

    async fn create(
        &self,
        username: String,
        password: String,
        admin: bool,
        client_key: &str,
    ) -> Result<UserRow> {
        if self.db.user_by_name(&username).await?.is_some() {
            return Err(Error::UsernameTaken);
        }
        let user = UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            username,
            password_hash: self.hasher.hash(client_key, password).await?,
            admin,
            create_time: self.clock.unix_seconds(),
            disabled: false,
            tokens_not_before: 0,
            session_epoch: 0,
        };
        // Two racing registrations of one name both pass the check above; the UNIQUE
        // constraint lets exactly one insert.
        self.db.insert_user(&user).await?;
        Ok(user)
    }

    /// Checks `password` against `username`'s (or the dummy hash for an unknown name) in
    /// `client`'s turn, after reserving the attempt with every throttle layer.
    async fn check_password(
        &self,
        username: &str,
        stored: Option<String>,
        password: String,
        client: &ClientAddr,
    ) -> Result<bool> {
        let known = stored.is_some();
        let key = client.throttle_key();
        let verify = self.hasher.verify(&key, password, stored);
        let matches = self.check_throttled(username, client, verify).await?;
        if !matches {
            tracing::warn!(event = "login_failed", username, known_user = known, %client, "wrong password");
        }
        Ok(matches)
    }

    /// Runs `verify` (a password or client-secret check) for the account `subject` from
    /// `client`, after reserving the attempt with every throttle layer (Login's), and records
    /// its outcome there.
    pub(crate) async fn check_throttled(
        &self,
        subject: &str,
        client: &ClientAddr,
        verify: impl std::future::Future<Output = Result<bool>>,
    ) -> Result<bool> {
        let keys = throttle::password_keys(subject, client);
        let admitted = throttle::admit(&self.db, keys, &self.limits, &self.clock, &self.finished);
        let admission = match admitted.await {
            Err(e @ Error::Throttled(_)) => {
                tracing::warn!(event = "login_throttled", username = subject, %client, "attempt refused by the throttle");
                return Err(e);
            }
            other => other?,
        };
        let checked = verify.await;
        // A check that failed to run (an internal error) counts as a failure: it was admitted.
        let matches = *checked.as_ref().unwrap_or(&false);
        admission
            .finish(
                &self.db,
                !matches,
                &self.limits,
                &self.clock,
                &self.finished,
            )
            .await?;
        checked?;
        Ok(matches)
    }

    /// Checks the password of `username` (normalized) from `client`, subject to throttling,
    /// and starts a refresh-token family.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        scopes: &[String],
        client: &ClientAddr,
    ) -> Result<(UserRow, TokenPair)> {
        let result = self.login_checked(username, password, scopes, client).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(Error::Throttled(_)) => "throttled",
            Err(_) => "failure",
        };
        self.logins.with_label_values(&[outcome]).inc();
        result
    }

    async fn login_checked(
        &self,
        username: &str,
        password: String,
        scopes: &[String],
        client: &ClientAddr,
    ) -> Result<(UserRow, TokenPair)> {
        if !could_exist(username) || username.is_empty() {
            return Err(Error::BadCredentials);
        }
        let now = self.clock.unix_seconds();
        let user = self.db.user_by_name(username).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        if !self
            .check_password(username, stored, password, client)
            .await?
        {
            return Err(Error::BadCredentials);
        }
        let user = user.ok_or(Error::BadCredentials)?;
        if user.disabled {
            tracing::warn!(event = "login_disabled", username, %client, "right password for a disabled account");
            return Err(Error::AccountDisabled);
        }
        // After the password: whether an account is an admin is not told to a guesser.
        let scopes = narrow(Scopes::for_user(user.admin), scopes)?;
        let (refresh_token, hash) = tokens::new_refresh_token();
        let expire_time = now + self.refresh_ttl;
        let family = uuid::Uuid::new_v4().to_string();
        // The session starts only if nothing ended the user's sessions since `user` was read:
        // the password just checked may have been changed meanwhile. The access token's `iat`
        // is `now`, taken before that read, so a ChangePassword or disable that locks the row
        // after this insert revokes it too.
        match self
            .db
            .start_session(&hash, &family, &user, expire_time)
            .await?
        {
            SessionStart::Started => {}
            SessionStart::Disabled => return Err(Error::AccountDisabled),
            SessionStart::Superseded => {
                tracing::warn!(event = "login_superseded", username, %client, "the password was changed or the account disabled during this login");
                return Err(Error::BadCredentials);
            }
        }
        let pair = self.pair(&user, &family, scopes, refresh_token, expire_time, now);
        Ok((user, pair))
    }

    /// Spends `refresh_token` and issues its successor with a fresh access token. A spent
    /// token revokes its family.
    /// Spends `refresh_token` and issues its successor with a fresh access token. A spent
    /// token revokes its family. A token that does not exist counts as a failure against the
    /// client address (the Login throttle's address layer), which refuses more once locked.
    /// With `scopes`, the access token holds only those (checked against the account before
    /// the token is spent, so a refused request keeps its refresh token).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        scopes: &[String],
        client: &ClientAddr,
    ) -> Result<(UserRow, TokenPair)> {
        let revoking = self.revoking();
        let now = revoking.now;
        throttle::check_address(&self.db, client, now).await?;
        let (next, next_hash) = tokens::new_refresh_token();
        let old_hash = tokens::hash_refresh_token(refresh_token);
        if !scopes.is_empty() {
            if let Some(owner) = self.db.refresh_token_owner(&old_hash).await? {
                narrow(Scopes::for_user(owner.admin), scopes)?;
            }
        }
        match self
            .db
            .rotate_refresh_token(&old_hash, &next_hash, revoking)
            .await?
        {
            Rotation::Rotated {
                user,
                family_id,
                expire_time,
            } => {
                // `now` was taken before the rotation locked the user: a revocation that
                // locks it after us covers this access token's `iat`. (Demoted meanwhile: the
                // scopes asked for that the account still holds.)
                let granted = Scopes::for_user(user.admin);
                let scopes = narrow(granted, scopes).unwrap_or(granted);
                let pair = self.pair(&user, &family_id, scopes, next, expire_time, now);
                Ok((user, pair))
            }
            Rotation::Reused { user_id } => {
                self.revoked.notify_waiters();
                tracing::warn!(event = "refresh_reuse", user_id, %client, "spent refresh token presented again: family revoked");
                Err(Error::BadRefreshToken)
            }
            Rotation::Unknown => {
                self.token_failure(client, now).await?;
                Err(Error::BadRefreshToken)
            }
            Rotation::Invalid => Err(Error::BadRefreshToken),
        }
    }

    /// Ends the session of `refresh_token`. A token whose session already ended is fine and
    /// changes nothing; one that does not exist also answers OK (Logout reveals nothing) but
    /// counts as a failure against the client address, like a junk RefreshToken.
    pub async fn logout(&self, refresh_token: &str, client: &ClientAddr) -> Result<()> {
        let revoking = self.revoking();
        throttle::check_address(&self.db, client, revoking.now).await?;
        let hash = tokens::hash_refresh_token(refresh_token);
        match self.db.end_session(&hash, revoking).await? {
            Ending::Ended => self.revoked.notify_waiters(),
            Ending::AlreadyEnded => {}
            Ending::Unknown => self.token_failure(client, revoking.now).await?,
        }
        Ok(())
    }

    /// Counts a refresh token that does not exist against `client`'s address.
    async fn token_failure(&self, client: &ClientAddr, now: i64) -> Result<()> {
        tracing::warn!(event = "refresh_token_unknown", %client, "a refresh token that does not exist was presented");
        throttle::address_failure(&self.db, client, &self.limits, now).await
    }

    /// Disables (or enables) `username` (normalized): a disabled user cannot log in or
    /// refresh, and every token they hold is revoked. False when there is no such user.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<bool> {
        let Some(user_id) = self
            .db
            .set_disabled(username, disabled, || self.revoking())
            .await?
        else {
            return Ok(false);
        };
        self.revoked.notify_waiters();
        let event = if disabled {
            "user_disabled"
        } else {
            "user_enabled"
        };
        tracing::warn!(event, username, user_id, "account {event}");
        Ok(true)
    }

    /// Deletes refresh tokens that can no longer be used (their family expired or was revoked)
    /// and throttle counters that are unlocked and idle for longer than any window. Returns
    /// how many of each were deleted.
    pub async fn purge(&self) -> Result<(u64, u64)> {
        let (tokens, counters) = self
            .db
            .purge(self.clock.unix_seconds(), Scope::MAX_WINDOW_SECONDS)
            .await?;
        tracing::debug!(tokens, counters, "purged expired rows");
        Ok((tokens, counters))
    }

    /// The user `user_id` (from a verified token).
    pub async fn user(&self, user_id: &str) -> Result<UserRow> {
        self.db
            .user_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)
    }

    /// Replaces the password after checking the current one (throttled like Login, on the
    /// same counters); revokes every refresh token.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: String,
        new: String,
        client: &ClientAddr,
    ) -> Result<()> {
        let user = self.user(user_id).await?;
        if !self
            .check_password(&user.username, Some(user.password_hash), current, client)
            .await?
        {
            return Err(Error::WrongCurrentPassword);
        }
        let hash = self.hasher.hash(&client.throttle_key(), new).await?;
        self.db
            .change_password(user_id, &hash, || self.revoking())
            .await?;
        self.revoked.notify_waiters();
        tracing::info!(event = "password_changed", user_id, %client, "password changed; sessions ended");
        Ok(())
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

    /// When a revocation made now stops mattering: every access token issued up to now has
    /// expired by then.
    fn revoking(&self) -> Revoking {
        let now = self.clock.unix_seconds();
        Revoking {
            now,
            expire_time: now + self.issuer.access_ttl + LEEWAY_SECONDS + 1,
        }
    }

    fn pair(
        &self,
        user: &UserRow,
        sid: &str,
        scopes: Scopes,
        refresh_token: String,
        refresh_expire: i64,
        now: i64,
    ) -> TokenPair {
        let (access_token, expires_in) =
            self.issuer.access_token(user, sid, scopes, &self.keys, now);
        TokenPair {
            access_token,
            expires_in,
            refresh_token,
            refresh_expires_in: refresh_expire - now,
            scopes,
        }
    }

    /// When a revocation made now stops mattering (for the service-client module).
    pub(crate) fn revoking_now(&self) -> Revoking {
        self.revoking()
    }
}

/// `requested` scopes within `granted` (all of `granted` when none is requested), or
/// INVALID_ARGUMENT on `scopes` naming the first that is unknown or not granted.
pub fn narrow(granted: Scopes, requested: &[String]) -> Result<Scopes> {
    granted
        .narrow(requested.iter().map(String::as_str))
        .map_err(|problem| {
            let mut violations = Violations::default();
            violations.add("scopes", problem);
            Error::Invalid(violations)
        })
}
