//! All SQL of book-service. Each write is one `BEGIN IMMEDIATE` transaction, acknowledged only
//! after its commit.

use bookstore_kit::{
    paging::Cursor,
    storage::{self as sqlite, Database},
};
use sqlx::{FromRow, QueryBuilder, Sqlite};

use crate::{
    error::{Error, Result},
    validate::{fold, BookFields},
};

/// book-service's database handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct Db(Database);

/// A row of `books` (the folded filter columns left out).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct BookRow {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub author: String,
    pub publisher: String,
    pub price_cents: i64,
    pub isbn: Option<String>,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

impl BookRow {
    /// The user-settable fields.
    pub fn fields(&self) -> BookFields {
        BookFields {
            title: self.title.clone(),
            author: self.author.clone(),
            publisher: self.publisher.clone(),
            price_cents: self.price_cents,
            isbn: self.isbn.clone(),
        }
    }

    /// Replaces the user-settable fields.
    pub fn set_fields(&mut self, f: BookFields) {
        self.title = f.title;
        self.author = f.author;
        self.publisher = f.publisher;
        self.price_cents = f.price_cents;
        self.isbn = f.isbn;
    }
}

/// Which books a list covers.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Whose books.
    pub owner_id: String,
    /// Exact author, folded.
    pub author: Option<String>,
    /// Title substring, folded.
    pub title_query: Option<String>,
}

impl Filter {
    /// What a page token of this list is bound to: a token is refused with other filters.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.owner_id,
            self.author.as_deref().unwrap_or(""),
            self.title_query.as_deref().unwrap_or("")
        )
    }
}

/// What CreateBook with a request_id found.
#[derive(Debug)]
pub enum Created {
    /// A new book was stored.
    New(BookRow),
    /// The request_id was used before: the fingerprint it was used with, and its book if that
    /// still exists.
    Replay {
        fingerprint: String,
        book: Option<BookRow>,
    },
}

const BOOK_COLUMNS: &str =
    "id, owner_id, title, author, publisher, price_cents, isbn, create_time, update_time, version";

