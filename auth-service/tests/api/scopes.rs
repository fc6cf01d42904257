//! Scopes and service clients at auth-service: narrowed Login and RefreshToken tokens, ListUsers
//! per scope, a client's token life cycle (issue, rotate within and past the grace, delete),
//! WatchRevocations' credential, throttled wrong secrets, and secrets never shown again.

use std::time::Duration;

use bookstore_contract::{
    proto::auth::{
        auth_service_client::AuthServiceClient, revocation_service_client::RevocationServiceClient,
        GetCurrentUserRequest, IssueClientTokenRequest, ListUsersRequest, LoginRequest,
        RefreshTokenRequest, WatchRevocationsRequest,
    },
    token,
};
use bookstore_testkit::{reason, until_revoked};
use futures::future::join_all;
use tonic::{transport::Channel, Code};
use tonic_types::StatusExt;

use crate::helpers::{bearer, binary, database_url, expect_code, TestApp, PASSWORD};

/// The `scope` claim of `access_token`, read from a verified token.
async fn scope_of(app: &TestApp, access_token: &str) -> String {
    let keys = token::KeySet::from_jwks(&app.jwks().await.keys);
    let (claims, _) =
        token::verify(access_token, &keys, &app.expectations(), app.now()).expect("a valid token");
    claims.scope
}

async fn login(app: &TestApp, username: &str, scopes: &[&str]) -> Result<String, tonic::Status> {
    app.auth()
        .await
        .login(LoginRequest {
            username: username.into(),
            password: PASSWORD.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        })
        .await
        .map(|r| r.into_inner().access_token)
}

#[tokio::test]
async fn list_users_needs_users_read_whatever_the_token_and_the_refusal_names_it() {
    let app = TestApp::spawn().await;
    app.register("root").await;
    app.register("member").await;
    assert!(app.admin().await.promote("root").await.expect("promote"));
    // (who, scopes asked for, ListUsers allowed)
    let table: &[(&str, &[&str], bool)] = &[
        ("root", &[], true),
        ("root", &["users:read"], true),
        ("root", &["books:read", "books:admin"], false),
        ("member", &[], false),
        ("member", &["books:read"], false),
    ];
    for (who, scopes, allowed) in table {
        let token = login(&app, who, scopes).await.expect("login");
        let listed = app
            .users()
            .await
            .list_users(bearer(ListUsersRequest::default(), &token))
            .await;
        match (allowed, listed) {
            (true, Ok(_)) => {}
            (false, Err(status)) => {
                assert_eq!(status.code(), Code::PermissionDenied, "{who} {scopes:?}");
                assert_eq!(reason(&status), "INSUFFICIENT_SCOPE");
                let info = status.get_details_error_info().expect("ErrorInfo");
                assert_eq!(
                    info.metadata.get("required_scope").map(String::as_str),
                    Some("users:read")
                );
            }
            (allowed, listed) => panic!("{who} {scopes:?}: allowed {allowed}, got {listed:?}"),
        }
    }
}

#[tokio::test]
async fn tokens_carry_the_account_scopes_or_fewer_and_never_more() {
    let app = TestApp::spawn().await;
    app.register("reader").await;
    let full = login(&app, "reader", &[]).await.expect("login");
    assert_eq!(scope_of(&app, &full).await, "books:read books:write");
    let narrow = login(&app, "reader", &["books:read"])
        .await
        .expect("narrow");
    assert_eq!(scope_of(&app, &narrow).await, "books:read");
    for wider in [
        &["users:read"][..],
        &["books:admin"],
        &["revocations:watch"],
        &["books:everything"],
    ] {
        let status = expect_code(login(&app, "reader", wider).await, Code::InvalidArgument);
        let fields = status.get_details_bad_request().expect("BadRequest");
        assert_eq!(fields.field_violations[0].field, "scopes");
    }
    // RefreshToken narrows too; a refused request leaves the refresh token usable.
    let session = app.login("reader").await;
    let mut auth = app.auth().await;
    expect_code(
        auth.refresh_token(RefreshTokenRequest {
            refresh_token: session.refresh_token.clone(),
            scopes: vec!["users:read".into()],
        })
        .await,
        Code::InvalidArgument,
    );
    let refreshed = auth
        .refresh_token(RefreshTokenRequest {
            refresh_token: session.refresh_token,
            scopes: vec!["books:read".into()],
        })
        .await
        .expect("the refused request spent nothing")
        .into_inner();
    assert_eq!(refreshed.scope, "books:read");
    assert_eq!(scope_of(&app, &refreshed.access_token).await, "books:read");
}

