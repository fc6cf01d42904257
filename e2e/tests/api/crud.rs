//! Each BookService RPC's success path, validation and error codes, and owner isolation.

use bookstore_contract::proto::book::{
    Book, CreateBookRequest, DeleteBookRequest, GetBookRequest, ListBooksRequest, UpdateBookRequest,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{bearer, expect_code, sample, Stack};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[tokio::test]
async fn create_sets_server_fields_and_stores_the_isbn_as_isbn_13() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut input = sample("  The Dispossessed  ");
    input.isbn = "0-06-051275-X".into(); // ISBN-10 with an X check digit
    input.id = "client-chosen".into();
    input.owner_id = "someone-else".into();
    let book = stack.create(&alice, input).await;
    assert_eq!(book.title, "The Dispossessed");
    assert_eq!(book.isbn, "9780060512750");
    assert_eq!(book.owner_id, alice.id);
    let id = uuid::Uuid::parse_str(&book.id).expect("uuid");
    assert_eq!(id.get_version_num(), 7);
    assert!(book.create_time.is_some() && book.update_time == book.create_time);
    assert!(!book.etag.is_empty());

    let got = stack.get(&alice, &book.id).await.expect("get");
    assert_eq!(got, book);
}

#[tokio::test]
async fn create_reports_every_field_violation_at_once_and_stores_nothing() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let bad = Book {
        title: "   ".into(),
        author: "x".repeat(201),
        publisher: "p".repeat(201),
        price_cents: -1,
        isbn: "978-0-306-40615-8".into(),
        ..Book::default()
    };
    let mut books = stack.books().await;
    let status = expect_code(
        books
            .create_book(bearer(
                CreateBookRequest {
                    book: Some(bad),
                    request_id: "not-a-uuid".into(),
                },
                alice.token(),
            ))
            .await,
        Code::InvalidArgument,
    );
    let fields = crate::helpers::violated_fields(&status);
    assert_eq!(
        fields,
        [
            "book.title",
            "book.author",
            "book.publisher",
            "book.price_cents",
            "book.isbn",
            "request_id"
        ]
    );
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").domain,
        "book-service"
    );
    expect_code(
        books
            .create_book(bearer(CreateBookRequest::default(), alice.token()))
            .await,
        Code::InvalidArgument,
    );
    let list = books
        .list_books(bearer(ListBooksRequest::default(), alice.token()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total_size, 0);
}

#[tokio::test]
async fn a_second_book_with_the_same_isbn_is_already_exists_but_authors_may_repeat() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let mut first = sample("A Wizard of Earthsea");
    first.isbn = "9780547773742".into();
    stack.create(&alice, first.clone()).await;
    stack.create(&alice, sample("The Tombs of Atuan")).await; // same author
    let mut same_isbn = sample("Another title");
    same_isbn.isbn = "978-0-547-77374-2".into();
    let status = expect_code(
        stack
            .books()
            .await
            .create_book(bearer(
                CreateBookRequest {
                    book: Some(same_isbn.clone()),
                    request_id: String::new(),
                },
                alice.token(),
            ))
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "ISBN_ALREADY_EXISTS"
    );
    // Another owner may have the same ISBN.
    stack.create(&bob, same_isbn).await;
}

#[tokio::test]
async fn get_with_an_unknown_or_malformed_id_is_not_found_and_without_one_invalid_argument() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut books = stack.books().await;
    for id in [uuid::Uuid::now_v7().to_string(), "no-such-book".to_string()] {
        expect_code(
            books
                .get_book(bearer(GetBookRequest { id: id.clone() }, alice.token()))
                .await,
            Code::NotFound,
        );
        expect_code(
            books
                .delete_book(bearer(
                    DeleteBookRequest {
                        id,
                        etag: String::new(),
                    },
                    alice.token(),
                ))
                .await,
            Code::NotFound,
        );
    }
    let status = expect_code(
        books
            .get_book(bearer(GetBookRequest { id: String::new() }, alice.token()))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations[0]
            .field,
        "id"
    );
}

