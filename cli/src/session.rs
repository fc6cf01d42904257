//! The logged-in session: tokens kept in a 0600 file under `$XDG_CONFIG_HOME/bookstore/`
//! (or `~/.config/bookstore/`), and an access token that refreshes itself when it expires.

use std::{fs, io::Write, path::PathBuf};

use anyhow::{bail, Context};
use bookstore_contract::proto::auth::RefreshTokenRequest;

/// Unix seconds now: the unit of `expires_in`.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
use serde::{Deserialize, Serialize};

use crate::client::{self, Urls};

/// Refresh this many seconds before the access token's expiry.
const EXPIRY_MARGIN: i64 = 30;

/// What `login` stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Who is logged in.
    pub username: String,
    /// Bearer token for book-service and UserService.
    pub access_token: String,
    /// When it expires (Unix seconds).
    pub access_expires_at: i64,
    /// Spent and replaced on every refresh.
    pub refresh_token: String,
}

/// `$XDG_CONFIG_HOME/bookstore/session.json`, else `~/.config/bookstore/session.json`.
pub fn path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?,
        )
        .join(".config"),
    };
    Ok(base.join("bookstore").join("session.json"))
}

/// The stored session, if logged in.
pub fn load() -> anyhow::Result<Option<Session>> {
    let path = path()?;
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is damaged; run `bookstore login`", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Stores `session` readable by the owner only (written to a temporary file, then renamed, so
/// a crash never leaves half a file).
pub fn save(session: &Session) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let path = path()?;
    let dir = path.parent().context("session path has a parent")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // The directory is ours alone, also when it existed before with looser permissions.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))?;
    // A fresh file with a random name, created with O_EXCL and mode 0600 (so never through a
    // symlink planted in its place), then renamed over the session: a rename replaces a
    // symlink at `path` itself rather than writing where it points.
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    file.write_all(&serde_json::to_vec_pretty(session)?)?;
    file.as_file().sync_all()?;
    file.persist(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Forgets the session (nothing to do when logged out).
pub fn delete() -> anyhow::Result<()> {
    match fs::remove_file(path()?) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// The stored session, or an error that says how to log in.
pub fn require() -> anyhow::Result<Session> {
    match load()? {
        Some(session) => Ok(session),
        None => bail!("not logged in: run `bookstore login NAME` first"),
    }
}

/// A valid access token: the stored one, or a fresh one from RefreshToken when it has expired
/// (the new tokens are stored). Commands run at the same moment share one session file, and a
/// refresh token can be spent once: so the refresh happens under an exclusive lock on
/// `session.lock` beside the file, and a command that waited for the lock first rereads the
/// session, finds the token another command just refreshed, and uses it. Without the lock the
/// second command would present the spent token, and reuse detection would end the session.
///
/// With BOOKSTORE_CLIENT_ID and BOOKSTORE_CLIENT_SECRET set, the command acts as that service
/// client instead: a token from IssueClientToken, no session involved.
pub async fn access_token(urls: &Urls) -> anyhow::Result<String> {
    if let Some((id, secret)) = client_from_env() {
        return client_token(urls, id, secret, Vec::new()).await;
    }
    let session = require()?;
    if fresh(&session) {
        return Ok(session.access_token);
    }
    let lock = tokio::task::spawn_blocking(lock).await??;
    let mut session = require()?;
    if fresh(&session) {
        return Ok(session.access_token);
    }
    let refreshed = refresh(urls, &session, Vec::new()).await?;
    session.access_token = refreshed.access_token;
    session.access_expires_at = unix_now() + refreshed.expires_in;
    session.refresh_token = refreshed.refresh_token;
    save(&session)?;
    drop(lock);
    Ok(session.access_token)
}

/// An access token holding only `scopes` (all when empty): the service client's from the
/// environment, or the logged-in user's from a RefreshToken with `scopes` (the session's new
/// refresh token is stored; its stored access token is left as it was).
pub async fn narrowed_token(urls: &Urls, scopes: Vec<String>) -> anyhow::Result<String> {
    if let Some((id, secret)) = client_from_env() {
        return client_token(urls, id, secret, scopes).await;
    }
    require()?;
    let lock = tokio::task::spawn_blocking(lock).await??;
    let mut session = require()?;
    let refreshed = refresh(urls, &session, scopes).await?;
    session.refresh_token = refreshed.refresh_token;
    save(&session)?;
    drop(lock);
    Ok(refreshed.access_token)
}

/// Spends `session`'s refresh token for a new pair (holding `scopes`, or all when empty). A
/// refused token ends the stored session with a message that says how to log in again. Call
/// under the session lock.
async fn refresh(
    urls: &Urls,
    session: &Session,
    scopes: Vec<String>,
) -> anyhow::Result<bookstore_contract::proto::auth::RefreshTokenResponse> {
    let refreshed = client::auth(urls)
        .await?
        .refresh_token(RefreshTokenRequest {
            refresh_token: session.refresh_token.clone(),
            scopes,
        })
        .await;
    match refreshed {
        Ok(r) => Ok(r.into_inner()),
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            delete()?;
            bail!(
                "your session has expired: run `bookstore login {}` again",
                session.username
            )
        }
        Err(status) => Err(status.into()),
    }
}

/// BOOKSTORE_CLIENT_ID and BOOKSTORE_CLIENT_SECRET, when both are set.
fn client_from_env() -> Option<(String, String)> {
    let id = std::env::var("BOOKSTORE_CLIENT_ID").ok()?;
    let secret = std::env::var("BOOKSTORE_CLIENT_SECRET").ok()?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// A token for the service client `id` from IssueClientToken.
async fn client_token(
    urls: &Urls,
    id: String,
    secret: String,
    scopes: Vec<String>,
) -> anyhow::Result<String> {
    let issued = client::auth(urls)
        .await?
        .issue_client_token(bookstore_contract::proto::auth::IssueClientTokenRequest {
            client_id: id,
            client_secret: secret,
            scopes,
        })
        .await?;
    Ok(issued.into_inner().access_token)
}

/// Whether `session`'s access token has long enough to live to be used as it is.
fn fresh(session: &Session) -> bool {
    session.access_expires_at - EXPIRY_MARGIN > unix_now()
}

/// Waits for the exclusive lock on `session.lock` (created 0600 beside the session); it is
/// released when the returned file is closed, also if the command dies.
fn lock() -> anyhow::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path()?.with_file_name("session.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}
