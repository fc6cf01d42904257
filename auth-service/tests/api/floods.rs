//! What a flood from one address costs: revocation streams are capped per address, junk
//! refresh tokens end in RESOURCE_EXHAUSTED while other addresses still log in, and a Logout
//! that ends nothing wakes no stream.

use std::time::Duration;

use bookstore_contract::proto::auth::{
    auth_service_client::AuthServiceClient, revocation_service_client::RevocationServiceClient,
    LogoutRequest, RefreshTokenRequest, WatchRevocationsRequest,
};
use bookstore_testkit::reason;
use futures::future::join_all;
use tonic::Code;

use crate::helpers::{bearer, expect_code, TestApp};

#[tokio::test]
async fn one_address_holds_at_most_sixteen_revocation_streams() {
    let app = TestApp::spawn().await;
    let token = app.watcher_token().await;
    let watch = || bearer(WatchRevocationsRequest { after: 0 }, &token);
    let flooder = Some("127.0.31.1".parse().expect("ip"));
    let mut streams = Vec::new();
    for _ in 0..16 {
        let mut client = RevocationServiceClient::new(app.channel_from(flooder).await);
        let mut stream = client
            .watch_revocations(watch())
            .await
            .expect("one of the first 16 streams")
            .into_inner();
        let first = stream.message().await.expect("first message");
        assert!(first.expect("a message").caught_up);
        streams.push(stream);
    }
    let mut client = RevocationServiceClient::new(app.channel_from(flooder).await);
    let status = expect_code(
        client.watch_revocations(watch()).await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&status), "TOO_MANY_STREAMS");
    // Another address is not affected.
    let other = Some("127.0.31.2".parse().expect("ip"));
    RevocationServiceClient::new(app.channel_from(other).await)
        .watch_revocations(watch())
        .await
        .expect("another address");
    // A closed stream gives its place back.
    drop(streams.pop());
    let mut reopened = None;
    for _ in 0..100 {
        match client.watch_revocations(watch()).await {
            Ok(stream) => {
                reopened = Some(stream);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(reopened.is_some(), "the place of a closed stream is reused");
}

#[tokio::test]
async fn a_flood_of_junk_refresh_tokens_ends_in_resource_exhausted_and_others_still_log_in() {
    let app = TestApp::spawn().await;
    app.register("owner").await;
    let flooder = Some("127.0.32.1".parse().expect("ip"));
    let auth = AuthServiceClient::new(app.channel_from(flooder).await);
    // Ten waves of 20 at once: 200 junk tokens, past the address's 100 failures.
    let mut codes = Vec::new();
    for wave in 0..10 {
        let results = join_all((0..20).map(|i| {
            let mut auth = auth.clone();
            async move {
                let refresh_token = format!("junk-{wave}-{i}");
                let result = if i % 2 == 0 {
                    auth.refresh_token(RefreshTokenRequest {
                        scopes: Vec::new(),
                        refresh_token,
                    })
                    .await
                    .map(|_| ())
                } else {
                    auth.logout(LogoutRequest { refresh_token })
                        .await
                        .map(|_| ())
                };
                result.err().map(|s| s.code())
            }
        }))
        .await;
        codes.extend(results);
    }
    let exhausted = codes
        .iter()
        .filter(|c| **c == Some(Code::ResourceExhausted))
        .count();
    assert!(exhausted >= 80, "{exhausted} of 200 throttled: {codes:?}");
    assert!(
        codes.iter().all(|c| matches!(
            c,
            None | Some(Code::Unauthenticated | Code::ResourceExhausted)
        )),
        "{codes:?}"
    );
    // Once locked, every further junk token is refused at once.
    let mut auth = auth;
    let status = expect_code(
        auth.refresh_token(RefreshTokenRequest {
            scopes: Vec::new(),
            refresh_token: "more junk".into(),
        })
        .await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&status), "ADDRESS_THROTTLED");
    // The owner elsewhere is not affected.
    app.login("owner").await;
}

#[tokio::test]
async fn a_logout_that_ends_nothing_sends_no_revocation() {
    let app = TestApp::spawn().await;
    app.register("owner").await;
    let login = app.login("owner").await;
    let mut auth = app.auth().await;
    let logout = |token: &str| LogoutRequest {
        refresh_token: token.into(),
    };
    auth.logout(logout(&login.refresh_token))
        .await
        .expect("logout");
    let token = app.watcher_token().await;
    let mut stream = RevocationServiceClient::new(app.channel().await)
        .watch_revocations(bearer(WatchRevocationsRequest { after: 0 }, &token))
        .await
        .expect("watch")
        .into_inner();
    let backlog = stream.message().await.expect("first").expect("message");
    assert_eq!(backlog.revocations.len(), 1, "the one logout");
    // Again with the same token, and with one that never existed: nothing new is streamed.
    auth.logout(logout(&login.refresh_token))
        .await
        .expect("second logout");
    auth.logout(logout("never issued"))
        .await
        .expect("unknown token");
    let next = tokio::time::timeout(Duration::from_millis(800), stream.message()).await;
    assert!(next.is_err(), "a revocation was streamed: {next:?}");
}
