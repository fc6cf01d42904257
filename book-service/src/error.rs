//! What callers of book-service can be told, and the one place it becomes a gRPC status.

use bookstore_contract::{error, error::Violations};
use bookstore_kit::storage;
use tonic::{Code, Status};

/// ErrorInfo domain of every book-service error.
pub const DOMAIN: &str = "book-service";

/// A book-service failure, as the caller sees it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks field rules (every violation listed).
    #[error("invalid request")]
    Invalid(Violations),
    /// No such book for this caller (also another owner's book).
    #[error("book not found")]
    NotFound,
    /// Another of the caller's books has this ISBN.
    #[error("isbn already used")]
    IsbnTaken,
    /// The etag does not match the stored book.
    #[error("etag mismatch")]
    EtagMismatch,
    /// The owner already has `--max-books-per-user` books.
    #[error("book quota reached")]
    QuotaExceeded(i64),
    /// A database failure: busy becomes UNAVAILABLE, anything else INTERNAL (logged only).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// INVALID_ARGUMENT for one field.
    pub fn invalid(field: &str, description: &str) -> Error {
        let mut v = Violations::default();
        v.add(field, description);
        Error::Invalid(v)
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::Invalid(v) => v.into_status(DOMAIN),
            Error::NotFound => {
                error::status(Code::NotFound, DOMAIN, "BOOK_NOT_FOUND", "book not found")
            }
            Error::IsbnTaken => error::status(
                Code::AlreadyExists,
                DOMAIN,
                "ISBN_ALREADY_EXISTS",
                "you already have a book with this isbn",
            ),
            Error::EtagMismatch => error::status(
                Code::Aborted,
                DOMAIN,
                "ETAG_MISMATCH",
                "the book changed since you read it (etag mismatch); read it again and retry",
            ),
            Error::QuotaExceeded(most) => error::status(
                Code::ResourceExhausted,
                DOMAIN,
                "QUOTA_EXCEEDED",
                format!("you already have {most} books, the most allowed; delete some first"),
            ),
            Error::Database(e) => storage::database_status(DOMAIN, &e),
        }
    }
}

/// Result of book-service operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
