//! All SQL of book-service, one code path for SQLite and PostgreSQL ([`bookstore_kit::storage`]).
//! Each write is one unit ([`Database::write`]: on SQLite grouped with the writes arriving
//! with it, each in its own savepoint), acknowledged only after its commit. Across replicas, a
//! read-modify-write locks the row it read ([`Database::for_update`]) and a request_id is
//! claimed by the primary key of `create_requests`, so the rules hold without any lock in this
//! process.

use std::sync::LazyLock;

use bookstore_kit::{
    paging::Cursor,
    storage::{
        self,
        read::{self, Arg, Cost},
        Backend, Database, Migrations, Tx,
    },
};

use crate::{
    error::{Error, Result},
    validate::{fold, BookFields},
};

/// book-service's database handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct Db(Database);

/// A row of `books` (the folded filter columns left out).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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

// Read by position (a page maps up to 51 rows, and a lookup by name hashes the column name for
// every value), from this one list of columns.
bookstore_kit::columns!(BookRow {
    id,
    owner_id,
    title,
    author,
    publisher,
    price_cents,
    isbn,
    create_time,
    update_time,
    version,
});

/// What a CreateBook request_id was used for.
struct RequestRow {
    book_id: String,
    fingerprint: String,
}

bookstore_kit::columns!(RequestRow {
    book_id,
    fingerprint
});

/// Every column a write stores for `book`, with its value: the INSERT and the UPDATE are made
/// from this one list, their placeholders numbered by code. The pattern names every field of
/// [`BookRow`] (no `..`), so a new field is a compile error here until it is stored.
fn stored(book: &BookRow) -> [(&'static str, Arg); 12] {
    let BookRow {
        id,
        owner_id,
        title,
        author,
        publisher,
        price_cents,
        isbn,
        create_time,
        update_time,
        version,
    } = book;
    [
        ("id", id.as_str().into()),
        ("owner_id", owner_id.as_str().into()),
        ("title", title.as_str().into()),
        ("title_folded", fold(title).as_str().into()),
        ("author", author.as_str().into()),
        ("author_folded", fold(author).as_str().into()),
        ("publisher", publisher.as_str().into()),
        ("price_cents", (*price_cents).into()),
        ("isbn", isbn.as_deref().into()),
        ("create_time", (*create_time).into()),
        ("update_time", (*update_time).into()),
        ("version", (*version).into()),
    ]
}

/// Columns that name a book rather than describe it: set by the INSERT, never by the UPDATE.
const KEYS: [&str; 3] = ["id", "owner_id", "create_time"];

/// `INSERT INTO books (...) VALUES ($1, ...)` over [`stored`]'s columns.
fn insert_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let columns = stored(&BookRow::default()).map(|(column, _)| column);
        read::insert_sql("books", &columns)
    });
    &SQL
}

/// `UPDATE books SET c = $i, ... WHERE owner_id = $n+1 AND id = $n+2` over [`stored`]'s
/// columns other than the [`KEYS`], bound in that order by [`update_args`].
fn update_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let set: Vec<String> = stored(&BookRow::default())
            .into_iter()
            .filter(|(column, _)| !KEYS.contains(column))
            .enumerate()
            .map(|(i, (column, _))| format!("{column} = ${}", i + 1))
            .collect();
        format!(
            "UPDATE books SET {} WHERE owner_id = ${} AND id = ${}",
            set.join(", "),
            set.len() + 1,
            set.len() + 2
        )
    });
    &SQL
}

