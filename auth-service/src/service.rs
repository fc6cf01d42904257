//! Thin gRPC handlers: validate the request (every field violation at once), call one
//! [`Accounts`] method, convert the result. No business rule lives here.

use bookstore_contract::{
    error::{self, Violations},
    proto::auth::{
        auth_service_server::AuthService, revocation_service_server::RevocationService,
        user_service_server::UserService, ChangePasswordRequest, ChangePasswordResponse,
        GetCurrentUserRequest, GetCurrentUserResponse, GetJwksRequest, GetJwksResponse,
        IssueClientTokenRequest, IssueClientTokenResponse, ListUsersRequest, ListUsersResponse,
        LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, RefreshTokenRequest,
        RefreshTokenResponse, RegisterRequest, RegisterResponse, User, WatchRevocationsRequest,
        WatchRevocationsResponse,
    },
    scope,
};
use bookstore_kit::{
    auth::{claims, Authenticator},
    clock::timestamp_from_seconds,
    Stopping,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

use crate::{
    accounts::{check_new_account, normalize_username, Accounts},
    caller::TrustedProxies,
    db::UserRow,
    error::{Error, DOMAIN},
    revocation_feed::Feed,
    tokens::TokenPair,
};

/// `token_type` of every token response.
const TOKEN_TYPE: &str = "Bearer";

/// Implements AuthService and UserService over one [`Accounts`] (RevocationService is
/// [`crate::revocation_feed`]'s).
#[derive(Debug, Clone)]
pub struct Handlers {
    /// The work.
    pub accounts: Accounts,
    /// Whose `x-forwarded-for` names the client (`--trusted-proxies`).
    pub proxies: TrustedProxies,
    /// The process's one reader of revocations, which every stream is served from.
    pub feed: Feed,
    /// Verifies the bearer token of a WatchRevocations call (the UserService interceptor's).
    pub authenticator: Authenticator,
    /// Fires at shutdown: revocation streams end so the drain need not wait for them.
    pub stopping: Stopping,
}

#[tonic::async_trait]
impl RevocationService for Handlers {
    type WatchRevocationsStream = ReceiverStream<Result<WatchRevocationsResponse, Status>>;

    async fn watch_revocations(
        &self,
        request: Request<WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        self.watcher_credential(&request)?;
        let client = self.proxies.client(&request);
        let after = request.into_inner().after.max(0);
        let stream = self.feed.watch(&client, after, self.stopping.clone())?;
        Ok(Response::new(stream))
    }
}

impl Handlers {
    /// Ok when a WatchRevocations caller proved who it is: a client certificate accepted by
    /// `--tls-client-ca` (the TLS handshake already checked it), or a bearer token with the
    /// `revocations:watch` scope.
    fn watcher_credential<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if request.peer_certs().is_some_and(|certs| !certs.is_empty()) {
            return Ok(());
        }
        if request.metadata().get("authorization").is_none() {
            return Err(error::status(
                Code::Unauthenticated,
                DOMAIN,
                "CREDENTIAL_REQUIRED",
                "WatchRevocations needs a bearer token with the revocations:watch scope (IssueClientToken) or a client certificate",
            ));
        }
        let claims = self.authenticator.authenticate(request.metadata())?;
        scope::require(&claims, DOMAIN, scope::REVOCATIONS_WATCH)
    }
}

fn user(row: &UserRow) -> User {
    User {
        id: row.id.clone(),
        username: row.username.clone(),
        admin: row.admin,
        create_time: Some(timestamp_from_seconds(row.create_time)),
    }
}

