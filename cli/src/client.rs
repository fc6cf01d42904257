//! Connections to the services.

use std::time::Duration;

use anyhow::Context;
use bookstore_contract::proto::{
    auth::{auth_service_client::AuthServiceClient, user_service_client::UserServiceClient},
    book::book_service_client::BookServiceClient,
};
use bookstore_kit::{channel::PropagateTrace, config::ClientTls};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

async fn channel(url: &str, tls: &ClientTls, service: &str) -> anyhow::Result<Channel> {
    bookstore_kit::channel::endpoint(url, tls)?
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot reach {service} at {url} (is `bookstore up` running?)"))
}

/// Where the client commands send their calls.
#[derive(Debug)]
pub struct Urls {
    /// auth-service.
    pub auth: String,
    /// book-service.
    pub book: String,
    /// The CA that signs the services' certificates, for `https://` URLs.
    pub tls: ClientTls,
}

/// A channel whose calls carry the command's trace context (when traces are on).
type Traced = InterceptedService<Channel, PropagateTrace>;

/// AuthService of `urls`.
pub async fn auth(urls: &Urls) -> anyhow::Result<AuthServiceClient<Traced>> {
    Ok(AuthServiceClient::with_interceptor(
        channel(&urls.auth, &urls.tls, "auth-service").await?,
        PropagateTrace,
    ))
}

/// UserService of `urls`.
pub async fn users(urls: &Urls) -> anyhow::Result<UserServiceClient<Traced>> {
    Ok(UserServiceClient::with_interceptor(
        channel(&urls.auth, &urls.tls, "auth-service").await?,
        PropagateTrace,
    ))
}

/// BookService of `urls`.
pub async fn books(urls: &Urls) -> anyhow::Result<BookServiceClient<Traced>> {
    Ok(BookServiceClient::with_interceptor(
        channel(&urls.book, &urls.tls, "book-service").await?,
        PropagateTrace,
    ))
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
