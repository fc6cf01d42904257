//! The forgery table (`bookstore_testkit::forgery`), against book-service.

use bookstore_contract::{proto::book::ListBooksRequest, token::Expectations};
use bookstore_kit::clock::Clock;
use bookstore_testkit::forgery::Target;
use tonic::Code;

use bookstore_testkit::with_bearers;

use crate::helpers::{bearer, expect_code, with_authorization, Stack};

#[tokio::test]
async fn every_forged_token_is_unauthenticated_at_book_service() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let (kid, key) = stack
        .auth_admin()
        .await
        .active_signing_key()
        .await
        .expect("signing key");
    let config = auth_service::Config::defaults();
    let expect = Expectations {
        issuer: config.issuer,
        audience: config.audience,
    };
    let target = Target {
        key: &key,
        kid: &kid,
        expect: &expect,
        sub: &alice.id,
        now: Clock::system().unix_seconds(),
    };
    let mut books = stack.books().await;
    books
        .list_books(bearer(ListBooksRequest::default(), &target.valid()))
        .await
        .expect("control: a correctly signed token is accepted");
    let token = alice.token();
    expect_code(
        books
            .list_books(with_bearers(ListBooksRequest::default(), &[token, token]))
            .await,
        Code::Unauthenticated,
    );
    for (name, authorization) in target.table(alice.token(), &alice.login.refresh_token) {
        let result = books
            .list_books(with_authorization(
                ListBooksRequest::default(),
                &authorization,
            ))
            .await;
        assert_eq!(
            result.as_ref().map_err(|s| s.code()).err(),
            Some(Code::Unauthenticated),
            "case {name:?} was not refused: {result:?}"
        );
    }
}
