//! The forgery table of the foundation issue, against book-service.

use bookstore_common::{
    forgery::Target, proto::book::ListBooksRequest, token::Expectations, unix_now,
};
use ed25519_dalek::SigningKey;
use tonic::Code;

use crate::helpers::{bearer, with_authorization, Stack};

#[tokio::test]
async fn every_forged_token_is_unauthenticated_at_book_service() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let auth_db = stack.auth_db().await;
    let row = auth_db
        .signing_keys()
        .await
        .expect("keys")
        .into_iter()
        .next()
        .expect("a key");
    let key = SigningKey::from_bytes(&row.private_key.as_slice().try_into().expect("32 bytes"));
    let config = auth_service::Config::with_database("unused");
    let expect = Expectations {
        issuer: config.issuer,
        audience: config.audience,
    };
    let target = Target {
        key: &key,
        kid: &row.kid,
        expect: &expect,
        sub: &alice.id,
        now: unix_now(),
    };
    let mut books = stack.books().await;
    books
        .list_books(bearer(ListBooksRequest::default(), &target.valid()))
        .await
        .expect("control: a correctly signed token is accepted");
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
