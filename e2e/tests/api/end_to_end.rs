//! The whole flow across both real services: register, login, CRUD, refresh, logout.

use bookstore_contract::proto::{
    auth::{LogoutRequest, RefreshTokenRequest},
    book::{
        CreateBookRequest, DeleteBookRequest, GetBookRequest, ListBooksRequest, UpdateBookRequest,
    },
};
use prost_types::FieldMask;
use tonic::Code;

use std::time::Duration;

use bookstore_testkit::until_revoked;

use crate::helpers::{bearer, expect_code, sample, Stack};

#[tokio::test]
async fn register_login_crud_refresh_logout() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut books = stack.books().await;
    let token = alice.token();

    let created = books
        .create_book(bearer(
            CreateBookRequest {
                book: Some(sample("The Lathe of Heaven")),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .expect("create")
        .into_inner()
        .book
        .expect("book");
    let mut change = created.clone();
    change.price_cents = 999;
    let updated = books
        .update_book(bearer(
            UpdateBookRequest {
                book: Some(change),
                update_mask: Some(FieldMask {
                    paths: vec!["price_cents".into()],
                }),
            },
            token,
        ))
        .await
        .expect("update")
        .into_inner()
        .book
        .expect("book");
    assert_eq!(updated.price_cents, 999);
    let listed = books
        .list_books(bearer(ListBooksRequest::default(), token))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.books, vec![updated.clone()]);

    let mut auth = stack.auth_client().await;
    let refreshed = auth
        .refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: alice.login.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    let got = books
        .get_book(bearer(
            GetBookRequest {
                id: created.id.clone(),
            },
            &refreshed.access_token,
        ))
        .await
        .expect("refreshed token works at book-service")
        .into_inner()
        .book;
    assert_eq!(got, Some(updated.clone()));
    books
        .delete_book(bearer(
            DeleteBookRequest {
                id: created.id.clone(),
                etag: updated.etag,
            },
            &refreshed.access_token,
        ))
        .await
        .expect("delete");

    auth.logout(LogoutRequest {
        refresh_token: refreshed.refresh_token.clone(),
    })
    .await
    .expect("logout");
    expect_code(
        auth.refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: refreshed.refresh_token,
        })
        .await,
        Code::Unauthenticated,
    );
    // The first access token belongs to the same login session: refused within a second.
    until_revoked(Duration::from_secs(1), || {
        let mut books = books.clone();
        let request = bearer(
            GetBookRequest {
                id: created.id.clone(),
            },
            token,
        );
        async move { books.get_book(request).await }
    })
    .await;
}
