//! What the `admin` and `keys` subcommands do, as a library: they work on the database directly,
//! beside a running service (which picks changes up: roles at the next login, keys within
//! [`crate::keys::RELOAD_INTERVAL`]). Tests and tooling use the same functions.

use ed25519_dalek::SigningKey;

use crate::{
    accounts::{check_new_account, normalize_username, Accounts},
    config::Config,
    db::UserRow,
    error::{Error, Result},
    keys, startup,
};
use bookstore_contract::error::Violations;
use bookstore_kit::metrics::Metrics;

/// The normalized `username` if it and `password` pass Register's rules, else every violation
/// (checked before any database is opened, so bad input changes nothing).
pub fn check_new_admin(username: &str, password: &str) -> Result<String> {
    let username = normalize_username(username);
    let mut violations = Violations::default();
    check_new_account(
        &mut violations,
        Some(("username", &username)),
        ("password", password),
    );
    if violations.is_empty() {
        Ok(username)
    } else {
        Err(Error::Invalid(violations))
    }
}

/// The database of one auth-service, opened for administration.
#[derive(Debug)]
pub struct Admin {
    accounts: Accounts,
}

impl Admin {
    /// Opens (migrating, and creating the first signing key if needed) `config`'s database.
    pub async fn open(config: &Config) -> anyhow::Result<Admin> {
        Ok(Admin {
            accounts: startup::accounts(config, &Metrics::new()).await?,
        })
    }

    /// Creates an admin user, after the checks of [`check_new_admin`].
    pub async fn create_admin(&self, username: &str, password: String) -> Result<UserRow> {
        let username = check_new_admin(username, &password)?;
        self.accounts.create_admin(username, password).await
    }

    /// Makes `username` an admin (in their next access token); false when there is no such user.
    pub async fn promote(&self, username: &str) -> Result<bool> {
        self.accounts
            .db
            .promote(&normalize_username(username))
            .await
    }

    /// Disables (`true`) or enables `username`; false when there is no such user. Disabling
    /// revokes every session and access token of the user.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<bool> {
        self.accounts
            .set_disabled(&normalize_username(username), disabled)
            .await
    }

    /// Adds a new active signing key and returns its kid; the old key stays published until
    /// the tokens it signed have expired.
    pub async fn rotate_keys(&self) -> Result<String> {
        keys::rotate(&self.accounts.db, self.accounts.clock.unix_seconds()).await
    }

    /// The active signing key and its kid: the private key, for tests that forge tokens and
    /// for tooling that must sign as the service. Never sent anywhere by the service.
    pub async fn active_signing_key(&self) -> Result<(String, SigningKey)> {
        let rows = self.accounts.db.signing_keys().await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Internal("no signing key in the database".into()))?;
        Ok((row.kid.clone(), keys::signing_key(row)?))
    }

    /// Deletes spent refresh tokens of dead families and idle throttle counters now (a running
    /// service does this every ten minutes); returns how many of each.
    pub async fn purge(&self) -> Result<(u64, u64)> {
        self.accounts.purge().await
    }

    /// Closes the database.
    pub async fn close(self) {
        self.accounts.db.database().close().await;
    }
}
