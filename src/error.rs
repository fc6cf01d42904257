//! One shape for every error of both services: a gRPC code, a message for humans and
//! google.rpc rich details (tonic-types): always an `ErrorInfo` (UPPER_SNAKE_CASE reason and the
//! service's domain), `BadRequest` field violations for INVALID_ARGUMENT, `RetryInfo` when a
//! client should come back later.

use std::{collections::HashMap, fmt::Display, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Longest status message, in bytes: errors stay small whatever the input was (a client's
/// default limits on trailers are a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Most field violations reported; the rest are counted in one more violation.
pub const MAX_VIOLATIONS: usize = 20;
/// Longest violation description, in bytes (they may quote the caller's input).
const MAX_DESCRIPTION_BYTES: usize = 200;

/// `text` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A status with an `ErrorInfo` detail.
pub fn status(code: Code, domain: &str, reason: &str, message: impl Into<String>) -> Status {
    Status::with_error_details(
        code,
        bounded(message.into(), MAX_MESSAGE_BYTES),
        info(domain, reason),
    )
}

/// A status with an `ErrorInfo` detail carrying `metadata` (key, value pairs).
pub fn status_with_metadata(
    code: Code,
    domain: &str,
    reason: &str,
    message: impl Into<String>,
    metadata: &[(&str, &str)],
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, domain, metadata);
    Status::with_error_details(code, bounded(message.into(), MAX_MESSAGE_BYTES), details)
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

    /// INVALID_ARGUMENT with a `BadRequest` listing the violations; the message names them too,
    /// for clients that do not decode details (grpcurl prints only the message). At most
    /// [`MAX_VIOLATIONS`] are listed (then one saying how many more there were), each
    /// description and the message cut to a bounded size.
    pub fn into_status(self, domain: &str) -> Status {
        let total = self.0.len();
        let mut shown: Vec<(String, String)> = self
            .0
            .into_iter()
            .take(MAX_VIOLATIONS)
            .map(|(f, d)| {
                (
                    bounded(f, MAX_DESCRIPTION_BYTES),
                    bounded(d, MAX_DESCRIPTION_BYTES),
                )
            })
            .collect();
        if total > MAX_VIOLATIONS {
            shown.push((
                "*".into(),
                format!("and {} more violations", total - MAX_VIOLATIONS),
            ));
        }
        let message = shown
            .iter()
            .map(|(f, d)| format!("{f}: {d}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut details = info(domain, "INVALID_ARGUMENT");
        for (field, description) in shown {
            details.add_bad_request_violation(field, description);
        }
        Status::with_error_details(
            Code::InvalidArgument,
            bounded(format!("invalid request: {message}"), MAX_MESSAGE_BYTES),
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

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn many_violations_give_twenty_and_a_count_and_a_message_under_one_kib() {
        let mut violations = Violations::default();
        for i in 0..20_000 {
            violations.add(
                "update_mask",
                format!("{:?} cannot be updated", "x".repeat(i % 500)),
            );
        }
        let status = violations.into_status("test");
        assert!(
            status.message().len() <= MAX_MESSAGE_BYTES,
            "{}",
            status.message().len()
        );
        let bad = status.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations.len(), MAX_VIOLATIONS + 1);
        assert_eq!(
            bad.field_violations[20].description,
            "and 19980 more violations"
        );
        assert!(
            status.details().len() < 8 * 1024,
            "{}",
            status.details().len()
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let status = status(Code::NotFound, "test", "X", "é".repeat(2000));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
        assert!(status.message().ends_with('…'));
    }
}
