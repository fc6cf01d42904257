//! What the `admin` and `keys` subcommands do, as a library: they work on the database directly,
//! beside a running service (which picks changes up: roles at the next login, keys within
//! [`crate::keys::RELOAD_INTERVAL`]). Tests and tooling use the same functions.

use ed25519_dalek::SigningKey;

use crate::{
    accounts::{check_new_account, normalize_username, Accounts},
    config::Config,
    db::{ClientRow, UserRow},
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

    /// Registers a service client holding `scopes` (space-separated); returns it and its
    /// secret (given, or made: shown only now).
    pub async fn create_client(
        &self,
        name: &str,
        scopes: &str,
        secret: Option<String>,
    ) -> Result<(ClientRow, String)> {
        let scopes = crate::clients::parse_scopes(scopes)?;
        self.accounts.create_client(name, scopes, secret).await
    }

    /// Every service client, by name.
    pub async fn list_clients(&self) -> Result<Vec<ClientRow>> {
        self.accounts.list_clients().await
    }

    /// Deletes a service client, revoking its tokens.
    pub async fn delete_client(&self, name: &str) -> Result<()> {
        self.accounts.delete_client(name).await
    }

    /// Gives a service client a new secret; the old one works for `grace` more.
    pub async fn rotate_client_secret(
        &self,
        name: &str,
        grace: std::time::Duration,
        secret: Option<String>,
    ) -> Result<(ClientRow, String)> {
        self.accounts
            .rotate_client_secret(name, grace, secret)
            .await
    }

    /// Makes sure the client `name` exists with `scopes` and that its secret is the one in
    /// `secret_file`. A file holding a secret (a Kubernetes Secret, say) is taken as the
    /// secret: the client is created with it, or given it (the old secret revoked at once)
    /// when it differs. A missing or empty file gets a fresh secret, written 0600. Does
    /// nothing when both already agree. For provisioning (`bookstore up`, the compose files'
    /// and the Kubernetes manifests' `clients ensure`, tests): the secret never goes to stdout.
    pub async fn ensure_client(
        &self,
        name: &str,
        scopes: &str,
        secret_file: &std::path::Path,
    ) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let held = std::fs::read_to_string(secret_file)
            .ok()
            .and_then(|text| text.lines().next().map(|l| l.trim().to_string()))
            .filter(|secret| !secret.is_empty());
        let existing = self.accounts.db.client(name).await?;
        if let (Some(client), Some(held)) = (&existing, &held) {
            if crate::clients::holds_secret(client, held) {
                return Ok(());
            }
        }
        let write = held.is_none();
        let secret = match existing {
            Some(_) => {
                self.rotate_client_secret(name, std::time::Duration::ZERO, held)
                    .await?
                    .1
            }
            None => self.create_client(name, scopes, held).await?.1,
        };
        if write {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(secret_file)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", secret_file.display()))?;
            std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes())?;
        }
        Ok(())
    }

    /// Closes the database.
    pub async fn close(self) {
        self.accounts.db.database().close().await;
    }
}
