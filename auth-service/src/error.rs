//! What callers of auth-service can be told, and the one place it becomes a gRPC status.

use std::time::Duration;

use bookstore_contract::{error, error::Violations};
use bookstore_kit::storage;
use tonic::{Code, Status};

/// ErrorInfo domain of every auth-service error.
pub const DOMAIN: &str = "auth-service";

/// The same words for an unknown user and a wrong password, so neither can be told apart.
pub const BAD_CREDENTIALS: &str = "invalid username or password";

/// An auth-service failure, as the caller sees it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks field rules (every violation listed).
    #[error("invalid request")]
    Invalid(Violations),
    /// Unknown user or wrong password.
    #[error("{BAD_CREDENTIALS}")]
    BadCredentials,
    /// ChangePassword with a wrong current password.
    #[error("current password is wrong")]
    WrongCurrentPassword,
    /// Too many failed logins; come back after the delay.
    #[error("too many failed logins")]
    Throttled(Duration),
    /// Too many failures from this client address (refresh tokens that do not exist, on top of
    /// failed logins); come back after the delay.
    #[error("too many failures from this address")]
    AddressThrottled(Duration),
    /// This client address already holds the most WatchRevocations streams allowed.
    #[error("too many revocation streams")]
    TooManyStreams(usize),
    /// Too many Register calls from this address; come back after the delay.
    #[error("too many registrations")]
    RegisterLimited(Duration),
    /// Register with a taken username.
    #[error("username is taken")]
    UsernameTaken,
    /// `clients create` with a taken name.
    #[error("client name is taken")]
    ClientNameTaken,
    /// IssueClientToken with an unknown client or a wrong secret.
    #[error("invalid client id or secret")]
    BadClientCredentials,
    /// No such service client (the `clients` subcommands).
    #[error("no such client")]
    ClientNotFound,
    /// A refresh token that is unknown, spent, revoked or expired.
    #[error("refresh token is invalid or expired")]
    BadRefreshToken,
    /// The user named by a valid token, or by an admin command, does not exist.
    #[error("user not found")]
    UserNotFound,
    /// The right password of a disabled account.
    #[error("account disabled")]
    AccountDisabled,
    /// A database failure: busy becomes UNAVAILABLE, anything else INTERNAL (text logged only).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Any other unexpected failure (logged, never sent).
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::Invalid(v) => v.into_status(DOMAIN),
            Error::BadCredentials => error::status(
                Code::Unauthenticated,
                DOMAIN,
                "INVALID_CREDENTIALS",
                BAD_CREDENTIALS,
            ),
            Error::WrongCurrentPassword => error::status(
                Code::Unauthenticated,
                DOMAIN,
                "INVALID_CREDENTIALS",
                "current_password is wrong",
            ),
            Error::Throttled(after) => error::throttled(
                DOMAIN,
                "LOGIN_THROTTLED",
                "too many failed logins; try again later",
                after,
            ),
            Error::AddressThrottled(after) => error::throttled(
                DOMAIN,
                "ADDRESS_THROTTLED",
                "too many failed attempts from this address; try again later",
                after,
            ),
            Error::TooManyStreams(most) => error::status(
                Code::ResourceExhausted,
                DOMAIN,
                "TOO_MANY_STREAMS",
                format!(
                    "this address already holds {most} WatchRevocations streams, the most allowed"
                ),
            ),
            Error::RegisterLimited(after) => error::throttled(
                DOMAIN,
                "REGISTER_THROTTLED",
                "too many Register calls from this address; try again later",
                after,
            ),
            Error::UsernameTaken => error::status(
                Code::AlreadyExists,
                DOMAIN,
                "USERNAME_TAKEN",
                "username is already taken",
            ),
            Error::BadRefreshToken => error::status(
                Code::Unauthenticated,
                DOMAIN,
                "REFRESH_TOKEN_INVALID",
                "refresh token is invalid, spent, revoked or expired; log in again",
            ),
            Error::ClientNameTaken => error::status(
                Code::AlreadyExists,
                DOMAIN,
                "CLIENT_NAME_TAKEN",
                "a client with this name exists",
            ),
            Error::BadClientCredentials => error::status(
                Code::Unauthenticated,
                DOMAIN,
                "INVALID_CLIENT",
                "invalid client id or secret",
            ),
            Error::ClientNotFound => {
                error::status(Code::NotFound, DOMAIN, "CLIENT_NOT_FOUND", "no such client")
            }
            Error::UserNotFound => error::status(
                Code::Unauthenticated,
                DOMAIN,
                "USER_NOT_FOUND",
                "user not found",
            ),
            Error::AccountDisabled => error::status(
                Code::PermissionDenied,
                DOMAIN,
                "ACCOUNT_DISABLED",
                "this account is disabled; ask an administrator",
            ),
            Error::Database(e) => storage::database_status(DOMAIN, &e),
            Error::Internal(e) => error::internal(DOMAIN, &e),
        }
    }
}

/// Result of auth-service operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
