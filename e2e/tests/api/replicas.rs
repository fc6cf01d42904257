//! Several book-service replicas on one database (PostgreSQL in CI's second run, one SQLite file
//! in the first) behind one auth-service: an etag still has one winner, a request_id still
//! stores one book, a page token made by one replica pages on another, replicas started together
//! on a fresh database migrate it once, and a list's count is exact on the replica that wrote
//! and at most a second behind on another. Calls alternate between replicas.

use std::time::Duration;

use bookstore_contract::proto::book::{
    book_service_client::BookServiceClient, CreateBookRequest, ListBooksRequest, UpdateBookRequest,
};
use bookstore_testkit::Server;
use futures::future::join_all;
use prost_types::FieldMask;
use tonic::{transport::Channel, Code};

use crate::helpers::{bearer, sample, start_book, start_book_in, wait_serving, Stack};

/// The stack's book-service and `extra` more replicas on its database, all SERVING, with a
/// client for each (the stack's first).
async fn replicas(stack: &Stack, extra: usize) -> (Vec<Server>, Vec<BookServiceClient<Channel>>) {
    let servers = join_all((0..extra).map(|_| start_book(stack.dir.path(), stack.auth.addr))).await;
    let mut clients = vec![stack.books().await];
    for server in &servers {
        wait_serving(server.addr, Duration::from_secs(10)).await;
        clients.push(
            BookServiceClient::connect(server.url())
                .await
                .expect("connect replica"),
        );
    }
    (servers, clients)
}

#[tokio::test]
async fn of_twenty_updates_with_one_etag_over_three_replicas_exactly_one_wins() {
    let stack = Stack::spawn().await;
    let (_servers, clients) = replicas(&stack, 2).await;
    let alice = stack.user("alice").await;
    let book = stack.create(&alice, sample("Contended")).await;
    let results = join_all((0..20).map(|i| {
        let mut client = clients[i % clients.len()].clone();
        let mut change = book.clone();
        change.price_cents = i64::try_from(i).expect("small");
        let token = alice.token().to_string();
        async move {
            let mask = FieldMask {
                paths: vec!["price_cents".into()],
            };
            let request = UpdateBookRequest {
                book: Some(change),
                update_mask: Some(mask),
            };
            client.update_book(bearer(request, &token)).await
        }
    }))
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let aborted = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Aborted))
        .count();
    assert_eq!((ok, aborted), (1, 19), "{results:?}");
}

#[tokio::test]
async fn one_request_id_sent_twenty_times_over_three_replicas_stores_one_book() {
    let stack = Stack::spawn().await;
    let (_servers, clients) = replicas(&stack, 2).await;
    let alice = stack.user("alice").await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let results = join_all((0..20).map(|i| {
        let mut client = clients[i % clients.len()].clone();
        let request = CreateBookRequest {
            book: Some(sample("Once")),
            request_id: request_id.clone(),
        };
        let token = alice.token().to_string();
        async move { client.create_book(bearer(request, &token)).await }
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = results
        .iter()
        .map(|r| {
            let book = r.as_ref().expect("every retry succeeds").get_ref();
            book.book.as_ref().expect("book").id.clone()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let mut books = stack.books().await;
    let listed = books
        .list_books(bearer(ListBooksRequest::default(), alice.token()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_size, 1);
}

#[tokio::test]
async fn a_page_token_made_by_one_replica_pages_on_another() {
    let stack = Stack::spawn().await;
    let (_servers, mut clients) = replicas(&stack, 1).await;
    let alice = stack.user("alice").await;
    for i in 0..5 {
        stack.create(&alice, sample(&format!("Book {i}"))).await;
    }
    let request = |page_token: String| {
        bearer(
            ListBooksRequest {
                page_size: 3,
                page_token,
                ..Default::default()
            },
            alice.token(),
        )
    };
    let first = clients[0]
        .list_books(request(String::new()))
        .await
        .expect("first page")
        .into_inner();
    let second = clients[1]
        .list_books(request(first.next_page_token.clone()))
        .await
        .expect("second page on the other replica")
        .into_inner();
    let titles: Vec<String> = first
        .books
        .iter()
        .chain(&second.books)
        .map(|b| b.title.clone())
        .collect();
    assert_eq!(titles, ["Book 0", "Book 1", "Book 2", "Book 3", "Book 4"]);
    assert!(second.next_page_token.is_empty());
}

#[tokio::test]
async fn total_size_is_exact_after_a_write_through_the_same_replica_and_within_a_second_on_another()
{
    let stack = Stack::spawn().await;
    let (_servers, mut clients) = replicas(&stack, 1).await;
    let alice = stack.user("alice").await;
    let total = |client: &mut BookServiceClient<Channel>| {
        let mut client = client.clone();
        let token = alice.token().to_string();
        async move {
            client
                .list_books(bearer(ListBooksRequest::default(), &token))
                .await
                .expect("list")
                .into_inner()
                .total_size
        }
    };
    // Both replicas count (and keep) alice's empty list.
    assert_eq!(total(&mut clients[0]).await, 0);
    assert_eq!(total(&mut clients[1]).await, 0);
    // A create through replica 0 (the stack's): replica 0 counts it at once.
    clients[0]
        .create_book(bearer(
            CreateBookRequest {
                book: Some(sample("Counted")),
                request_id: String::new(),
            },
            alice.token(),
        ))
        .await
        .expect("create");
    assert_eq!(total(&mut clients[0]).await, 1, "exact after its own write");
    // Replica 1 may answer from its kept count for up to a second (book_service::total_sizes::
    // FRESH_FOR), never longer; the deadline leaves a loaded machine two more to answer.
    let written = std::time::Instant::now();
    loop {
        let seen = total(&mut clients[1]).await;
        if seen == 1 {
            break;
        }
        assert_eq!(seen, 0);
        assert!(
            written.elapsed() < book_service::total_sizes::FRESH_FOR + Duration::from_secs(2),
            "replica 1 still says 0 after {:?}",
            written.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn three_book_services_starting_together_on_a_fresh_database_all_serve() {
    let stack = Stack::spawn().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let servers = join_all(
        (0..3).map(|_| start_book_in(dir.path(), stack.dir.path(), stack.auth.addr, |_| {})),
    )
    .await;
    let alice = stack.user("alice").await;
    for server in &servers {
        wait_serving(server.addr, Duration::from_secs(10)).await;
        let mut client = BookServiceClient::connect(server.url())
            .await
            .expect("connect");
        let request = CreateBookRequest {
            book: Some(sample("Fresh")),
            request_id: String::new(),
        };
        client
            .create_book(bearer(request, alice.token()))
            .await
            .expect("create");
    }
}
