//! Races: etags, idempotent retries and many concurrent writers.

use bookstore_contract::proto::book::{CreateBookRequest, ListBooksRequest, UpdateBookRequest};
use futures::future::join_all;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{bearer, expect_code, sample, Stack};

#[tokio::test]
async fn twenty_concurrent_updates_with_one_etag_give_one_ok_and_nineteen_aborted() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let book = stack.create(&alice, sample("Contended")).await;
    let client = stack.books().await;
    let calls = (0..20).map(|i| {
        let mut client = client.clone();
        let mut change = book.clone();
        change.price_cents = i;
        let token = alice.token().to_string();
        async move {
            client
                .update_book(bearer(
                    UpdateBookRequest {
                        book: Some(change),
                        update_mask: Some(FieldMask {
                            paths: vec!["price_cents".into()],
                        }),
                    },
                    &token,
                ))
                .await
        }
    });
    let results = join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let aborted = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Aborted))
        .count();
    assert_eq!((ok, aborted), (1, 19), "{results:?}");
}

#[tokio::test]
async fn a_retried_create_returns_the_same_book_and_stores_one_row() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut books = stack.books().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = || CreateBookRequest {
        book: Some(sample("Once")),
        request_id: request_id.clone(),
    };
    let first = books
        .create_book(bearer(request(), alice.token()))
        .await
        .expect("first")
        .into_inner()
        .book;
    let retry = books
        .create_book(bearer(request(), alice.token()))
        .await
        .expect("retry")
        .into_inner()
        .book;
    assert_eq!(first, retry);
    let different = CreateBookRequest {
        book: Some(sample("Different")),
        request_id: request_id.clone(),
    };
    expect_code(
        books.create_book(bearer(different, alice.token())).await,
        Code::InvalidArgument,
    );
    let listed = books
        .list_books(bearer(ListBooksRequest::default(), alice.token()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_size, 1);
    // The same request_id from another user is that user's own request.
    let bob = stack.user("bob").await;
    let bobs = books
        .create_book(bearer(request(), bob.token()))
        .await
        .expect("bob")
        .into_inner()
        .book
        .expect("book");
    assert_eq!(bobs.owner_id, bob.id);
}

#[tokio::test]
async fn two_hundred_concurrent_creates_over_64_clients_all_succeed() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut clients = Vec::new();
    for _ in 0..64 {
        clients.push(stack.books().await);
    }
    let calls = (0..200).map(|i| {
        let mut client = clients[i % 64].clone();
        let token = alice.token().to_string();
        async move {
            client
                .create_book(bearer(
                    CreateBookRequest {
                        book: Some(sample(&format!("Book {i}"))),
                        request_id: uuid::Uuid::new_v4().to_string(),
                    },
                    &token,
                ))
                .await
        }
    });
    let results = join_all(calls).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    let listed = stack
        .books()
        .await
        .list_books(bearer(ListBooksRequest::default(), alice.token()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_size, 200);
}
