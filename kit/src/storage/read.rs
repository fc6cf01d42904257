//! Reads that run alike on both backends: one SQL text (`$N` placeholders, numbered in the
//! order they appear), its arguments, and one function from a row to a value
//! ([`FromColumns`]), whichever driver returned the row: rusqlite on SQLite's readers
//! ([`super::readers`]), sqlx's `Any` driver on PostgreSQL. [`crate::storage::Database::fetch_all`]
//! and its siblings pick the driver. A write's statements are made of the same parts
//! ([`super::tx`]).

use rusqlite::types::FromSql;
use sqlx::{any::AnyRow, Any, Row};

use super::errors::sqlite_error;

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// TEXT.
    Text(String),
    /// BIGINT.
    Int(i64),
    /// NULL of a TEXT column.
    NullText,
    /// NULL of a BIGINT column (typed: PostgreSQL does not cast a text NULL to bigint).
    NullInt,
    /// BLOB (SQLite), BYTEA (PostgreSQL).
    Bytes(Vec<u8>),
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg::Text(value)
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        value.map_or(Arg::NullText, Arg::Text)
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Arg::NullInt, Arg::Int)
    }
}

impl From<Vec<u8>> for Arg {
    fn from(value: Vec<u8>) -> Self {
        Arg::Bytes(value)
    }
}

impl From<Option<&str>> for Arg {
    fn from(value: Option<&str>) -> Self {
        value.map_or(Arg::NullText, Arg::from)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Text(value.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

/// Where a read runs on SQLite (PostgreSQL runs every read on its pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Touches few rows (a key lookup, one keyset page): runs on the calling task.
    Lookup,
    /// May scan many rows (a COUNT): runs on the blocking pool.
    Scan,
}

/// A column type both drivers decode.
pub trait Value: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql {}
impl<T> Value for T where T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql {}

/// The columns of one row, by position.
pub trait Columns {
    /// The value of column `index` (from 0).
    fn get<T: Value>(&self, index: usize) -> Result<T, sqlx::Error>;
}

impl Columns for AnyRow {
    fn get<T: Value>(&self, index: usize) -> Result<T, sqlx::Error> {
        self.try_get(index)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn get<T: Value>(&self, index: usize) -> Result<T, sqlx::Error> {
        rusqlite::Row::get(self, index).map_err(sqlite_error)
    }
}

/// A value made from a row, the same way on both backends.
pub trait FromColumns: Sized {
    /// Reads the value from `row`.
    fn from_columns(row: &impl Columns) -> Result<Self, sqlx::Error>;
}

/// Declares how a row type is read, in one list: `columns!(BookRow { id, title, ... })` gives
/// `BookRow::COLUMNS` (the column names a query selects, in this order), `BookRow::select_list()`
/// (the same joined: `id, title, ...`) and a [`FromColumns`] that reads column `i` into the
/// `i`-th field named. A column is named as the field it fills, so the list cannot disagree
/// with the mapping, and the struct literal it expands to has no `..`: a field left out is a
/// compile error. A field stored as a 0/1 integer is written `admin: flag`.
#[macro_export]
macro_rules! columns {
    ($row:ident { $($field:ident $(: $how:ident)?),* $(,)? }) => {
        impl $row {
            /// The columns a query selects for this row, in the order they are read.
            pub const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The row's values as arguments, in [`Self::COLUMNS`] order (for a write of the
            /// same columns).
            #[allow(dead_code)]
            pub fn args(&self) -> Vec<$crate::storage::read::Arg> {
                vec![$($crate::__arg!(self.$field $(, $how)?)),*]
            }

            /// [`Self::COLUMNS`] as an SQL select list.
            pub fn select_list() -> &'static str {
                static LIST: ::std::sync::LazyLock<String> =
                    ::std::sync::LazyLock::new(|| $row::COLUMNS.join(", "));
                &LIST
            }
        }

        impl $crate::storage::read::FromColumns for $row {
            fn from_columns(
                row: &impl $crate::storage::read::Columns,
            ) -> ::core::result::Result<Self, $crate::storage::read::Error> {
                let mut next = 0usize;
                Ok($row { $($field: $crate::__column!(row, next $(, $how)?)),* })
            }
        }
    };
}

/// One column of [`columns!`]: the next position, as stored or as a 0/1 flag.
#[doc(hidden)]
#[macro_export]
macro_rules! __column {
    ($row:ident, $next:ident) => {{
        $next += 1;
        $crate::storage::read::Columns::get($row, $next - 1)?
    }};
    ($row:ident, $next:ident, flag) => {{
        $next += 1;
        $crate::storage::read::Columns::get::<i64>($row, $next - 1)? != 0
    }};
}

/// One value of [`columns!`]'s `args`: as stored, or a flag as 0/1.
#[doc(hidden)]
#[macro_export]
macro_rules! __arg {
    ($value:expr) => {
        $crate::storage::read::Arg::from(::core::clone::Clone::clone(&$value))
    };
    ($value:expr, flag) => {
        $crate::storage::read::Arg::Int(i64::from($value))
    };
}

pub use sqlx::Error;

/// The first column (`SELECT COUNT(*)`).
impl FromColumns for i64 {
    fn from_columns(row: &impl Columns) -> Result<Self, sqlx::Error> {
        row.get(0)
    }
}

/// Runs `sql` on a SQLite connection: up to `limit` rows (all with `None`), each made by `T`.
pub(crate) fn sqlite_rows<T: FromColumns>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
    limit: Option<usize>,
) -> Result<Vec<T>, sqlx::Error> {
    let mut statement = sqlite_statement(conn, sql, args)?;
    let mut rows = statement.raw_query();
    let mut values = Vec::new();
    while limit.is_none_or(|limit| values.len() < limit) {
        match rows.next().map_err(sqlite_error)? {
            Some(row) => values.push(T::from_columns(row)?),
            None => break,
        }
    }
    Ok(values)
}

/// Runs the statement `sql` on a SQLite connection; returns the rows it changed.
pub(crate) fn sqlite_execute(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
) -> Result<u64, sqlx::Error> {
    let changed = sqlite_statement(conn, sql, args)?
        .raw_execute()
        .map_err(sqlite_error)?;
    Ok(changed as u64)
}

/// `sql` prepared (from the connection's cache) with `args` bound.
fn sqlite_statement<'c>(
    conn: &'c rusqlite::Connection,
    sql: &str,
    args: &[Arg],
) -> Result<rusqlite::CachedStatement<'c>, sqlx::Error> {
    let mut statement = conn.prepare_cached(sql).map_err(sqlite_error)?;
    for index in 1..=statement.parameter_count() {
        // `$N` binds the N-th argument wherever it appears, as sqlx reads it.
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|number| number.parse::<usize>().ok())
            .unwrap_or(index);
        let arg = number
            .checked_sub(1)
            .and_then(|i| args.get(i))
            .ok_or_else(|| sqlx::Error::Protocol(format!("no argument for ${number}")))?;
        match arg {
            Arg::Text(text) => statement.raw_bind_parameter(index, text),
            Arg::Int(int) => statement.raw_bind_parameter(index, int),
            Arg::NullText | Arg::NullInt => {
                statement.raw_bind_parameter(index, rusqlite::types::Null)
            }
            Arg::Bytes(bytes) => statement.raw_bind_parameter(index, bytes),
        }
        .map_err(sqlite_error)?;
    }
    Ok(statement)
}

