//! Login, RefreshToken, Logout and GetJwks.

use std::time::{Duration, Instant};

use bookstore_contract::{
    proto::auth::{GetCurrentUserRequest, LogoutRequest, RefreshTokenRequest},
    token::{self, Expectations, KeySet},
};
use tonic::Code;
use tonic_types::StatusExt;

use bookstore_testkit::until_revoked;

use crate::helpers::{bearer, expect_code, TestApp};

#[tokio::test]
async fn login_issues_a_verifiable_eddsa_token_and_a_refresh_token() {
    let app = TestApp::spawn().await;
    let user = app.register("alice").await;
    let login = app.login("ALICE").await;
    assert_eq!(login.token_type, "Bearer");
    assert_eq!(login.expires_in, 15 * 60);
    assert_eq!(login.refresh_expires_in, 30 * 24 * 3600);
    assert!(login.refresh_token.len() >= 43, "256 bits, base64url");
    assert_eq!(login.user.as_ref(), Some(&user));

    let jwks = app.jwks().await;
    let keys = KeySet::from_jwks(&jwks.keys);
    let (claims, kid) = token::verify(&login.access_token, &keys, &app.expectations(), app.now())
        .expect("token verifies with the published key");
    assert_eq!(kid, jwks.keys[0].kid);
    assert_eq!(claims.sub, user.id);
    assert_eq!(claims.username, "alice");
    assert_eq!(claims.exp - claims.iat, 15 * 60);
    assert!(!claims.admin);
}

#[tokio::test]
async fn get_jwks_publishes_one_okp_ed25519_key() {
    let app = TestApp::spawn().await;
    let jwks = app.jwks().await;
    assert_eq!(jwks.keys.len(), 1);
    let key = &jwks.keys[0];
    assert_eq!(
        (
            key.kty.as_str(),
            key.crv.as_str(),
            key.alg.as_str(),
            key.r#use.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA", "sig")
    );
    assert_eq!(key.x.len(), 43, "32 bytes base64url without padding");
    let (kid, _) = app.signing_key().await;
    assert_eq!(key.kid, kid);
}

#[tokio::test]
async fn login_with_unknown_user_looks_like_wrong_password() {
    let app = TestApp::spawn().await;
    app.register("bob").await;
    let wrong = expect_code(
        app.try_login("bob", "not the right one").await,
        Code::Unauthenticated,
    );
    let unknown = expect_code(
        app.try_login("nobody", "not the right one").await,
        Code::Unauthenticated,
    );
    assert_eq!(wrong.message(), unknown.message());
    let reason = |s: &tonic::Status| s.get_details_error_info().map(|i| i.reason);
    assert_eq!(reason(&wrong), reason(&unknown));
    assert_eq!(reason(&wrong).as_deref(), Some("INVALID_CREDENTIALS"));
}

#[tokio::test]
async fn login_with_empty_fields_is_unauthenticated_like_any_wrong_password() {
    let app = TestApp::spawn().await;
    app.register("ivan").await;
    for (username, password) in [("", ""), ("ivan", ""), ("", "a password")] {
        let status = expect_code(
            app.try_login(username, password).await,
            Code::Unauthenticated,
        );
        assert_eq!(status.message(), "invalid username or password");
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_take_the_same_time() {
    let app = TestApp::spawn().await;
    app.register("carol").await;
    // Warm up connection and caches.
    let _ = app.try_login("warmup", "not the right one").await;
    let rounds = 4; // below the pair lockout of 5
    let mut wrong = 0.0;
    let mut unknown = 0.0;
    for i in 0..rounds {
        let start = Instant::now();
        let _ = app.try_login("carol", "not the right one").await;
        wrong += start.elapsed().as_secs_f64();
        let start = Instant::now();
        let _ = app
            .try_login(&format!("ghost{i}"), "not the right one")
            .await;
        unknown += start.elapsed().as_secs_f64();
    }
    let ratio = wrong / unknown;
    assert!(
        (0.5..2.0).contains(&ratio),
        "wrong {wrong:.4}s vs unknown {unknown:.4}s"
    );
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_issues_a_fresh_access_token() {
    let app = TestApp::spawn().await;
    app.register("dave").await;
    let login = app.login("dave").await;
    let refreshed = app
        .auth()
        .await
        .refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: login.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(refreshed.refresh_token, login.refresh_token);
    assert_eq!(refreshed.token_type, "Bearer");
    assert_eq!(refreshed.user, login.user);
    assert_eq!(
        refreshed.refresh_expires_in, login.refresh_expires_in,
        "absolute expiry"
    );
    app.users()
        .await
        .get_current_user(bearer(GetCurrentUserRequest {}, &refreshed.access_token))
        .await
        .expect("new access token works");
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    app.register("erin").await;
    let login = app.login("erin").await;
    let mut auth = app.auth().await;
    let next = auth
        .refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: login.refresh_token.clone(),
        })
        .await
        .expect("first use")
        .into_inner();
    let status = expect_code(
        auth.refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: login.refresh_token.clone(),
        })
        .await,
        Code::Unauthenticated,
    );
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "REFRESH_TOKEN_INVALID"
    );
    // The legitimate successor is revoked too.
    expect_code(
        auth.refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: next.refresh_token,
        })
        .await,
        Code::Unauthenticated,
    );
    // Another login is a separate family and still works.
    let other = app.login("erin").await;
    auth.refresh_token(RefreshTokenRequest {
        scopes: Vec::new(),
        refresh_token: other.refresh_token,
    })
    .await
    .expect("other family unaffected");
}

#[tokio::test]
async fn refresh_with_unknown_empty_or_expired_tokens_is_unauthenticated() {
    let app = TestApp::spawn().await;
    app.register("frank").await;
    let login = app.login("frank").await;
    let mut auth = app.auth().await;
    for token in ["", "not-a-token"] {
        expect_code(
            auth.refresh_token(RefreshTokenRequest {
                scopes: Vec::new(),
                refresh_token: token.into(),
            })
            .await,
            Code::Unauthenticated,
        );
    }
    app.advance(30 * 24 * 3600);
    expect_code(
        auth.refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: login.refresh_token,
        })
        .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn logout_revokes_the_family_and_is_idempotent() {
    let app = TestApp::spawn().await;
    app.register("grace").await;
    let login = app.login("grace").await;
    let mut auth = app.auth().await;
    let next = auth
        .refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: login.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    for token in [
        &login.refresh_token,
        &login.refresh_token,
        &"unknown".to_string(),
        &String::new(),
    ] {
        auth.logout(LogoutRequest {
            refresh_token: token.clone(),
        })
        .await
        .expect("always OK");
    }
    expect_code(
        auth.refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: next.refresh_token,
        })
        .await,
        Code::Unauthenticated,
    );
    // The session's access tokens are refused too, here at auth-service itself.
    let users = app.users().await;
    until_revoked(Duration::from_secs(1), || {
        let mut users = users.clone();
        let request = bearer(GetCurrentUserRequest {}, &next.access_token);
        async move { users.get_current_user(request).await }
    })
    .await;
}

#[tokio::test]
async fn tokens_of_another_issuer_are_refused() {
    let app = TestApp::spawn().await;
    app.register("heidi").await;
    let login = app.login("heidi").await;
    let jwks = app.jwks().await;
    let other = Expectations {
        issuer: "someone-else".into(),
        audience: "bookstore".into(),
    };
    assert_eq!(
        token::verify(
            &login.access_token,
            &KeySet::from_jwks(&jwks.keys),
            &other,
            app.now()
        ),
        Err(token::TokenError::Claims)
    );
}
