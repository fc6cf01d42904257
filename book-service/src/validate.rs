//! Book field rules (README, "API"; proto/bookstore/book/v1/book.proto). Every check records its violation and goes on, so a
//! client learns every broken rule at once.

use bookstore_contract::{error::Violations, proto::book::Book};
use sha2::{Digest, Sha256};

use crate::isbn;

/// Longest title, author or publisher, in characters after trimming.
pub const MAX_TEXT_CHARS: usize = 200;

/// Fields UpdateBook may change (update_mask paths); `*` means all of them.
pub const UPDATABLE: &[&str] = &["title", "author", "publisher", "price_cents", "isbn"];

/// The user-settable fields of a book, valid and normalized.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookFields {
    /// Trimmed, 1-200 characters.
    pub title: String,
    /// Trimmed, 1-200 characters.
    pub author: String,
    /// Trimmed, at most 200 characters.
    pub publisher: String,
    /// Zero or more.
    pub price_cents: i64,
    /// ISBN-13 digits.
    pub isbn: Option<String>,
}

impl BookFields {
    /// Validates every field of `book`; violations are named under `prefix` (e.g. `book`).
    pub fn from_proto(book: &Book, prefix: &str, v: &mut Violations) -> BookFields {
        let mut fields = BookFields::default();
        for path in UPDATABLE {
            fields.set(path, book, prefix, v);
        }
        fields
    }

    /// Sets the field `path` from `book`, validating it.
    pub fn set(&mut self, path: &str, book: &Book, prefix: &str, v: &mut Violations) {
        let field = format!("{prefix}.{path}");
        match path {
            "title" => self.title = required_text(&book.title, &field, v),
            "author" => self.author = required_text(&book.author, &field, v),
            "publisher" => {
                self.publisher = book.publisher.trim().to_string();
                no_nul(&self.publisher, &field, v);
                if self.publisher.chars().count() > MAX_TEXT_CHARS {
                    v.add(
                        field,
                        format!("must be at most {MAX_TEXT_CHARS} characters"),
                    );
                }
            }
            "price_cents" => {
                self.price_cents = book.price_cents;
                if book.price_cents < 0 {
                    v.add(field, "must not be negative");
                }
            }
            "isbn" => {
                self.isbn = None;
                let raw = book.isbn.trim();
                if !raw.is_empty() {
                    match isbn::normalize(raw) {
                        Ok(isbn) => self.isbn = Some(isbn),
                        Err(problem) => v.add(field, problem),
                    }
                }
            }
            _ => v.add(field, "is not a field of Book that can be set"),
        }
    }

    /// Copies the fields named by `paths` from `patch`.
    pub fn merge(&mut self, patch: &BookFields, paths: &[String]) {
        for path in paths {
            match path.as_str() {
                "title" => self.title.clone_from(&patch.title),
                "author" => self.author.clone_from(&patch.author),
                "publisher" => self.publisher.clone_from(&patch.publisher),
                "price_cents" => self.price_cents = patch.price_cents,
                "isbn" => self.isbn.clone_from(&patch.isbn),
                _ => {}
            }
        }
    }

    /// A digest of the fields, to tell a retried CreateBook from a different one.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            &self.title,
            &self.author,
            &self.publisher,
            self.isbn.as_deref().unwrap_or(""),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(self.price_cents.to_be_bytes());
        bookstore_kit::hex(&hash.finalize())
    }
}

/// Records a violation when `text` holds a NUL character: PostgreSQL cannot store one in text,
/// so both backends refuse it alike, before any query.
fn no_nul(text: &str, field: &str, v: &mut Violations) {
    if text.contains('\0') {
        v.add(field, "must not contain NUL characters");
    }
}

fn required_text(raw: &str, field: &str, v: &mut Violations) -> String {
    let text = raw.trim().to_string();
    no_nul(&text, field, v);
    let len = text.chars().count();
    if len == 0 {
        v.add(field, "is required");
    } else if len > MAX_TEXT_CHARS {
        v.add(
            field,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        );
    }
    text
}

/// Records a violation when a ListBooks filter (`author`, `title_query`) is longer than a
/// stored field can be: no book could match it, and a longer one only costs memory and time.
pub fn filter_text(text: &str, field: &str, v: &mut Violations) {
    no_nul(text, field, v);
    if text.trim().chars().count() > MAX_TEXT_CHARS {
        v.add(
            field,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        );
    }
}

/// Records a violation unless `id` is a UUID; returns the parsed id.
pub fn uuid(id: &str, field: &str, v: &mut Violations) -> Option<uuid::Uuid> {
    if id.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let parsed = uuid::Uuid::parse_str(id).ok();
    if parsed.is_none() {
        v.add(field, "must be a UUID");
    }
    parsed
}

/// Records a violation when a book id is missing. Any other id is looked up as it is: one
/// that is not a UUID names no book, so the answer is NOT_FOUND, like any unknown id.
pub fn book_id(id: &str, field: &str, v: &mut Violations) {
    if id.trim().is_empty() {
        v.add(field, "is required");
    }
}

/// Lower-case form used by the case-insensitive filters (full Unicode, not just ASCII).
pub fn fold(text: &str) -> String {
    text.trim().to_lowercase()
}
