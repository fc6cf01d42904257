//! Revocation felt everywhere within a second: book-service verifies locally, learns
//! revocations from auth-service's stream, and refuses revoked tokens, cached ones included.

use std::time::Duration;

use bookstore_contract::proto::{
    auth::{
        user_service_client::UserServiceClient, ChangePasswordRequest, LoginRequest, LogoutRequest,
        RefreshTokenRequest,
    },
    book::{book_service_client::BookServiceClient, ListBooksRequest},
};
use bookstore_testkit::{any_port, reason, until_revoked, Server, PASSWORD};
use tonic::Code;

use crate::helpers::{
    auth_config, bearer, expect_code, login_with, register_and_login, start_auth, start_book,
    start_book_in, wait_serving, Caller, Stack,
};

/// Polls book-service with `caller`'s token until it is refused as revoked (at most `within`).
async fn refused_at_books(stack: &Stack, token: &str, within: Duration) -> Duration {
    let books = stack.books().await;
    until_revoked(within, || {
        let mut books = books.clone();
        let request = bearer(ListBooksRequest::default(), token);
        async move { books.list_books(request).await }
    })
    .await
}

/// Lists `caller`'s books once: the token is now in book-service's verified-token cache.
async fn cached(stack: &Stack, caller: &Caller) {
    stack
        .books()
        .await
        .list_books(bearer(ListBooksRequest::default(), caller.token()))
        .await
        .expect("a live token is accepted");
}

#[tokio::test]
async fn a_logout_is_felt_at_book_service_within_a_second_even_for_a_cached_token() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let other_session = stack.user_login("alice").await;
    cached(&stack, &alice).await;
    stack
        .auth_client()
        .await
        .logout(LogoutRequest {
            refresh_token: alice.login.refresh_token.clone(),
        })
        .await
        .expect("logout");
    refused_at_books(&stack, alice.token(), Duration::from_secs(1)).await;
    // Only that session: alice's other login goes on.
    cached(&stack, &other_session).await;
}

#[tokio::test]
async fn a_password_change_revokes_older_tokens_but_not_the_next_login() {
    let stack = Stack::spawn().await;
    let bob = stack.user("bob").await;
    cached(&stack, &bob).await;
    let new_password = "an entirely new passphrase";
    UserServiceClient::connect(format!("http://{}", stack.auth.addr))
        .await
        .expect("connect")
        .change_password(bearer(
            ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: new_password.into(),
            },
            bob.token(),
        ))
        .await
        .expect("change password");
    refused_at_books(&stack, bob.token(), Duration::from_secs(1)).await;
    let fresh = stack
        .auth_client()
        .await
        .login(LoginRequest {
            scopes: Vec::new(),
            username: "bob".into(),
            password: new_password.into(),
        })
        .await
        .expect("login with the new password")
        .into_inner();
    stack
        .books()
        .await
        .list_books(bearer(ListBooksRequest::default(), &fresh.access_token))
        .await
        .expect("a token issued after the change is accepted");
}

#[tokio::test]
async fn reuse_of_a_spent_refresh_token_revokes_the_session_everywhere() {
    let stack = Stack::spawn().await;
    let carol = stack.user("carol").await;
    let mut auth = stack.auth_client().await;
    let refresh = |token: &str| RefreshTokenRequest {
        scopes: Vec::new(),
        refresh_token: token.into(),
    };
    let next = auth
        .refresh_token(refresh(&carol.login.refresh_token))
        .await
        .expect("refresh")
        .into_inner();
    cached(
        &stack,
        &Caller {
            id: carol.id.clone(),
            login: carol.login.clone(),
        },
    )
    .await;
    expect_code(
        auth.refresh_token(refresh(&carol.login.refresh_token))
            .await,
        Code::Unauthenticated,
    );
    refused_at_books(&stack, &next.access_token, Duration::from_secs(1)).await;
    refused_at_books(&stack, carol.token(), Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_disabled_user_is_refused_everywhere_and_cannot_log_in_until_enabled() {
    let stack = Stack::spawn().await;
    let dave = stack.user("dave").await;
    cached(&stack, &dave).await;
    // What `auth-service admin disable dave` does, from another process's connection.
    let admin = stack.auth_admin().await;
    assert!(admin.set_disabled("dave", true).await.expect("disable"));
    refused_at_books(&stack, dave.token(), Duration::from_secs(1)).await;

    let mut auth = stack.auth_client().await;
    let login = |password: &str| LoginRequest {
        scopes: Vec::new(),
        username: "dave".into(),
        password: password.into(),
    };
    let refused = expect_code(auth.login(login(PASSWORD)).await, Code::PermissionDenied);
    assert_eq!(reason(&refused), "ACCOUNT_DISABLED");
    expect_code(
        auth.login(login("a wrong password here")).await,
        Code::Unauthenticated,
    );
    expect_code(
        auth.refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: dave.login.refresh_token.clone(),
        })
        .await,
        Code::Unauthenticated,
    );

    assert!(admin.set_disabled("dave", false).await.expect("enable"));
    let back = auth.login(login(PASSWORD)).await.expect("enabled again");
    stack
        .books()
        .await
        .list_books(bearer(
            ListBooksRequest::default(),
            &back.into_inner().access_token,
        ))
        .await
        .expect("a token issued after enabling is accepted");
}

