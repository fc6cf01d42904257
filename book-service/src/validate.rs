//! Book field rules (docs/api.md, "Books"; proto/bookstore/book/v1/book.proto). Every check records its violation and goes on, so a
//! client learns every broken rule at once.

use bookstore_contract::{error::Violations, proto::book::Book};
use sha2::{Digest, Sha256};

use crate::isbn;

/// Longest title, author or publisher, in characters after trimming.
pub const MAX_TEXT_CHARS: usize = 200;

/// A field of Book that callers set (CreateBook) and change (UpdateBook's update_mask; `*`
/// means all of them). Every match over it is exhaustive, so a new field is a compile error
/// in each place that must handle it: its mask path, its validation and its merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter)]
pub enum Field {
    Title,
    Author,
    Publisher,
    PriceCents,
    Isbn,
}

impl Field {
    /// Every field, in declaration order.
    pub fn all() -> impl Iterator<Item = Field> {
        <Field as strum::IntoEnumIterator>::iter()
    }

    /// Its update_mask path (the proto field name).
    pub fn path(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Author => "author",
            Field::Publisher => "publisher",
            Field::PriceCents => "price_cents",
            Field::Isbn => "isbn",
        }
    }

    /// The field whose path is `path`.
    pub fn from_path(path: &str) -> Option<Field> {
        Field::all().find(|field| field.path() == path)
    }

    /// Every path, for messages: `title, author, ...`.
    pub fn paths() -> String {
        Field::all().map(Field::path).collect::<Vec<_>>().join(", ")
    }
}

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
        for field in Field::all() {
            fields.set(field, book, prefix, v);
        }
        fields
    }

    /// Sets `which` from `book`, validating it.
    pub fn set(&mut self, which: Field, book: &Book, prefix: &str, v: &mut Violations) {
        let field = format!("{prefix}.{}", which.path());
        match which {
            Field::Title => self.title = required_text(&book.title, &field, v),
            Field::Author => self.author = required_text(&book.author, &field, v),
            Field::Publisher => {
                self.publisher = book.publisher.trim().to_string();
                no_nul(&self.publisher, &field, v);
                if self.publisher.chars().count() > MAX_TEXT_CHARS {
                    v.add(
                        field,
                        format!("must be at most {MAX_TEXT_CHARS} characters"),
                    );
                }
            }
            Field::PriceCents => {
                self.price_cents = book.price_cents;
                if book.price_cents < 0 {
                    v.add(field, "must not be negative");
                }
            }
            Field::Isbn => {
                self.isbn = None;
                let raw = book.isbn.trim();
                if !raw.is_empty() {
                    match isbn::normalize(raw) {
                        Ok(isbn) => self.isbn = Some(isbn),
                        Err(problem) => v.add(field, problem),
                    }
                }
            }
        }
    }

    /// Copies `fields` from `patch`.
    pub fn merge(&mut self, patch: &BookFields, fields: &[Field]) {
        for field in fields {
            match field {
                Field::Title => self.title.clone_from(&patch.title),
                Field::Author => self.author.clone_from(&patch.author),
                Field::Publisher => self.publisher.clone_from(&patch.publisher),
                Field::PriceCents => self.price_cents = patch.price_cents,
                Field::Isbn => self.isbn.clone_from(&patch.isbn),
            }
        }
    }

    /// A digest of the fields, to tell a retried CreateBook from a different one. The pattern
    /// names every field (no `..`): a new one is a compile error here until it is digested.
    pub fn fingerprint(&self) -> String {
        let BookFields {
            title,
            author,
            publisher,
            price_cents,
            isbn,
        } = self;
        let mut hash = Sha256::new();
        for part in [title, author, publisher, isbn.as_deref().unwrap_or("")] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.update(price_cents.to_be_bytes());
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