/// The arguments of [`update_sql`] for `book`.
fn update_args(book: &BookRow) -> Vec<Arg> {
    let mut args: Vec<Arg> = stored(book)
        .into_iter()
        .filter(|(column, _)| !KEYS.contains(column))
        .map(|(_, value)| value)
        .collect();
    args.push(book.owner_id.as_str().into());
    args.push(book.id.as_str().into());
    args
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

    /// Replaces the user-settable fields (every one: the pattern has no `..`).
    pub fn set_fields(&mut self, fields: BookFields) {
        let BookFields {
            title,
            author,
            publisher,
            price_cents,
            isbn,
        } = fields;
        self.title = title;
        self.author = author;
        self.publisher = publisher;
        self.price_cents = price_cents;
        self.isbn = isbn;
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

impl Db {
    /// Opens the database at `url` (created if missing) and runs the embedded migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let migrations = Migrations {
            sqlite: sqlx::migrate!("./migrations/sqlite"),
            postgres: sqlx::migrate!("./migrations/postgres"),
        };
        Ok(Db(Database::connect(url, &migrations).await?))
    }

    /// The storage underneath (secrets, closing).
    pub fn database(&self) -> &Database {
        &self.0
    }

    /// Stores `book`, and `request` = (request_id, fingerprint) in the same transaction. A
    /// request_id seen before stores nothing and reports what it was used for.
    /// The owner's book count goes up in the same transaction, unless it is already
    /// `max_books` ([`Error::QuotaExceeded`], and nothing is stored).
    pub async fn create_book(
        &self,
        book: BookRow,
        request: Option<(String, String)>,
        max_books: i64,
    ) -> Result<Created> {
        self.0
            .write(Box::new(move |mut tx| {
                Box::pin(async move {
                    if let Some((request_id, fingerprint)) = request {
                        // The primary key claims the request_id: a concurrent transaction with
                        // the same one (on any replica) waits here for the first to commit,
                        // then inserts nothing.
                        let claim = [
                            book.owner_id.as_str().into(),
                            request_id.as_str().into(),
                            book.id.as_str().into(),
                            fingerprint.into(),
                            (book.create_time / 1_000_000).into(),
                        ];
                        let claimed = tx
                            .execute(
                                "INSERT INTO create_requests
                                     (owner_id, request_id, book_id, fingerprint, create_time)
                                 VALUES ($1, $2, $3, $4, $5)
                                 ON CONFLICT (owner_id, request_id) DO NOTHING",
                                &claim,
                            )
                            .await?;
                        if claimed == 0 {
                            let earlier: RequestRow = tx
                                .fetch_optional(
                                    "SELECT book_id, fingerprint FROM create_requests
                                     WHERE owner_id = $1 AND request_id = $2",
                                    &claim[..2],
                                )
                                .await?
                                .ok_or(sqlx::Error::RowNotFound)?;
                            let book =
                                select_book(&mut tx, &book.owner_id, &earlier.book_id, "").await?;
                            let fingerprint = earlier.fingerprint;
                            return Ok(Created::Replay { fingerprint, book });
                        }
                    }
                    // The count's row is locked until the commit (PostgreSQL): concurrent
                    // creates of one owner cannot both take the last place.
                    let counted: Option<i64> = tx
                        .fetch_optional(
                            "INSERT INTO owner_books (owner_id, books) VALUES ($1, 1)
                             ON CONFLICT (owner_id) DO UPDATE SET books = owner_books.books + 1
                             WHERE owner_books.books < $2
                             RETURNING books",
                            &[book.owner_id.as_str().into(), max_books.into()],
                        )
                        .await?;
                    if counted.is_none() {
                        return Err(Error::QuotaExceeded(max_books));
                    }
                    let args = stored(&book).map(|(_, value)| value);
                    unique_is_isbn(tx.execute(insert_sql(), &args).await)?;
                    Ok(Created::New(book))
                })
            }))
            .await
    }

    /// The book `id` of `owner_id`.
    pub async fn book(&self, owner_id: &str, id: &str) -> Result<Option<BookRow>> {
        let sql = select_book_sql("");
        let args = vec![owner_id.into(), id.into()];
        Ok(self.0.fetch_optional(Cost::Lookup, &sql, args).await?)
    }

    /// Up to `limit` books matching `filter` after `after`, in (create_time, id) order.
    pub async fn list_books(
        &self,
        filter: &Filter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<BookRow>> {
        let (mut sql, mut args) = filter_sql(filter, self.0.backend());
        if let Some(after) = after {
            sql.push_str(&format!(
                " AND (create_time, id) > (${}, ${})",
                args.len() + 1,
                args.len() + 2
            ));
            args.push(after.create_time.into());
            args.push(after.id.as_str().into());
        }
        sql.push_str(&format!(
            " ORDER BY create_time, id LIMIT ${}",
            args.len() + 1
        ));
        args.push(limit.into());
        let sql = format!("SELECT {} FROM books{sql}", BookRow::select_list());
        // One keyset page: an index range of at most `limit` rows (a title filter reads the
        // owner's rows until the page fills; see [`Cost`]).
        let cost = match filter.title_query {
            None => Cost::Lookup,
            Some(_) => Cost::Scan,
        };
        Ok(self.0.fetch_all(cost, &sql, args).await?)
    }

    /// How many books match `filter`.
    pub async fn count_books(&self, filter: &Filter) -> Result<i64> {
        let (sql, args) = filter_sql(filter, self.0.backend());
        let sql = format!("SELECT COUNT(*) FROM books{sql}");
        let count = self.0.fetch_optional(Cost::Scan, &sql, args).await?;
        Ok(count.unwrap_or(0))
    }

    /// Reads the book, lets `change` compute its new fields (or refuse), and stores them with
    /// the version bumped, all in one transaction: concurrent updates carrying the same etag
    /// cannot both pass the check.
    pub async fn update_book(
        &self,
        owner_id: String,
        id: String,
        change: impl FnOnce(&BookRow) -> Result<BookFields> + Send + 'static,
        now: i64,
    ) -> Result<BookRow> {
        let lock = self.0.for_update();
        self.0
            .write(Box::new(move |mut tx| {
                Box::pin(async move {
                    let mut book = select_book(&mut tx, &owner_id, &id, lock)
                        .await?
                        .ok_or(Error::NotFound)?;
                    let fields = change(&book)?;
                    book.set_fields(fields);
                    book.update_time = now.max(book.update_time);
                    book.version += 1;
                    unique_is_isbn(tx.execute(update_sql(), &update_args(&book)).await)?;
                    Ok(book)
                })
            }))
            .await
    }

    /// Deletes the book after `check` accepts it, in one transaction.
    pub async fn delete_book(
        &self,
        owner_id: String,
        id: String,
        check: impl FnOnce(&BookRow) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let lock = self.0.for_update();
        self.0
            .write(Box::new(move |mut tx| {
                Box::pin(async move {
                    let book = select_book(&mut tx, &owner_id, &id, lock)
                        .await?
                        .ok_or(Error::NotFound)?;
                    check(&book)?;
                    let owner = Arg::from(owner_id);
                    tx.execute(
                        "DELETE FROM books WHERE owner_id = $1 AND id = $2",
                        &[owner.clone(), id.into()],
                    )
                    .await?;
                    tx.execute(
                        "UPDATE owner_books SET books = books - 1 WHERE owner_id = $1",
                        &[owner],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }
}

impl Db {
    /// Deletes CreateBook request ids stored before `before` (Unix seconds); returns how many.
    pub async fn purge_requests(&self, before: i64) -> Result<u64> {
        self.0
            .write(Box::new(move |mut tx| {
                Box::pin(async move {
                    let sql = "DELETE FROM create_requests WHERE create_time < $1";
                    Ok(tx.execute(sql, &[before.into()]).await?)
                })
            }))
            .await
    }
}

/// The query of the book `$2` of owner `$1`, with `lock` appended.
fn select_book_sql(lock: &str) -> String {
    format!(
        "SELECT {} FROM books WHERE owner_id = $1 AND id = $2{lock}",
        BookRow::select_list()
    )
}

/// The book `id` of `owner_id` inside a writing transaction; `lock` is appended to the query.
async fn select_book(
    tx: &mut Tx<'_>,
    owner_id: &str,
    id: &str,
    lock: &str,
) -> Result<Option<BookRow>> {
    let args = [owner_id.into(), id.into()];
    Ok(tx.fetch_optional(&select_book_sql(lock), &args).await?)
}

/// The `WHERE` clause of `filter` with `$1..$n` placeholders, and the values they stand for.
fn filter_sql(filter: &Filter, backend: Backend) -> (String, Vec<Arg>) {
    let mut sql = String::from(" WHERE owner_id = $1");
    let mut args = vec![Arg::from(filter.owner_id.as_str())];
    if let Some(author) = &filter.author {
        args.push(author.as_str().into());
        sql.push_str(&format!(" AND author_folded = ${}", args.len()));
    }
    if let Some(title) = &filter.title_query {
        args.push(title.as_str().into());
        let contains = match backend {
            Backend::Sqlite => "instr",
            Backend::Postgres => "strpos",
        };
        sql.push_str(&format!(
            " AND {contains}(title_folded, ${}) > 0",
            args.len()
        ));
    }
    (sql, args)
}

/// The only UNIQUE constraint a book write can break is (owner_id, isbn).
fn unique_is_isbn<T>(result: Result<T, sqlx::Error>) -> Result<T> {
    result.map_err(|e| {
        if storage::is_unique_violation(&e) {
            Error::IsbnTaken
        } else {
            Error::Database(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A book written through [`stored`] (the INSERT, then the UPDATE) reads back through
    /// `columns!` (the SELECT) as the same book, every field distinct from the others: the
    /// column lists, the placeholders and the row mapping agree, on SQLite and, in the
    /// PostgreSQL pass, on PostgreSQL.
    #[tokio::test]
    async fn a_book_reads_back_as_it_was_written_and_updated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(&bookstore_testkit::database::database_url(
            dir.path(),
            "books.db",
        ))
        .await
        .expect("database");
        let book = BookRow {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: uuid::Uuid::now_v7().to_string(),
            title: "Title".into(),
            author: "Author".into(),
            publisher: "Publisher".into(),
            price_cents: 1234,
            isbn: Some("9780306406157".into()),
            create_time: 1_000_001,
            update_time: 1_000_002,
            version: 3,
        };
        let created = db
            .create_book(book.clone(), None, 10)
            .await
            .expect("create");
        assert!(matches!(created, Created::New(_)));
        let read = db.book(&book.owner_id, &book.id).await.expect("read");
        assert_eq!(read.as_ref(), Some(&book));

        let changed = BookFields {
            title: "Other title".into(),
            author: "Other author".into(),
            publisher: "Other publisher".into(),
            price_cents: 4321,
            isbn: Some("9780131103627".into()),
        };
        let expected = {
            let mut b = book.clone();
            b.set_fields(changed.clone());
            b.update_time = 2_000_000;
            b.version = 4;
            b
        };
        let updated = db
            .update_book(
                book.owner_id.clone(),
                book.id.clone(),
                move |_| Ok(changed),
                2_000_000,
            )
            .await
            .expect("update");
        assert_eq!(updated, expected);
        let read = db.book(&book.owner_id, &book.id).await.expect("read");
        assert_eq!(read, Some(expected));
        db.database().close().await;
    }
}
