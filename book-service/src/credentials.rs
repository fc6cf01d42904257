//! book-service's own identity towards auth-service: a service client whose token (with
//! `revocations:watch`) opens the revocation stream. The token is fetched with
//! IssueClientToken at start and renewed before it expires; on failure it is asked for again
//! with backoff. With an mTLS client certificate instead, no token is needed.

use std::{path::Path, time::Duration};

use anyhow::Context;
use bookstore_contract::{proto::auth::auth_service_client::AuthServiceClient, scope};
use bookstore_kit::channel::SharedBearer;
use tonic::transport::Channel;

/// Longest wait between two failed attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The client's id (or name) and secret.
#[derive(Clone)]
pub struct ClientCredentials {
    /// `--auth-client-id`.
    pub id: String,
    /// Read from `--auth-client-secret-file`.
    secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// The client `id` with the secret in `secret_file` (its first line).
    pub fn read(id: &str, secret_file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(secret_file).with_context(|| {
            format!(
                "cannot read --auth-client-secret-file {}",
                secret_file.display()
            )
        })?;
        let secret = text.lines().next().unwrap_or_default().trim().to_string();
        anyhow::ensure!(
            !secret.is_empty(),
            "--auth-client-secret-file {} is empty",
            secret_file.display()
        );
        Ok(ClientCredentials {
            id: id.to_string(),
            secret,
        })
    }

    /// Keeps `bearer` holding a valid token for this client, forever: renews it when two
    /// thirds of its lifetime have passed.
    pub async fn keep_fresh(self, channel: Channel, bearer: SharedBearer) {
        let mut auth = AuthServiceClient::new(channel);
        let mut backoff = Duration::from_millis(200);
        loop {
            let request = bookstore_contract::proto::auth::IssueClientTokenRequest {
                client_id: self.id.clone(),
                client_secret: self.secret.clone(),
                scopes: vec![scope::REVOCATIONS_WATCH.to_string()],
            };
            match auth.issue_client_token(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    *bearer.write().unwrap_or_else(|p| p.into_inner()) =
                        Some(response.access_token);
                    backoff = Duration::from_millis(200);
                    let lifetime = u64::try_from(response.expires_in).unwrap_or(60).max(3);
                    tokio::time::sleep(Duration::from_secs(lifetime * 2 / 3)).await;
                }
                Err(status) => {
                    tracing::warn!(client_id = self.id, code = ?status.code(), message = status.message(), "cannot get a token for the revocation stream; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
