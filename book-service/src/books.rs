//! The work behind every BookService RPC. Handlers in [`crate::service`] validate and convert;
//! this module decides.

use std::sync::Arc;

use bookstore_kit::{
    clock::Clock,
    paging::{Cursor, PageRequest, PageTokens},
};

use crate::{
    db::{BookRow, Created, Db, Filter},
    error::{Error, Result},
    total_sizes::TotalSizes,
    validate::{BookFields, Field},
};

/// How long a CreateBook `request_id` is remembered (24 h).
pub const REQUEST_ID_TTL_SECONDS: i64 = 24 * 3600;

/// NOT_FOUND, before any query, for an id that no book can have (ids are UUIDs): what reaches
/// the database is always a well-formed id, never client bytes (a NUL, say, that PostgreSQL
/// would refuse).
fn existing_id(id: &str) -> Result<()> {
    match uuid::Uuid::parse_str(id) {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::NotFound),
    }
}

/// The etag of a book: its version, opaque to clients.
pub fn etag(book: &BookRow) -> String {
    format!("v{}", book.version)
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The books.
    pub books: Vec<BookRow>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
    /// Books matching the filter across all pages.
    pub total_size: i64,
}

/// Storage, the page-token key, the clock and the kept list sizes.
#[derive(Debug, Clone)]
pub struct Books {
    /// The database.
    pub db: Db,
    /// Signs ListBooks page tokens.
    pub page_tokens: PageTokens,
    /// "Now" (book times are Unix microseconds, so books made within a second keep their order).
    pub clock: Clock,
    /// `total_size` of each filter, kept between pages and forgotten by writes.
    pub total_sizes: Arc<TotalSizes>,
    /// Most books one owner may have (`--max-books-per-user`).
    pub max_books_per_user: i64,
}

impl Books {
    /// Stores a new book of `owner_id`. With a `request_id`, a retry of the same request returns
    /// the first book and stores nothing; the same request_id with other fields is refused.
    pub async fn create(
        &self,
        owner_id: &str,
        fields: BookFields,
        request_id: Option<String>,
    ) -> Result<BookRow> {
        let now = self.clock.unix_micros();
        let fingerprint = fields.fingerprint();
        let mut book = BookRow {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: owner_id.to_string(),
            title: String::new(),
            author: String::new(),
            publisher: String::new(),
            price_cents: 0,
            isbn: None,
            create_time: now,
            update_time: now,
            version: 1,
        };
        book.set_fields(fields);
        let request = request_id.map(|id| (id, fingerprint.clone()));
        let created = self
            .db
            .create_book(book, request, self.max_books_per_user)
            .await;
        self.total_sizes.changed(owner_id);
        match created? {
            Created::New(book) => Ok(book),
            Created::Replay {
                fingerprint: first,
                book,
            } => {
                if first != fingerprint {
                    return Err(Error::invalid(
                        "request_id",
                        "was already used for a different book; use a new request_id",
                    ));
                }
                // The first book was deleted since: nothing to return.
                book.ok_or(Error::NotFound)
            }
        }
    }

    /// Deletes CreateBook request ids older than [`REQUEST_ID_TTL_SECONDS`]: a retry must come
    /// within a day to be recognised.
    pub async fn purge(&self) -> Result<u64> {
        let before = self.clock.unix_seconds() - REQUEST_ID_TTL_SECONDS;
        self.db.purge_requests(before).await
    }

    /// The book `id` of `owner_id`.
    pub async fn get(&self, owner_id: &str, id: &str) -> Result<BookRow> {
        existing_id(id)?;
        self.db.book(owner_id, id).await?.ok_or(Error::NotFound)
    }

    /// The page of `filter`'s books that `page` asks for (made with [`Filter::fingerprint`]).
    pub async fn list(&self, filter: &Filter, page: &PageRequest) -> Result<Page> {
        let books = self
            .db
            .list_books(filter, page.after.as_ref(), page.size + 1)
            .await?;
        let (books, next_page_token) = self.page_tokens.page(page, books, |last| Cursor {
            create_time: last.create_time,
            id: last.id.clone(),
        });
        let total_size = match self.total_sizes.get(filter) {
            Ok(size) => size,
            Err(ticket) => {
                let size = self.db.count_books(filter).await?;
                self.total_sizes.put(filter, ticket, size);
                size
            }
        };
        Ok(Page {
            books,
            next_page_token,
            total_size,
        })
    }

    /// Applies `patch`'s fields named in `paths` to the book, if `etag` (when given) matches.
    pub async fn update(
        &self,
        owner_id: &str,
        id: &str,
        etag_wanted: Option<String>,
        patch: BookFields,
        fields: Vec<Field>,
    ) -> Result<BookRow> {
        existing_id(id)?;
        let updated = self
            .db
            .update_book(
                owner_id.to_string(),
                id.to_string(),
                move |current| {
                    check_etag(current, etag_wanted.as_deref())?;
                    let mut merged = current.fields();
                    merged.merge(&patch, &fields);
                    Ok(merged)
                },
                self.clock.unix_micros(),
            )
            .await;
        self.total_sizes.changed(owner_id);
        updated
    }

    /// Deletes the book if `etag` (when given) matches.
    pub async fn delete(
        &self,
        owner_id: &str,
        id: &str,
        etag_wanted: Option<String>,
    ) -> Result<()> {
        existing_id(id)?;
        let deleted = self
            .db
            .delete_book(owner_id.to_string(), id.to_string(), move |current| {
                check_etag(current, etag_wanted.as_deref())
            })
            .await;
        self.total_sizes.changed(owner_id);
        deleted
    }
}

fn check_etag(current: &BookRow, wanted: Option<&str>) -> Result<()> {
    match wanted {
        Some(wanted) if wanted != etag(current) => Err(Error::EtagMismatch),
        _ => Ok(()),
    }
}