#[tonic::async_trait]
impl AuthService for Handlers {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let client = self.proxies.client(&request);
        let RegisterRequest { username, password } = request.into_inner();
        let username = normalize_username(&username);
        let mut violations = Violations::default();
        check_new_account(
            &mut violations,
            Some(("username", &username)),
            ("password", &password),
        );
        violations.check(DOMAIN)?;
        let row = self.accounts.register(username, password, &client).await?;
        Ok(Response::new(RegisterResponse {
            user: Some(user(&row)),
        }))
    }

    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        let client = self.proxies.client(&request);
        // No field validation: an empty or malformed name or password is just a wrong one
        // (UNAUTHENTICATED, counted by the throttle), so Login answers only the codes of the
        // contract and reveals nothing about the rules.
        let LoginRequest {
            username,
            password,
            scopes,
        } = request.into_inner();
        let (row, pair) = self
            .accounts
            .login(&normalize_username(&username), password, &scopes, &client)
            .await?;
        let TokenPair {
            access_token,
            expires_in,
            refresh_token,
            refresh_expires_in,
            scopes,
        } = pair;
        Ok(Response::new(LoginResponse {
            access_token,
            token_type: TOKEN_TYPE.into(),
            expires_in,
            refresh_token,
            refresh_expires_in,
            user: Some(user(&row)),
            scope: scopes.to_string(),
        }))
    }

    async fn refresh_token(
        &self,
        request: Request<RefreshTokenRequest>,
    ) -> Result<Response<RefreshTokenResponse>, Status> {
        let client = self.proxies.client(&request);
        let RefreshTokenRequest {
            refresh_token: token,
            scopes,
        } = request.into_inner();
        if token.is_empty() {
            return Err(Error::BadRefreshToken.into());
        }
        let (row, pair) = self.accounts.refresh(&token, &scopes, &client).await?;
        let TokenPair {
            access_token,
            expires_in,
            refresh_token,
            refresh_expires_in,
            scopes,
        } = pair;
        Ok(Response::new(RefreshTokenResponse {
            access_token,
            token_type: TOKEN_TYPE.into(),
            expires_in,
            refresh_token,
            refresh_expires_in,
            user: Some(user(&row)),
            scope: scopes.to_string(),
        }))
    }

    async fn issue_client_token(
        &self,
        request: Request<IssueClientTokenRequest>,
    ) -> Result<Response<IssueClientTokenResponse>, Status> {
        let client = self.proxies.client(&request);
        let IssueClientTokenRequest {
            client_id,
            client_secret,
            scopes,
        } = request.into_inner();
        let (access_token, expires_in, scopes) = self
            .accounts
            .issue_client_token(client_id.trim(), client_secret, &scopes, &client)
            .await?;
        Ok(Response::new(IssueClientTokenResponse {
            access_token,
            token_type: TOKEN_TYPE.into(),
            expires_in,
            scope: scopes.to_string(),
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        let client = self.proxies.client(&request);
        let token = request.into_inner().refresh_token;
        if !token.is_empty() {
            self.accounts.logout(&token, &client).await?;
        }
        Ok(Response::new(LogoutResponse {}))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        Ok(Response::new(GetJwksResponse {
            keys: self.accounts.keys.jwks(),
        }))
    }
}

#[tonic::async_trait]
impl UserService for Handlers {
    async fn get_current_user(
        &self,
        request: Request<GetCurrentUserRequest>,
    ) -> Result<Response<GetCurrentUserResponse>, Status> {
        let caller = claims(&request, DOMAIN)?;
        let row = self.accounts.user(&caller.sub).await?;
        Ok(Response::new(GetCurrentUserResponse {
            user: Some(user(&row)),
        }))
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        let caller = claims(&request, DOMAIN)?;
        let client = self.proxies.client(&request);
        let ChangePasswordRequest {
            current_password,
            new_password,
        } = request.into_inner();
        let mut violations = Violations::default();
        if current_password.is_empty() {
            violations.add("current_password", "is required");
        }
        check_new_account(&mut violations, None, ("new_password", &new_password));
        violations.check(DOMAIN)?;
        self.accounts
            .change_password(&caller.sub, current_password, new_password, &client)
            .await?;
        Ok(Response::new(ChangePasswordResponse {}))
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        let caller = claims(&request, DOMAIN)?;
        scope::require(&caller, DOMAIN, scope::USERS_READ)?;
        let ListUsersRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let mut violations = Violations::default();
        // ListUsers has no filters: every token belongs to the one list of all users.
        let page = self.accounts.page_tokens.request(
            page_size,
            &page_token,
            String::new(),
            &mut violations,
        );
        violations.check(DOMAIN)?;
        let (rows, next_page_token) = self.accounts.list_users(&page).await?;
        Ok(Response::new(ListUsersResponse {
            users: rows.iter().map(user).collect(),
            next_page_token,
        }))
    }
}
