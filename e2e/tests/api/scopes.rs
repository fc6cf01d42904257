//! Scopes at book-service: every BookService RPC against every relevant scope combination (a
//! table), a service client's own books, and a deleted client refused within a second.

use std::time::Duration;

use bookstore_contract::proto::{
    auth::{IssueClientTokenRequest, LoginRequest},
    book::{
        CreateBookRequest, DeleteBookRequest, GetBookRequest, ListBooksRequest, UpdateBookRequest,
    },
};
use bookstore_testkit::{reason, until_revoked, PASSWORD};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{bearer, sample, Stack};

/// The RPCs, the scope each needs, and a call of it with `token` on `book_id`.
#[derive(Debug, Clone, Copy)]
enum Rpc {
    Create,
    Get,
    List,
    ListOtherOwner,
    Update,
    Delete,
}

impl Rpc {
    const ALL: [Rpc; 6] = [
        Rpc::Create,
        Rpc::Get,
        Rpc::List,
        Rpc::ListOtherOwner,
        Rpc::Update,
        Rpc::Delete,
    ];

    fn needs(self) -> &'static str {
        match self {
            Rpc::Get | Rpc::List => "books:read",
            Rpc::Create | Rpc::Update | Rpc::Delete => "books:write",
            Rpc::ListOtherOwner => "books:admin",
        }
    }

    async fn call(
        self,
        stack: &Stack,
        token: &str,
        book_id: &str,
        other: &str,
    ) -> Result<(), tonic::Status> {
        let mut books = stack.books().await;
        match self {
            Rpc::Create => books
                .create_book(bearer(
                    CreateBookRequest {
                        book: Some(sample("Scoped")),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map(drop),
            Rpc::Get => books
                .get_book(bearer(GetBookRequest { id: book_id.into() }, token))
                .await
                .map(drop),
            Rpc::List => books
                .list_books(bearer(ListBooksRequest::default(), token))
                .await
                .map(drop),
            Rpc::ListOtherOwner => books
                .list_books(bearer(
                    ListBooksRequest {
                        owner_id: other.into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map(drop),
            Rpc::Update => {
                let mut book = sample("Renamed");
                book.id = book_id.into();
                books
                    .update_book(bearer(
                        UpdateBookRequest {
                            book: Some(book),
                            update_mask: Some(prost_types::FieldMask {
                                paths: vec!["title".into()],
                            }),
                        },
                        token,
                    ))
                    .await
                    .map(drop)
            }
            // A book id that does not exist: with the scope the answer is NOT_FOUND, so the
            // table's books stay for the other rows.
            Rpc::Delete => books
                .delete_book(bearer(
                    DeleteBookRequest {
                        id: uuid::Uuid::now_v7().to_string(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map(drop),
        }
    }
}

#[tokio::test]
async fn every_book_rpc_needs_its_scope_whatever_else_the_token_holds() {
    let stack = Stack::spawn().await;
    stack.user("root").await;
    let member = stack.user("member").await;
    assert!(stack
        .auth_admin()
        .await
        .promote("root")
        .await
        .expect("promote"));
    let combinations: &[&[&str]] = &[
        &["books:read"],
        &["books:write"],
        &["books:read", "books:write"],
        &["books:admin"],
        &["books:read", "books:admin"],
        &["users:read"],
        &[],
    ];
    let mut auth = stack.auth_client().await;
    for scopes in combinations {
        let token = auth
            .login(LoginRequest {
                username: "root".into(),
                password: PASSWORD.into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token;
        // An admin logging in without `scopes` holds every user scope.
        let held: Vec<&str> = if scopes.is_empty() {
            vec!["books:read", "books:write", "books:admin", "users:read"]
        } else {
            scopes.to_vec()
        };
        let full = stack.user_login("root").await;
        let book = stack.create(&full, sample("Target")).await;
        for rpc in Rpc::ALL {
            let answer = rpc.call(&stack, &token, &book.id, &member.id).await;
            let allowed = held.contains(&rpc.needs())
                && (!matches!(rpc, Rpc::ListOtherOwner) || held.contains(&"books:read"));
            match answer {
                Err(status) if status.code() == Code::PermissionDenied => {
                    assert!(!allowed, "{rpc:?} with {scopes:?} refused: {status:?}");
                    assert_eq!(reason(&status), "INSUFFICIENT_SCOPE");
                    let info = status.get_details_error_info().expect("ErrorInfo");
                    let required = info.metadata.get("required_scope").expect("required_scope");
                    assert!(
                        !held.contains(&required.as_str()),
                        "{rpc:?}: named {required}"
                    );
                }
                Ok(()) => assert!(allowed, "{rpc:?} with {scopes:?} allowed"),
                Err(status) => {
                    assert!(allowed, "{rpc:?} with {scopes:?}: {status:?}");
                    assert_eq!(status.code(), Code::NotFound, "{rpc:?}: {status:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_service_client_keeps_its_own_books_and_is_refused_within_a_second_once_deleted() {
    let stack = Stack::spawn().await;
    let admin = stack.auth_admin().await;
    let (client, secret) = admin
        .create_client("importer", "books:read books:write", None)
        .await
        .expect("create client");
    let token = stack
        .auth_client()
        .await
        .issue_client_token(IssueClientTokenRequest {
            client_id: client.id.clone(),
            client_secret: secret,
            scopes: Vec::new(),
        })
        .await
        .expect("client token")
        .into_inner()
        .access_token;
    let mut books = stack.books().await;
    let created = books
        .create_book(bearer(
            CreateBookRequest {
                book: Some(sample("Imported")),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("the client's own book")
        .into_inner()
        .book
        .expect("book");
    assert_eq!(created.owner_id, client.id);
    // Not another user's: the client's books are its own.
    let alice = stack.user("alice").await;
    let listed = books
        .list_books(bearer(ListBooksRequest::default(), alice.token()))
        .await
        .expect("alice's list")
        .into_inner();
    assert_eq!(listed.total_size, 0);

    admin.delete_client("importer").await.expect("delete");
    until_revoked(Duration::from_secs(1), || {
        let mut books = books.clone();
        let request = bearer(ListBooksRequest::default(), &token);
        async move { books.list_books(request).await }
    })
    .await;
}
