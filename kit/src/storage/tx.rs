//! The statements of a writing transaction, written once for both drivers: SQL text with `$N`
//! placeholders and its [`Arg`]s, rows read by [`FromColumns`], as the reads of [`super::read`]
//! are. On SQLite the hot writes ([`super::Database::write`]) run on the group writer's own
//! rusqlite connection ([`super::group_commit`]), each statement a plain function call on that
//! thread; on PostgreSQL, and in SQLite's rarer transactions of their own
//! ([`super::Database::begin_write`]), they run on sqlx.

use sqlx::AnyConnection;

use super::read::{self, Arg, FromColumns};

/// Where a write's statements run.
pub enum Tx<'c> {
    /// The SQLite group writer's connection, inside the group transaction and the write's own
    /// savepoint: every statement runs at once on the writer's thread.
    Sqlite(&'c mut rusqlite::Connection),
    /// A sqlx transaction (PostgreSQL, or SQLite outside the group commit).
    Sqlx(&'c mut AnyConnection),
}

impl Tx<'_> {
    /// Runs the statement `sql` with `args`; returns how many rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
        match self {
            Tx::Sqlite(conn) => read::sqlite_execute(conn, sql, args),
            Tx::Sqlx(conn) => Ok(read::bind(sqlx::query(sql), args)
                .execute(&mut **conn)
                .await?
                .rows_affected()),
        }
    }

    /// The first row `sql` returns with `args`, if any (also for `... RETURNING`).
    pub async fn fetch_optional<T: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(self.rows(sql, args, Some(1)).await?.pop())
    }

    /// Every row `sql` returns with `args`.
    pub async fn fetch_all<T: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, sqlx::Error> {
        self.rows(sql, args, None).await
    }

    async fn rows<T: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg],
        limit: Option<usize>,
    ) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Tx::Sqlite(conn) => read::sqlite_rows(conn, sql, args, limit),
            Tx::Sqlx(conn) => read::sqlx_rows(&mut **conn, sql, args, limit).await,
        }
    }
}
