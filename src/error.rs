//! One shape for every error of both services: a gRPC code, a message for humans and
//! google.rpc rich details (tonic-types): always an `ErrorInfo` (UPPER_SNAKE_CASE reason and the
//! service's domain), `BadRequest` field violations for INVALID_ARGUMENT, `RetryInfo` when a
//! client should come back later.

use std::{collections::HashMap, fmt::Display, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A status with an `ErrorInfo` detail.
pub fn status(code: Code, domain: &str, reason: &str, message: impl Into<String>) -> Status {
    Status::with_error_details(code, message, info(domain, reason))
}

/// RESOURCE_EXHAUSTED with a `RetryInfo` telling the client when to try again.
pub fn throttled(domain: &str, reason: &str, message: &str, retry_after: Duration) -> Status {
    let mut details = info(domain, reason);
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// INTERNAL with a generic message and a correlation id; the real error goes to the log only,
/// under the same id, so an operator can find it from a client's report.
pub fn internal(domain: &str, error: &dyn Display) -> Status {
    let id = uuid::Uuid::new_v4();
    tracing::error!(correlation_id = %id, %error, "internal error");
    let mut details = ErrorDetails::new();
    details.set_error_info(
        "INTERNAL",
        domain,
        HashMap::from([("correlation_id".to_string(), id.to_string())]),
    );
    Status::with_error_details(
        Code::Internal,
        format!("internal error (correlation id {id})"),
        details,
    )
}

/// UNAVAILABLE for a database that stayed busy: the client may retry.
pub fn busy(domain: &str) -> Status {
    let mut details = info(domain, "DATABASE_BUSY");
    details.set_retry_info(Some(Duration::from_secs(1)));
    Status::with_error_details(
        Code::Unavailable,
        "the service is busy, try again shortly",
        details,
    )
}

fn info(domain: &str, reason: &str) -> ErrorDetails {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, domain, HashMap::new());
    details
}

/// Every field violation of one request, gathered so a client learns all of them at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(Vec<(String, String)>);

impl Violations {
    /// Records that `field` (a proto field path such as `book.title`) breaks a rule.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }

    /// Whether no rule was broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The (field, description) pairs, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, d)| (f.as_str(), d.as_str()))
    }

    /// INVALID_ARGUMENT with a `BadRequest` listing every violation; the message names them too,
    /// for clients that do not decode details (grpcurl prints only the message).
    pub fn into_status(self, domain: &str) -> Status {
        let message = self
            .0
            .iter()
            .map(|(f, d)| format!("{f}: {d}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut details = info(domain, "INVALID_ARGUMENT");
        for (field, description) in self.0 {
            details.add_bad_request_violation(field, description);
        }
        Status::with_error_details(
            Code::InvalidArgument,
            format!("invalid request: {message}"),
            details,
        )
    }

    /// `Ok` when empty, else [`Violations::into_status`].
    pub fn check(self, domain: &str) -> Result<(), Status> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_status(domain))
        }
    }
}