/// Runs `sql` on sqlx through `executor` (PostgreSQL, or a SQLite transaction of sqlx): up to `limit` rows (all with `None`).
pub(crate) async fn sqlx_rows<'e, T: FromColumns>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    sql: &str,
    args: &[Arg],
    limit: Option<usize>,
) -> Result<Vec<T>, sqlx::Error> {
    let query = bind(sqlx::query(sql), args);
    let rows = match limit {
        Some(1) => query.fetch_optional(executor).await?.into_iter().collect(),
        _ => query.fetch_all(executor).await?,
    };
    rows.iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(T::from_columns)
        .collect()
}

/// `query` with `args` bound as `$1..$n`.
pub fn bind<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Text(text) => query.bind(text.as_str()),
            Arg::Int(int) => query.bind(*int),
            Arg::NullText => query.bind(None::<String>),
            Arg::NullInt => query.bind(None::<i64>),
            Arg::Bytes(bytes) => query.bind(bytes.as_slice()),
        };
    }
    query
}

/// `INSERT INTO table (c1, ..., cn) VALUES ($1, ..., $n)`: with a row type's `COLUMNS` and its
/// `args()` ([`columns!`]), a write whose placeholders the code numbers.
pub fn insert_sql(table: &str, columns: &[&str]) -> String {
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        placeholders.join(", ")
    )
}
