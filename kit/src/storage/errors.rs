//! What a database error means to a caller: full storage and a busy or unreachable database
//! are retryable (UNAVAILABLE), a UNIQUE violation is the caller's conflict, anything else is
//! ours. Both backends' codes, in one place.

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