#[tokio::test]
async fn update_changes_only_the_masked_fields_and_bumps_the_etag() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let book = stack.create(&alice, sample("Old title")).await;
    let mut change = book.clone();
    change.title = "New title".into();
    change.price_cents = 1; // not in the mask: ignored
    let updated = stack
        .books()
        .await
        .update_book(bearer(
            UpdateBookRequest {
                book: Some(change),
                update_mask: mask(&["title"]),
            },
            alice.token(),
        ))
        .await
        .expect("update")
        .into_inner()
        .book
        .expect("book");
    assert_eq!(updated.title, "New title");
    assert_eq!(updated.price_cents, book.price_cents);
    assert_ne!(updated.etag, book.etag);
    assert_eq!(updated.create_time, book.create_time);
    let time = |b: &Book| b.update_time.map(|t| (t.seconds, t.nanos));
    assert!(time(&updated) >= time(&book));
}

#[tokio::test]
async fn update_with_a_stale_etag_is_aborted_and_changes_nothing() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let book = stack.create(&alice, sample("Title")).await;
    let mut books = stack.books().await;
    let mut change = book.clone();
    change.price_cents = 100;
    books
        .update_book(bearer(
            UpdateBookRequest {
                book: Some(change.clone()),
                update_mask: mask(&["price_cents"]),
            },
            alice.token(),
        ))
        .await
        .expect("first update with the current etag");
    change.price_cents = 200;
    let status = expect_code(
        books
            .update_book(bearer(
                UpdateBookRequest {
                    book: Some(change),
                    update_mask: mask(&["price_cents"]),
                },
                alice.token(),
            ))
            .await,
        Code::Aborted,
    );
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "ETAG_MISMATCH"
    );
    let now = stack.get(&alice, &book.id).await.expect("get");
    assert_eq!(now.price_cents, 100);
}

#[tokio::test]
async fn update_refuses_a_missing_or_unknown_mask_and_invalid_values() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let book = stack.create(&alice, sample("Title")).await;
    let mut books = stack.books().await;
    for (paths, change) in [
        (vec![], book.clone()),
        (vec!["owner_id"], book.clone()),
        (
            vec!["title"],
            Book {
                title: String::new(),
                ..book.clone()
            },
        ),
        (
            vec!["*"],
            Book {
                price_cents: -5,
                ..book.clone()
            },
        ),
    ] {
        expect_code(
            books
                .update_book(bearer(
                    UpdateBookRequest {
                        book: Some(change),
                        update_mask: mask(&paths),
                    },
                    alice.token(),
                ))
                .await,
            Code::InvalidArgument,
        );
    }
    let mut other = sample("Other");
    other.isbn = "9780306406157".into();
    stack.create(&alice, other).await;
    expect_code(
        books
            .update_book(bearer(
                UpdateBookRequest {
                    book: Some(Book {
                        isbn: "0306406152".into(),
                        ..book.clone()
                    }),
                    update_mask: mask(&["isbn"]),
                },
                alice.token(),
            ))
            .await,
        Code::AlreadyExists,
    );
    let unchanged = stack.get(&alice, &book.id).await.expect("get");
    assert_eq!(unchanged, book);
}

