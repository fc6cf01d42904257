//! What a database error means to a caller: full storage and a busy or unreachable database
//! are retryable (UNAVAILABLE), a UNIQUE violation is the caller's conflict, anything else is
//! ours. Both backends' codes, in one place, and rusqlite's errors made into sqlx's
//! ([`sqlite_error`]) so that the same checks read them.

use std::borrow::Cow;

use sqlx::error::{DatabaseError, ErrorKind};

/// Whether `err` says the database's storage is full (SQLITE_FULL; PostgreSQL's 53100
/// disk_full): retryable once space returns, so callers get UNAVAILABLE like a busy database.
pub fn is_full(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        {
            Some(pg) => pg.code() == "53100",
            None => matches!(
                db.code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .map(|c| c & 0xff),
                Some(13)
            ),
        },
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        _ => false,
    }
}

/// Whether `err` is worth retrying later: a lock held past the timeout, no free connection, or
/// a PostgreSQL server that is unreachable, restarting or resolving a conflict.
pub fn is_busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                // 08: connection exception; 53: insufficient resources; 57P0x: shutting down
                // or starting up; 40001/40P01: serialization failure, deadlock; 55P03: lock
                // not available.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || matches!(code, "40001" | "40P01" | "55P03")
            } else {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
                matches!(
                    db.code()
                        .and_then(|c| c.parse::<i32>().ok())
                        .map(|c| c & 0xff),
                    Some(5 | 6)
                )
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Whether `err` is a UNIQUE constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// One line saying what went wrong, for a start that fails: the server's message for a
/// database error (wrong password, missing database), never a debug dump.
pub fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Migrate(m) => format!("migrations failed: {m}"),
        other => other.to_string(),
    }
}

/// A rusqlite error as sqlx's SQLite driver would report it: a database error whose code is
/// SQLite's extended result code (so [`is_busy`], [`is_full`] and [`is_unique_violation`] read
/// it as they read sqlx's), anything else (a bad column type, a missing parameter: our bugs) a
/// protocol error. Its text reaches the log only ([`super::database_status`]).
pub fn sqlite_error(err: rusqlite::Error) -> sqlx::Error {
    match err {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(SqliteFailure {
                code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        other => sqlx::Error::Protocol(format!("SQLite: {other}")),
    }
}

/// A failed SQLite call, with its extended result code.
#[derive(Debug)]
struct SqliteFailure {
    code: i32,
    message: String,
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SQLite error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        // SQLITE_CONSTRAINT_* extended codes.
        match self.code {
            2067 | 1555 => ErrorKind::UniqueViolation,
            787 => ErrorKind::ForeignKeyViolation,
            1299 => ErrorKind::NotNullViolation,
            275 => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rusqlite's errors read as sqlx's do: busy is retryable, a full disk is full, a UNIQUE
    /// violation is the caller's conflict.
    #[test]
    fn rusqlite_errors_are_classified_like_sqlx_ones() {
        let conn = rusqlite::Connection::open_in_memory().expect("memory");
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, u TEXT UNIQUE)")
            .expect("table");
        conn.execute("INSERT INTO t (u) VALUES ('a')", [])
            .expect("insert");
        let unique = sqlite_error(
            conn.execute("INSERT INTO t (u) VALUES ('a')", [])
                .expect_err("a second row with the same unique value"),
        );
        assert!(is_unique_violation(&unique), "{unique}");
        assert!(!is_busy(&unique) && !is_full(&unique), "{unique}");
        let code = |primary: i32, extended: i32| {
            sqlite_error(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error {
                    code: rusqlite::ffi::ErrorCode::Unknown,
                    extended_code: extended | primary,
                },
                None,
            ))
        };
        assert!(is_busy(&code(5, 0)) && is_busy(&code(6, 256)));
        assert!(is_full(&code(13, 0)) && !is_busy(&code(13, 0)));
        let bug = sqlite_error(rusqlite::Error::InvalidColumnIndex(9));
        assert!(!is_busy(&bug) && !is_full(&bug) && !is_unique_violation(&bug));
    }
}
