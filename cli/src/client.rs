//! Connections to the services.

use std::time::Duration;

use anyhow::Context;
use bookstore_contract::proto::{
    auth::{auth_service_client::AuthServiceClient, user_service_client::UserServiceClient},
    book::book_service_client::BookServiceClient,
};
use tonic::transport::Channel;

async fn channel(url: &str, service: &str) -> anyhow::Result<Channel> {
    bookstore_kit::client::endpoint(url)
        .with_context(|| format!("{url} is not a valid URL"))?
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot reach {service} at {url} (is `bookstore up` running?)"))
}

/// AuthService at `url`.
pub async fn auth(url: &str) -> anyhow::Result<AuthServiceClient<Channel>> {
    Ok(AuthServiceClient::new(channel(url, "auth-service").await?))
}

/// UserService at `url`.
pub async fn users(url: &str) -> anyhow::Result<UserServiceClient<Channel>> {
    Ok(UserServiceClient::new(channel(url, "auth-service").await?))
}

/// BookService at `url`.
pub async fn books(url: &str) -> anyhow::Result<BookServiceClient<Channel>> {
    Ok(BookServiceClient::new(channel(url, "book-service").await?))
}

/// `message` with the bearer token.
pub fn bearer<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .context("stored token is not valid metadata")?,
    );
    Ok(request)
}