#[tokio::test]
async fn a_book_service_started_after_the_logout_refuses_the_token_from_its_first_call() {
    let stack = Stack::spawn().await;
    let erin = stack.user("erin").await;
    stack
        .auth_client()
        .await
        .logout(LogoutRequest {
            refresh_token: erin.login.refresh_token.clone(),
        })
        .await
        .expect("logout");
    let late_dir = tempfile::tempdir().expect("temp dir");
    let late = start_book_in(late_dir.path(), stack.dir.path(), stack.auth.addr, |_| {}).await;
    wait_serving(late.addr, Duration::from_secs(10)).await;
    let mut books =
        bookstore_contract::proto::book::book_service_client::BookServiceClient::connect(
            late.url(),
        )
        .await
        .expect("connect");
    let refused = expect_code(
        books
            .list_books(bearer(ListBooksRequest::default(), erin.token()))
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(reason(&refused), "TOKEN_REVOKED");
}

#[tokio::test]
async fn book_service_catches_up_after_auth_service_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = start_auth(dir.path(), any_port()).await;
    let auth_addr = auth.addr;
    let book = start_book(dir.path(), auth_addr).await;
    wait_serving(book.addr, Duration::from_secs(10)).await;
    let frank = register_and_login(auth_addr, "frank").await;
    let stack = Stack {
        dir: std::sync::Arc::new(dir),
        auth,
        book,
    };
    cached(&stack, &frank).await;

    // auth-service goes away: book-service keeps serving with what it knows.
    let Stack { dir, auth, book } = stack;
    auth.stop().await;
    let stack = Stack {
        dir: dir.clone(),
        auth: start_auth(dir.path(), auth_addr).await,
        book,
    };
    stack
        .auth_client()
        .await
        .logout(LogoutRequest {
            refresh_token: frank.login.refresh_token.clone(),
        })
        .await
        .expect("logout on the restarted auth-service");
    // Reconnecting backs off up to 5 s; then the stream resumes from book-service's cursor.
    refused_at_books(&stack, frank.token(), Duration::from_secs(8)).await;
}

#[tokio::test]
async fn a_logout_on_one_auth_service_is_felt_through_a_book_service_watching_another() {
    // Two auth-service processes' worth of servers on one database (as replicas share one): the
    // revocation is a row, so the replica that did not write it streams it too.
    let dir = tempfile::tempdir().expect("temp dir");
    let first = start_auth(dir.path(), any_port()).await;
    let second = start_auth(dir.path(), any_port()).await;
    let book = start_book(dir.path(), second.addr).await;
    wait_serving(book.addr, Duration::from_secs(10)).await;
    let grace = register_and_login(first.addr, "grace").await;
    let stack = Stack {
        dir: std::sync::Arc::new(dir),
        auth: first,
        book,
    };
    cached(&stack, &grace).await;
    stack
        .auth_client()
        .await
        .logout(LogoutRequest {
            refresh_token: grace.login.refresh_token.clone(),
        })
        .await
        .expect("logout on the first replica");
    refused_at_books(&stack, grace.token(), Duration::from_secs(1)).await;
    drop(second);
}

#[tokio::test]
async fn a_login_between_two_password_changes_in_one_second_is_revoked_by_the_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    // auth-service's clock stands still: every call below falls in the same second, where the
    // first change has already stamped the next login's `iat` one second ahead.
    let (clock, _hand) = bookstore_kit::clock::Clock::manual(chrono::Utc::now());
    let mut config = auth_config(dir.path(), any_port());
    config.clock = clock;
    let auth = Server::start(auth_service::build(config).await.expect("auth-service"));
    let books = start_book(dir.path(), auth.addr).await;
    wait_serving(books.addr, Duration::from_secs(10)).await;
    let carol = register_and_login(auth.addr, "carol").await;
    let (second, third) = ("a second long passphrase", "a third long passphrase");
    let mut users = UserServiceClient::connect(auth.url())
        .await
        .expect("connect");
    let change = |token: &str, current: &str, new: &str| {
        bearer(
            ChangePasswordRequest {
                current_password: current.into(),
                new_password: new.into(),
            },
            token,
        )
    };
    users
        .change_password(change(carol.token(), PASSWORD, second))
        .await
        .expect("first change");
    let between = login_with(auth.addr, "carol", second).await.access_token;
    users
        .change_password(change(&between, second, third))
        .await
        .expect("second change");
    let books = BookServiceClient::connect(books.url())
        .await
        .expect("connect");
    until_revoked(Duration::from_secs(1), || {
        let mut books = books.clone();
        let request = bearer(ListBooksRequest::default(), &between);
        async move { books.list_books(request).await }
    })
    .await;
    // The login after the second change is not caught by it.
    let after = login_with(auth.addr, "carol", third).await.access_token;
    let mut books = books.clone();
    books
        .list_books(bearer(ListBooksRequest::default(), &after))
        .await
        .expect("a token issued after the last change is accepted");
}