#[tokio::test]
async fn delete_removes_the_book_and_honours_the_etag() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let book = stack.create(&alice, sample("Title")).await;
    let mut books = stack.books().await;
    expect_code(
        books
            .delete_book(bearer(
                DeleteBookRequest {
                    id: book.id.clone(),
                    etag: "v999".into(),
                },
                alice.token(),
            ))
            .await,
        Code::Aborted,
    );
    books
        .delete_book(bearer(
            DeleteBookRequest {
                id: book.id.clone(),
                etag: book.etag.clone(),
            },
            alice.token(),
        ))
        .await
        .expect("delete with the current etag");
    expect_code(
        books
            .get_book(bearer(
                GetBookRequest {
                    id: book.id.clone(),
                },
                alice.token(),
            ))
            .await,
        Code::NotFound,
    );
    expect_code(
        books
            .delete_book(bearer(
                DeleteBookRequest {
                    id: book.id,
                    etag: String::new(),
                },
                alice.token(),
            ))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn another_owners_book_is_not_found_on_every_rpc_and_stays_unchanged() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mallory = stack.user("mallory").await;
    let mut input = sample("Private");
    input.isbn = "9780306406157".into();
    let book = stack.create(&alice, input.clone()).await;
    let mut books = stack.books().await;
    let token = mallory.token();
    expect_code(
        books
            .get_book(bearer(
                GetBookRequest {
                    id: book.id.clone(),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    expect_code(
        books
            .update_book(bearer(
                UpdateBookRequest {
                    book: Some(Book {
                        title: "Pwned".into(),
                        ..book.clone()
                    }),
                    update_mask: mask(&["title"]),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    expect_code(
        books
            .delete_book(bearer(
                DeleteBookRequest {
                    id: book.id.clone(),
                    etag: String::new(),
                },
                token,
            ))
            .await,
        Code::NotFound,
    );
    let listed = books
        .list_books(bearer(ListBooksRequest::default(), token))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.books.is_empty() && listed.total_size == 0);
    expect_code(
        books
            .list_books(bearer(
                ListBooksRequest {
                    owner_id: alice.id.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await,
        Code::PermissionDenied,
    );
    // Mallory's own book with the same ISBN is fine (uniqueness is per owner).
    stack.create(&mallory, input).await;
    let still = stack.get(&alice, &book.id).await.expect("get");
    assert_eq!(still, book);
}

#[tokio::test]
async fn an_admin_may_list_another_owners_books() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    stack.user("root").await;
    stack.create(&alice, sample("Alice's")).await;
    let admin = stack.auth_admin().await;
    assert!(admin.promote("root").await.expect("promote"));
    let admin = stack.user_login("root").await;
    let listed = stack
        .books()
        .await
        .list_books(bearer(
            ListBooksRequest {
                owner_id: alice.id.clone(),
                ..Default::default()
            },
            admin.token(),
        ))
        .await
        .expect("admin lists alice's books")
        .into_inner();
    assert_eq!(listed.total_size, 1);
    assert_eq!(listed.books[0].owner_id, alice.id);
}

#[tokio::test]
async fn calls_without_a_token_are_unauthenticated_before_anything_runs() {
    let stack = Stack::spawn().await;
    let status = expect_code(
        stack
            .books()
            .await
            .list_books(ListBooksRequest::default())
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").domain,
        "book-service"
    );
}

#[tokio::test]
async fn errors_stay_small_whatever_the_input() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let book = stack.create(&alice, sample("Small errors")).await;
    let bogus: Vec<String> = (0..20_000).map(|i| format!("x{i}")).collect();
    let mut books = stack.books().await;
    let request = |paths: Vec<String>, title: String| {
        bearer(
            UpdateBookRequest {
                book: Some(Book {
                    id: book.id.clone(),
                    title,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask { paths }),
            },
            alice.token(),
        )
    };
    // Too many mask paths: one violation, however many there are.
    let status = expect_code(
        books.update_book(request(bogus, "x".into())).await,
        Code::InvalidArgument,
    );
    assert!(status.message().len() <= 1024, "{}", status.message().len());
    assert!(
        status.message().contains("at most 16"),
        "{}",
        status.message()
    );
    // Sixteen bad paths and a bad title: every violation, each bounded, all under 1 KiB.
    let sixteen: Vec<String> = (0..16)
        .map(|i| format!("{}{i}", "p".repeat(5_000)))
        .collect();
    let status = expect_code(
        books.update_book(request(sixteen, " ".into())).await,
        Code::InvalidArgument,
    );
    assert!(status.message().len() <= 1024, "{}", status.message().len());
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations.len(), 16);
    assert!(
        status.details().len() < 8 * 1024,
        "{}",
        status.details().len()
    );
}

#[tokio::test]
async fn the_books_database_is_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    if bookstore_testkit::database::postgres().is_some() {
        return; // about SQLite's files; PostgreSQL keeps its own
    }
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    stack.create(&alice, sample("Private")).await;
    for file in ["books.db", "books.db-wal", "books.db-shm"] {
        let path = stack.dir.path().join(file);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}
