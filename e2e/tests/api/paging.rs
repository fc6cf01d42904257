//! ListBooks: keyset paging, filters, total_size and page-token checks.

use bookstore_contract::proto::book::{Book, ListBooksRequest, ListBooksResponse};
use tonic::Code;

use crate::helpers::{bearer, expect_code, sample, Caller, Stack};

async fn list(stack: &Stack, caller: &Caller, request: ListBooksRequest) -> ListBooksResponse {
    stack
        .books()
        .await
        .list_books(bearer(request, caller.token()))
        .await
        .expect("list")
        .into_inner()
}

#[tokio::test]
async fn paging_120_books_by_50_with_an_insert_midway_repeats_and_skips_nothing() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut created = Vec::new();
    for i in 0..120 {
        created.push(
            stack
                .create(&alice, sample(&format!("Book {i:03}")))
                .await
                .id,
        );
    }
    let mut seen: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(
            &stack,
            &alice,
            ListBooksRequest {
                page_size: 50,
                page_token: token,
                ..Default::default()
            },
        )
        .await;
        pages += 1;
        assert!(page.books.len() <= 50);
        seen.extend(page.books.into_iter().map(|b| b.id));
        if pages == 1 {
            assert_eq!(page.total_size, 120);
            // A book added during the iteration sorts after everything seen so far.
            created.push(stack.create(&alice, sample("Added midway")).await.id);
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every book once, in creation order");
}

#[tokio::test]
async fn author_and_title_filters_are_case_insensitive_and_counted() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut ursula = sample("The Left Hand of Darkness");
    ursula.author = "Ursula K. Le Guin".into();
    let mut other = sample("Darkness at Noon");
    other.author = "Arthur Koestler".into();
    let mut unicode = sample("ÉTUDE EN ROUGE");
    unicode.author = "Émile Zola".into();
    for book in [ursula, other, unicode, sample("A Wizard of Earthsea")] {
        stack.create(&alice, book).await;
    }
    let by_author = list(
        &stack,
        &alice,
        ListBooksRequest {
            author: "URSULA k. le guin".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_author.total_size, 2);
    assert!(by_author
        .books
        .iter()
        .all(|b| b.author == "Ursula K. Le Guin"));
    let by_title = list(
        &stack,
        &alice,
        ListBooksRequest {
            title_query: "darkNESS".into(),
            ..Default::default()
        },
    )
    .await;
    let titles: Vec<_> = by_title.books.iter().map(|b| b.title.as_str()).collect();
    assert_eq!(titles, ["The Left Hand of Darkness", "Darkness at Noon"]);
    assert_eq!(by_title.total_size, 2);
    let both = list(
        &stack,
        &alice,
        ListBooksRequest {
            author: "ursula k. le guin".into(),
            title_query: "darkness".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(both.total_size, 1);
    let accents = list(
        &stack,
        &alice,
        ListBooksRequest {
            author: "émile zola".into(),
            title_query: "étude".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(accents.total_size, 1);
    let none = list(
        &stack,
        &alice,
        ListBooksRequest {
            author: "ursula".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(none.total_size, 0, "author is an exact match");
}

#[tokio::test]
async fn page_size_zero_means_50_and_negative_is_invalid_argument() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    for i in 0..51 {
        stack
            .create(
                &alice,
                Book {
                    title: format!("{i}"),
                    ..sample("x")
                },
            )
            .await;
    }
    let page = list(&stack, &alice, ListBooksRequest::default()).await;
    assert_eq!(page.books.len(), 50);
    assert!(!page.next_page_token.is_empty());
    let big = list(
        &stack,
        &alice,
        ListBooksRequest {
            page_size: 5000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(big.books.len(), 51, "clamped to 1000, which holds all 51");
    assert!(big.next_page_token.is_empty());
    expect_code(
        stack
            .books()
            .await
            .list_books(bearer(
                ListBooksRequest {
                    page_size: -1,
                    ..Default::default()
                },
                alice.token(),
            ))
            .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn forged_foreign_or_refiltered_page_tokens_are_invalid_argument() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    for i in 0..3 {
        stack.create(&alice, sample(&format!("A{i}"))).await;
        stack.create(&bob, sample(&format!("B{i}"))).await;
    }
    let page = list(
        &stack,
        &alice,
        ListBooksRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await;
    let token = page.next_page_token;
    assert!(!token.is_empty());
    let (body, mac) = token.split_once('.').expect("token shape");
    let mut tampered_mac = mac.to_string();
    tampered_mac.replace_range(0..1, if mac.starts_with('A') { "B" } else { "A" });
    let mut books = stack.books().await;
    for (who, request) in [
        (
            &alice,
            ListBooksRequest {
                page_size: 1,
                page_token: "garbage".into(),
                ..Default::default()
            },
        ),
        (
            &alice,
            ListBooksRequest {
                page_size: 1,
                page_token: format!("{body}.{tampered_mac}"),
                ..Default::default()
            },
        ),
        (
            &alice,
            ListBooksRequest {
                page_size: 1,
                page_token: format!("{body}x.{mac}"),
                ..Default::default()
            },
        ),
        (
            &alice,
            ListBooksRequest {
                page_size: 1,
                page_token: token.clone(),
                author: "someone".into(),
                ..Default::default()
            },
        ),
        (
            &bob,
            ListBooksRequest {
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            },
        ),
    ] {
        expect_code(
            books.list_books(bearer(request, who.token())).await,
            Code::InvalidArgument,
        );
    }
    // The genuine token still works.
    let next = list(
        &stack,
        &alice,
        ListBooksRequest {
            page_size: 1,
            page_token: token,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(next.books.len(), 1);
}
