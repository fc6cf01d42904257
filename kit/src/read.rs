//! Reads that run alike on both backends: one SQL text (`$N` placeholders, numbered in the
//! order they appear), its arguments, and one function from a row to a value
//! ([`FromColumns`]), whichever driver returned the row: rusqlite on SQLite's readers
//! ([`crate::readers`]), sqlx's `Any` driver on PostgreSQL. [`crate::storage::Database::fetch_all`]
//! and its siblings pick the driver.

use rusqlite::types::FromSql;
use sqlx::{any::AnyRow, Any, Row};

use crate::readers::sqlite_error;

/// A value bound to a read statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// TEXT.
    Text(String),
    /// BIGINT.
    Int(i64),
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
        }
        .map_err(sqlite_error)?;
    }
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

/// Runs `sql` on PostgreSQL through `executor`: up to `limit` rows (all with `None`).
pub(crate) async fn postgres_rows<'e, T: FromColumns>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    sql: &str,
    args: &[Arg],
    limit: Option<usize>,
) -> Result<Vec<T>, sqlx::Error> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match arg {
            Arg::Text(text) => query.bind(text.as_str()),
            Arg::Int(int) => query.bind(*int),
        };
    }
    let rows = match limit {
        Some(1) => query.fetch_optional(executor).await?.into_iter().collect(),
        _ => query.fetch_all(executor).await?,
    };
    rows.iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(T::from_columns)
        .collect()
}