/// `auth-service clients ...` on `app`'s database; returns stdout.
fn clients(app: &TestApp, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(binary())
        .arg("clients")
        .args(args)
        .env("AUTH_DATABASE_URL", database_url(app.dir.path()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run clients");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect("output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "clients {args:?}: {stderr}");
    // The secret is printed once, on stdout; never in the log (stderr).
    if let Some(secret) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
    {
        assert!(
            !stderr.contains(secret),
            "the secret reached the log: {stderr}"
        );
    }
    stdout
}

/// The value after `label: ` in `text`.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .to_string()
}

async fn issue(
    auth: &mut AuthServiceClient<Channel>,
    id: &str,
    secret: &str,
    scopes: &[&str],
) -> Result<String, tonic::Status> {
    auth.issue_client_token(IssueClientTokenRequest {
        client_id: id.into(),
        client_secret: secret.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    })
    .await
    .map(|r| r.into_inner().access_token)
}

/// Waits until `token` is refused as revoked by auth-service's own interceptor.
async fn refused_within(app: &TestApp, token: &str, within: Duration) {
    let users = app.users().await;
    until_revoked(within, || {
        let mut users = users.clone();
        let request = bearer(GetCurrentUserRequest {}, token);
        async move { users.get_current_user(request).await }
    })
    .await;
}