impl Db {
    /// Opens the database at `url` (created if missing) and runs the embedded migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Db(
            Database::connect(url, &sqlx::migrate!("./migrations")).await?
        ))
    }

    /// The storage underneath (secrets, closing).
    pub fn database(&self) -> &Database {
        &self.0
    }

    /// Stores `book`, and `request` = (request_id, fingerprint) in the same transaction. A
    /// request_id seen before stores nothing and reports what it was used for.
    pub async fn create_book(
        &self,
        book: &BookRow,
        request: Option<(&str, &str)>,
    ) -> Result<Created> {
        let mut tx = self.0.begin_write().await?;
        if let Some((request_id, fingerprint)) = request {
            let seen: Option<(String, String)> = sqlx::query_as(
                "SELECT book_id, fingerprint FROM create_requests WHERE owner_id = ? AND request_id = ?",
            )
            .bind(&book.owner_id)
            .bind(request_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((book_id, fingerprint)) = seen {
                let book = select_book(&mut *tx, &book.owner_id, &book_id).await?;
                return Ok(Created::Replay { fingerprint, book });
            }
            sqlx::query(
                "INSERT INTO create_requests (owner_id, request_id, book_id, fingerprint)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&book.owner_id)
            .bind(request_id)
            .bind(&book.id)
            .bind(fingerprint)
            .execute(&mut *tx)
            .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO books (id, owner_id, title, title_folded, author, author_folded, publisher,
                                price_cents, isbn, create_time, update_time, version)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&book.id)
        .bind(&book.owner_id)
        .bind(&book.title)
        .bind(fold(&book.title))
        .bind(&book.author)
        .bind(fold(&book.author))
        .bind(&book.publisher)
        .bind(book.price_cents)
        .bind(&book.isbn)
        .bind(book.create_time)
        .bind(book.update_time)
        .bind(book.version)
        .execute(&mut *tx)
        .await;
        unique_is_isbn(inserted)?;
        tx.commit().await?;
        Ok(Created::New(book.clone()))
    }

    /// The book `id` of `owner_id`.
    pub async fn book(&self, owner_id: &str, id: &str) -> Result<Option<BookRow>> {
        select_book(&self.0.reader, owner_id, id).await
    }

    /// Up to `limit` books matching `filter` after `after`, in (create_time, id) order.
    pub async fn list_books(
        &self,
        filter: &Filter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<BookRow>> {
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {BOOK_COLUMNS} FROM books"));
        push_filter(&mut query, filter);
        if let Some(cursor) = after {
            query
                .push(" AND (create_time, id) > (")
                .push_bind(cursor.create_time)
                .push(", ")
                .push_bind(cursor.id.clone())
                .push(")");
        }
        query
            .push(" ORDER BY create_time, id LIMIT ")
            .push_bind(limit);
        Ok(query.build_query_as().fetch_all(&self.0.reader).await?)
    }

    /// How many books match `filter`.
    pub async fn count_books(&self, filter: &Filter) -> Result<i64> {
        let mut query = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM books");
        push_filter(&mut query, filter);
        Ok(query.build_query_scalar().fetch_one(&self.0.reader).await?)
    }

    /// Reads the book, lets `change` compute its new fields (or refuse), and stores them with
    /// the version bumped, all in one transaction: concurrent updates carrying the same etag
    /// cannot both pass the check.
    pub async fn update_book(
        &self,
        owner_id: &str,
        id: &str,
        change: impl FnOnce(&BookRow) -> Result<BookFields>,
        now: i64,
    ) -> Result<BookRow> {
        let mut tx = self.0.begin_write().await?;
        let mut book = select_book(&mut *tx, owner_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        let fields = change(&book)?;
        book.set_fields(fields);
        book.update_time = now.max(book.update_time);
        book.version += 1;
        let updated = sqlx::query(
            "UPDATE books SET title = ?, title_folded = ?, author = ?, author_folded = ?,
                              publisher = ?, price_cents = ?, isbn = ?, update_time = ?, version = ?
             WHERE owner_id = ? AND id = ?",
        )
        .bind(&book.title)
        .bind(fold(&book.title))
        .bind(&book.author)
        .bind(fold(&book.author))
        .bind(&book.publisher)
        .bind(book.price_cents)
        .bind(&book.isbn)
        .bind(book.update_time)
        .bind(book.version)
        .bind(owner_id)
        .bind(id)
        .execute(&mut *tx)
        .await;
        unique_is_isbn(updated)?;
        tx.commit().await?;
        Ok(book)
    }

    /// Deletes the book after `check` accepts it, in one transaction.
    pub async fn delete_book(
        &self,
        owner_id: &str,
        id: &str,
        check: impl FnOnce(&BookRow) -> Result<()>,
    ) -> Result<()> {
        let mut tx = self.0.begin_write().await?;
        let book = select_book(&mut *tx, owner_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        check(&book)?;
        sqlx::query("DELETE FROM books WHERE owner_id = ? AND id = ?")
            .bind(owner_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn select_book<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    owner_id: &str,
    id: &str,
) -> Result<Option<BookRow>> {
    let sql = format!("SELECT {BOOK_COLUMNS} FROM books WHERE owner_id = ? AND id = ?");
    Ok(sqlx::query_as(&sql)
        .bind(owner_id)
        .bind(id)
        .fetch_optional(executor)
        .await?)
}

fn push_filter(query: &mut QueryBuilder<'_, Sqlite>, filter: &Filter) {
    query
        .push(" WHERE owner_id = ")
        .push_bind(filter.owner_id.clone());
    if let Some(author) = &filter.author {
        query
            .push(" AND author_folded = ")
            .push_bind(author.clone());
    }
    if let Some(title) = &filter.title_query {
        query
            .push(" AND instr(title_folded, ")
            .push_bind(title.clone())
            .push(") > 0");
    }
}

/// The only UNIQUE constraint a book write can break is (owner_id, isbn).
fn unique_is_isbn<T>(result: Result<T, sqlx::Error>) -> Result<T> {
    result.map_err(|e| {
        if sqlite::is_unique_violation(&e) {
            Error::IsbnTaken
        } else {
            Error::Database(e)
        }
    })
}
