//! The database a test runs on: SQLite files by default, or a real PostgreSQL server when
//! `BOOKSTORE_TEST_POSTGRES` holds the URL of one of its databases (`.ci/postgres` starts one
//! and sets it). One switch runs the whole suite on either backend.

use std::path::Path;

use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};

/// The environment variable that switches the suite to PostgreSQL.
pub const POSTGRES_ENV: &str = "BOOKSTORE_TEST_POSTGRES";

/// The PostgreSQL server the suite runs on, if any.
pub fn postgres() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.is_empty())
}

/// The database URL for `file` in the test directory `dir`: `sqlite://dir/file`, or on
/// PostgreSQL a database of its own named after `dir` and `file` (created on first use), so a
/// test that restarts a service on the same `dir` finds its data again.
pub fn database_url(dir: &Path, file: &str) -> String {
    match postgres() {
        None => bookstore_kit::storage::sqlite_url(dir, file),
        Some(server) => {
            let digest = Sha256::digest(dir.join(file).as_os_str().as_encoded_bytes());
            let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            let name = format!("bookstore_test_{name}");
            create_database(&server, &name);
            with_database(&server, &name)
        }
    }
}

/// `server` (a `postgres://…/db` URL) with its database replaced by `name`.
pub fn with_database(server: &str, name: &str) -> String {
    let (base, _) = server
        .rsplit_once('/')
        .expect("a postgres:// URL names a database");
    format!("{base}/{name}")
}

/// Creates the database `name` on `server` unless it exists. Runs on a thread of its own, so
/// synchronous test helpers can call it from inside a runtime.
pub fn create_database(server: &str, name: &str) {
    let server = server.to_string();
    let name = name.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut conn = PgConnection::connect(&server)
                .await
                .unwrap_or_else(|e| panic!("cannot reach {POSTGRES_ENV} ({server}): {e}"));
            match conn
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
            {
                Ok(_) => {}
                // It exists already (a restart on the same directory), or another thread made it
                // just now.
                Err(sqlx::Error::Database(e))
                    if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
                Err(e) => panic!("cannot create database {name}: {e}"),
            }
        });
    })
    .join()
    .expect("creating the test database");
}