#[tokio::test]
async fn a_service_client_gets_tokens_rotates_its_secret_with_a_grace_and_is_deleted() {
    let app = TestApp::spawn().await;
    let created = clients(
        &app,
        &["create", "nightly", "--scopes", "books:read books:write"],
        "",
    );
    let (id, secret) = (
        field(&created, "client_id"),
        field(&created, "client_secret"),
    );
    assert!(secret.len() >= 43, "256 random bits");
    let listed = clients(&app, &["list"], "");
    assert!(listed.contains("nightly") && listed.contains(&id));
    assert!(!listed.contains(&secret), "list never shows a secret");

    let mut auth = app.auth().await;
    let token = issue(&mut auth, &id, &secret, &[]).await.expect("by id");
    let keys = token::KeySet::from_jwks(&app.jwks().await.keys);
    let (claims, _) = token::verify(&token, &keys, &app.expectations(), app.now()).expect("valid");
    assert_eq!(
        (claims.sub.as_str(), claims.client_id.as_deref()),
        (id.as_str(), Some(id.as_str()))
    );
    assert_eq!(claims.scope, "books:read books:write");
    assert!(claims.username.is_empty());
    issue(&mut auth, "nightly", &secret, &["books:read"])
        .await
        .expect("by name, narrowed");
    expect_code(
        issue(&mut auth, &id, &secret, &["users:read"]).await,
        Code::InvalidArgument,
    );
    let wrong = expect_code(
        issue(&mut auth, &id, "not the secret", &[]).await,
        Code::Unauthenticated,
    );
    let unknown = expect_code(
        issue(&mut auth, "nobody", &secret, &[]).await,
        Code::Unauthenticated,
    );
    assert_eq!(
        wrong.message(),
        unknown.message(),
        "unknown client looks like a wrong secret"
    );

    // Rotation with a grace: both secrets work, then only the new one, and the old secret's
    // tokens are revoked.
    let rotated = clients(&app, &["rotate-secret", "nightly", "--grace", "2s"], "");
    let new_secret = field(&rotated, "client_secret");
    let old_token = issue(&mut auth, &id, &secret, &[])
        .await
        .expect("old secret within the grace");
    let new_token = issue(&mut auth, &id, &new_secret, &[])
        .await
        .expect("new secret");
    // Past the grace on the service's clock (well past: the rotation above read the system
    // clock, which has moved on since the service's manual clock was set).
    app.advance(600);
    expect_code(
        issue(&mut auth, &id, &secret, &[]).await,
        Code::Unauthenticated,
    );
    // Graces are ended by a check every second, then felt like any revocation.
    refused_within(&app, &old_token, Duration::from_secs(2)).await;
    refused_within(&app, &token, Duration::from_secs(1)).await;
    let alive = app
        .users()
        .await
        .get_current_user(bearer(GetCurrentUserRequest {}, &new_token))
        .await;
    // A client is not a user: past the token check, GetCurrentUser finds no user.
    assert_eq!(
        expect_code(alive, Code::Unauthenticated).message(),
        "user not found"
    );

    // Deleting the client revokes every token it holds.
    clients(&app, &["delete", "nightly"], "");
    refused_within(&app, &new_token, Duration::from_secs(1)).await;
    expect_code(
        issue(&mut auth, &id, &new_secret, &[]).await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn fifty_concurrent_wrong_secrets_are_throttled_like_logins() {
    let app = TestApp::spawn().await;
    let created = clients(&app, &["create", "target", "--scopes", "books:read"], "");
    let id = field(&created, "client_id");
    let auth = AuthServiceClient::new(
        app.channel_from(Some("127.0.41.1".parse().expect("ip")))
            .await,
    );
    let results = join_all((0..50).map(|i| {
        let mut auth = auth.clone();
        let id = id.clone();
        async move { issue(&mut auth, &id, &format!("guess {i}"), &[]).await }
    }))
    .await;
    let codes: Vec<Code> = results
        .iter()
        .map(|r| r.as_ref().expect_err("wrong").code())
        .collect();
    let unauthenticated = codes
        .iter()
        .filter(|c| **c == Code::Unauthenticated)
        .count();
    let exhausted = codes
        .iter()
        .filter(|c| **c == Code::ResourceExhausted)
        .count();
    assert_eq!(unauthenticated, 5, "{codes:?}");
    assert_eq!(exhausted, 45, "{codes:?}");
}

#[tokio::test]
async fn watch_revocations_needs_a_token_with_revocations_watch() {
    let app = TestApp::spawn().await;
    app.register("someone").await;
    let mut watch = RevocationServiceClient::new(app.channel().await);
    let status = expect_code(
        watch
            .watch_revocations(WatchRevocationsRequest { after: 0 })
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(reason(&status), "CREDENTIAL_REQUIRED");
    let user = app.login("someone").await.access_token;
    let status = expect_code(
        watch
            .watch_revocations(bearer(WatchRevocationsRequest { after: 0 }, &user))
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(reason(&status), "INSUFFICIENT_SCOPE");
    expect_code(
        watch
            .watch_revocations(bearer(WatchRevocationsRequest { after: 0 }, "not.a.token"))
            .await,
        Code::Unauthenticated,
    );
    let created = clients(
        &app,
        &["create", "verifier", "--scopes", "revocations:watch"],
        "",
    );
    let mut auth = app.auth().await;
    let token = issue(
        &mut auth,
        &field(&created, "client_id"),
        &field(&created, "client_secret"),
        &[],
    )
    .await
    .expect("client token");
    let mut stream = watch
        .watch_revocations(bearer(WatchRevocationsRequest { after: 0 }, &token))
        .await
        .expect("a client with revocations:watch")
        .into_inner();
    assert!(
        stream
            .message()
            .await
            .expect("first")
            .expect("message")
            .caught_up
    );
}

#[tokio::test]
async fn a_given_secret_must_be_long_and_bad_input_changes_nothing() {
    let app = TestApp::spawn().await;
    let out = std::process::Command::new(binary())
        .args([
            "clients",
            "create",
            "shorty",
            "--scopes",
            "books:read",
            "--secret-stdin",
        ])
        .env("AUTH_DATABASE_URL", database_url(app.dir.path()))
        .stdin(std::process::Stdio::piped())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let out = std::process::Command::new(binary())
        .args(["clients", "create", "odd", "--scopes", "books:fly"])
        .env("AUTH_DATABASE_URL", database_url(app.dir.path()))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scopes"));
    let given = "a-given-secret-that-is-long-enough-0123456789";
    let created = clients(
        &app,
        &[
            "create",
            "given",
            "--scopes",
            "books:read",
            "--secret-stdin",
        ],
        &format!("{given}\n"),
    );
    assert_eq!(field(&created, "client_secret"), given);
    assert!(
        !clients(&app, &["list"], "").contains("shorty"),
        "nothing stored"
    );
}

#[tokio::test]
async fn clients_ensure_takes_the_secret_of_a_file_and_a_changed_file_replaces_it() {
    let app = TestApp::spawn().await;
    let file = app.dir.path().join("given.secret");
    let first = "the-first-secret-from-a-kubernetes-secret-0001";
    std::fs::write(&file, first).expect("write");
    let ensure = || {
        let out = std::process::Command::new(binary())
            .args([
                "clients",
                "ensure",
                "svc",
                "--scopes",
                "books:read",
                "--secret-file",
            ])
            .arg(&file)
            .env("AUTH_DATABASE_URL", database_url(app.dir.path()))
            .output()
            .expect("run ensure");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("secret-from"),
            "never printed"
        );
    };
    ensure();
    ensure(); // idempotent
    let mut auth = app.auth().await;
    let token = issue(&mut auth, "svc", first, &[])
        .await
        .expect("the file's secret");
    let second = "the-second-secret-from-a-kubernetes-secret-002";
    std::fs::write(&file, second).expect("write");
    ensure();
    issue(&mut auth, "svc", second, &[])
        .await
        .expect("the new secret");
    expect_code(
        issue(&mut auth, "svc", first, &[]).await,
        Code::Unauthenticated,
    );
    refused_within(&app, &token, Duration::from_secs(1)).await;
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        second,
        "left as given"
    );
}
