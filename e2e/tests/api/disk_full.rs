//! A full disk under book-service's SQLite file (a small tmpfs, filled up): writes that cannot
//! commit are UNAVAILABLE with a clear log line, nothing acknowledged is lost, and the service
//! recovers by itself once space returns. Needs root to mount the tmpfs, so it is `#[ignore]`d
//! in a plain `cargo test`; `.ci/test` runs it (`cargo nextest run --run-ignored only`).

use std::{io::Write, path::Path, time::Duration};

use bookstore_contract::proto::book::{
    book_service_client::BookServiceClient, CreateBookRequest, ListBooksRequest,
};
use bookstore_testkit::{any_port, workspace_binary, ChildService};
use tonic::{transport::Channel, Code};

use crate::helpers::{bearer, register_and_login, sample, start_auth, wait_serving};

/// A tmpfs of `size` mounted at `path`, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

async fn create(
    books: &mut BookServiceClient<Channel>,
    token: &str,
    n: usize,
) -> Result<String, tonic::Status> {
    let mut book = sample(&format!("{n:0>190}"));
    book.publisher = "p".repeat(200);
    books
        .create_book(bearer(
            CreateBookRequest {
                book: Some(book),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().book.expect("book").id)
}

#[tokio::test]
#[ignore = "needs root: mounts a tmpfs (.ci/test runs it)"]
async fn a_full_disk_answers_unavailable_loses_nothing_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = start_auth(dir.path(), any_port()).await;
    let mount = dir.path().join("small");
    let _tmpfs = Tmpfs::mount(&mount, "3m");
    let db = format!("sqlite://{}", mount.join("books.db").display());
    let auth_url = auth.url();
    let book = crate::helpers::start_book_child(&db, &auth_url, dir.path(), &[]).await;
    wait_serving(book.addr.parse().expect("addr"), Duration::from_secs(10)).await;
    let alice = register_and_login(auth.addr, "alice").await;
    let mut books = BookServiceClient::connect(book.url())
        .await
        .expect("connect");
    let mut acknowledged = vec![create(&mut books, alice.token(), 0)
        .await
        .expect("a first book")];

    // Fill the disk, then write until a write cannot commit.
    let filler = mount.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    while file.write_all(&[0u8; 64 * 1024]).is_ok() {}
    let _ = file.sync_all();
    let mut refused = None;
    for n in 1..20_000 {
        match create(&mut books, alice.token(), n).await {
            Ok(id) => acknowledged.push(id),
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("a write failed on the full disk");
    assert!(
        matches!(refused.code(), Code::Unavailable | Code::ResourceExhausted),
        "a full disk answered {refused:?}"
    );
    let log = book
        .wait_for_log_containing("storage is full")
        .await
        .join("\n");
    assert!(log.contains("storage is full"), "no clear log line: {log}");

    // Space returns: writes succeed again, without a restart.
    drop(file);
    std::fs::remove_file(&filler).expect("free the space");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match create(&mut books, alice.token(), 99_999).await {
            Ok(id) => {
                acknowledged.push(id);
                break;
            }
            Err(status) => assert!(
                tokio::time::Instant::now() < deadline,
                "not recovered once space returned: {status:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing acknowledged was lost.
    let listed = books
        .list_books(bearer(
            ListBooksRequest {
                page_size: 1000,
                ..Default::default()
            },
            alice.token(),
        ))
        .await
        .expect("list")
        .into_inner();
    let mut stored: Vec<String> = listed.books.into_iter().map(|b| b.id).collect();
    let mut expected = acknowledged.clone();
    stored.sort();
    expected.sort();
    assert!(
        expected.iter().all(|id| stored.contains(id)),
        "acknowledged books lost: {} acknowledged, {} stored",
        expected.len(),
        stored.len()
    );
}

#[tokio::test]
#[ignore = "needs root: mounts a tmpfs (.ci/test runs it)"]
async fn auth_service_on_a_full_disk_answers_unavailable_and_recovers_when_space_returns() {
    use bookstore_contract::proto::auth::{
        auth_service_client::AuthServiceClient, RegisterRequest,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mount = dir.path().join("small");
    let _tmpfs = Tmpfs::mount(&mount, "3m");
    let db = format!("sqlite://{}", mount.join("auth.db").display());
    let auth = ChildService::start(
        &workspace_binary("auth-service"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
            "--register-limit",
            "100000",
        ],
    );
    wait_serving(auth.addr.parse().expect("addr"), Duration::from_secs(10)).await;
    let mut client = AuthServiceClient::connect(auth.url())
        .await
        .expect("connect");
    let register = |n: usize| RegisterRequest {
        username: format!("user{n}"),
        password: bookstore_testkit::PASSWORD.into(),
    };
    client.register(register(0)).await.expect("a first user");
    let filler = mount.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    while file.write_all(&[0u8; 64 * 1024]).is_ok() {}
    let _ = file.sync_all();
    let mut registered = vec![0];
    let mut refused = None;
    for n in 1..5_000 {
        match client.register(register(n)).await {
            Ok(_) => registered.push(n),
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("a write failed on the full disk");
    assert!(
        matches!(refused.code(), Code::Unavailable | Code::ResourceExhausted),
        "a full disk answered {refused:?}"
    );
    let log = auth
        .wait_for_log_containing("storage is full")
        .await
        .join("\n");
    assert!(log.contains("storage is full"), "no clear log line: {log}");
    drop(file);
    std::fs::remove_file(&filler).expect("free the space");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Err(status) = client.register(register(99_999)).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not recovered once space returned: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every acknowledged registration is there: each name is now taken.
    for n in registered {
        let again = client.register(register(n)).await;
        assert_eq!(
            again.expect_err("taken").code(),
            Code::AlreadyExists,
            "user{n}"
        );
    }
}
