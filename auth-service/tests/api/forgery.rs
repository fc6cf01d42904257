//! The forgery table against UserService: every forged or misused token is UNAUTHENTICATED.

use bookstore_contract::proto::auth::GetCurrentUserRequest;
use bookstore_testkit::forgery::Target;
use tonic::Code;

use bookstore_testkit::with_bearers;

use crate::helpers::{bearer, expect_code, with_authorization, TestApp};

#[tokio::test]
async fn every_forged_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let user = app.register("victim").await;
    let login = app.login("victim").await;
    let (kid, key) = app.signing_key().await;
    let expect = app.expectations();
    let target = Target {
        key: &key,
        kid: &kid,
        expect: &expect,
        sub: &user.id,
        now: app.now(),
    };
    let mut users = app.users().await;

    // Controls: the table's base token is accepted, so each case fails for its own flaw.
    users
        .get_current_user(bearer(GetCurrentUserRequest {}, &target.valid()))
        .await
        .expect("a correctly signed token is accepted");
    users
        .get_current_user(bearer(GetCurrentUserRequest {}, &login.access_token))
        .await
        .expect("the issued token is accepted");

    // Two entries are refused even when both carry the same valid token.
    let token = login.access_token.as_str();
    expect_code(
        users
            .get_current_user(with_bearers(GetCurrentUserRequest {}, &[token, token]))
            .await,
        Code::Unauthenticated,
    );

    let cases = target.table(&login.access_token, &login.refresh_token);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for (name, authorization) in cases {
        let result = users
            .get_current_user(with_authorization(GetCurrentUserRequest {}, &authorization))
            .await;
        assert_eq!(
            result.as_ref().map_err(|s| s.code()).err(),
            Some(Code::Unauthenticated),
            "case {name:?} was not refused: {result:?}"
        );
    }
}
