//! Login defences under concurrency and abuse: every limit holds when the same request arrives
//! many times at once, from one address or many, and ChangePassword and Register are limited too.

use std::{collections::HashMap, net::IpAddr, os::unix::fs::PermissionsExt};

use bookstore_contract::proto::auth::{
    auth_service_client::AuthServiceClient, user_service_client::UserServiceClient,
    ChangePasswordRequest, LoginRequest, RegisterRequest,
};
use futures::future::join_all;
use tonic::{transport::Channel, Code, Request, Status};

use crate::helpers::{bearer, expect_code, TestApp, PASSWORD};

const WRONG: &str = "not the right password";

async fn client_from(app: &TestApp, ip: &str) -> AuthServiceClient<Channel> {
    AuthServiceClient::new(
        app.channel_from(Some(ip.parse::<IpAddr>().expect("ip")))
            .await,
    )
}

fn login_request(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        scopes: Vec::new(),
        username: username.into(),
        password: password.into(),
    }
}

/// How many results had each code.
fn codes<T>(results: &[Result<T, Status>]) -> HashMap<Code, usize> {
    let mut counts = HashMap::new();
    for r in results {
        let code = r.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
        *counts.entry(code).or_default() += 1;
    }
    counts
}

/// `n` concurrent logins of `username` with `password` over `client`.
async fn burst(
    client: &AuthServiceClient<Channel>,
    n: usize,
    username: impl Fn(usize) -> String,
    password: impl Fn(usize) -> String,
) -> Vec<Result<(), Status>> {
    join_all((0..n).map(|i| {
        let mut client = client.clone();
        let request = login_request(&username(i), &password(i));
        async move { client.login(request).await.map(|_| ()) }
    }))
    .await
}

#[tokio::test]
async fn of_thirty_concurrent_wrong_logins_from_one_address_exactly_five_are_checked() {
    let app = TestApp::spawn().await;
    app.register("alice").await;
    let attacker = client_from(&app, "127.0.4.1").await;
    let results = burst(&attacker, 30, |_| "alice".into(), |_| WRONG.into()).await;
    let counts = codes(&results);
    assert_eq!(counts.get(&Code::Unauthenticated), Some(&5), "{counts:?}");
    assert_eq!(
        counts.get(&Code::ResourceExhausted),
        Some(&25),
        "{counts:?}"
    );

    // The right password from that address is refused too; the owner elsewhere is not.
    let mut attacker = attacker;
    expect_code(
        attacker.login(login_request("alice", PASSWORD)).await,
        Code::ResourceExhausted,
    );
    let mut owner = client_from(&app, "127.0.4.2").await;
    owner
        .login(login_request("alice", PASSWORD))
        .await
        .expect("no lockout from afar");
}

#[tokio::test]
async fn a_burst_of_102_from_one_address_cannot_lock_the_owner_out_elsewhere() {
    let app = TestApp::spawn().await;
    app.register("bob").await;
    let attacker = client_from(&app, "127.0.5.1").await;
    let results = burst(&attacker, 102, |_| "bob".into(), |_| WRONG.into()).await;
    assert_eq!(codes(&results).get(&Code::Unauthenticated), Some(&5));
    let mut owner = client_from(&app, "127.0.5.2").await;
    owner
        .login(login_request("bob", PASSWORD))
        .await
        .expect("the owner logs in from home");
}

#[tokio::test]
async fn the_username_layer_checks_exactly_100_of_a_concurrent_burst_from_thirty_addresses() {
    let app = TestApp::spawn().await;
    app.register("carol").await;
    let mut clients = Vec::new();
    for i in 0..30 {
        clients.push(client_from(&app, &format!("127.0.6.{}", i + 1)).await);
    }
    let calls = clients.iter().flat_map(|client| {
        (0..5).map(move |_| {
            let mut client = client.clone();
            async move {
                client
                    .login(login_request("carol", WRONG))
                    .await
                    .map(|_| ())
            }
        })
    });
    let results = join_all(calls).await;
    let counts = codes(&results);
    assert_eq!(counts.get(&Code::Unauthenticated), Some(&100), "{counts:?}");
    assert_eq!(
        counts.get(&Code::ResourceExhausted),
        Some(&50),
        "{counts:?}"
    );
}

#[tokio::test]
async fn the_address_layer_checks_exactly_100_of_a_concurrent_burst_over_many_names() {
    let app = TestApp::spawn().await;
    let attacker = client_from(&app, "127.0.7.1").await;
    let results = burst(&attacker, 130, |i| format!("name{i}"), |_| WRONG.into()).await;
    let counts = codes(&results);
    assert_eq!(counts.get(&Code::Unauthenticated), Some(&100), "{counts:?}");
    assert_eq!(
        counts.get(&Code::ResourceExhausted),
        Some(&30),
        "{counts:?}"
    );
}

#[tokio::test]
async fn names_that_cannot_exist_are_refused_without_counting() {
    let app = TestApp::spawn().await;
    app.register("dave").await;
    let client = client_from(&app, "127.0.8.1").await;
    let long = "a".repeat(60_000);
    let results = burst(
        &client,
        120,
        |i| {
            if i % 2 == 0 {
                long.clone()
            } else {
                format!("Dävé{i}")
            }
        },
        |_| WRONG.into(),
    )
    .await;
    assert_eq!(codes(&results).get(&Code::Unauthenticated), Some(&120));
    // Nothing was counted against the address.
    let mut client = client;
    client
        .login(login_request("dave", PASSWORD))
        .await
        .expect("the address is not throttled");
}

#[tokio::test]
async fn change_password_is_throttled_on_the_login_counters() {
    let app = TestApp::spawn().await;
    app.register("erin").await;
    let token = app.login("erin").await.access_token;
    let users = UserServiceClient::new(
        app.channel_from(Some("127.0.9.1".parse().expect("ip")))
            .await,
    );
    let change = |current: &str| ChangePasswordRequest {
        current_password: current.into(),
        new_password: "a brand new passphrase".into(),
    };
    let results = join_all((0..12).map(|_| {
        let mut users = users.clone();
        let request = bearer(change(WRONG), &token);
        async move { users.change_password(request).await.map(|_| ()) }
    }))
    .await;
    let counts = codes(&results);
    assert_eq!(counts.get(&Code::Unauthenticated), Some(&5), "{counts:?}");
    assert_eq!(counts.get(&Code::ResourceExhausted), Some(&7), "{counts:?}");
    // The stolen token cannot now try the right password either: the pair is locked.
    let mut users = users;
    expect_code(
        users
            .change_password(bearer(change(PASSWORD), &token))
            .await,
        Code::ResourceExhausted,
    );
    // Nor can a login of that name from that address.
    let mut auth = client_from(&app, "127.0.9.1").await;
    expect_code(
        auth.login(login_request("erin", PASSWORD)).await,
        Code::ResourceExhausted,
    );
}

#[tokio::test]
async fn register_is_limited_per_address_per_hour_and_a_taken_name_answers_already_exists() {
    let app = TestApp::spawn_with(|config| config.register_limit = 5).await;
    let client = client_from(&app, "127.0.10.1").await;
    let results = join_all((0..8).map(|i| {
        let mut client = client.clone();
        async move {
            client
                .register(RegisterRequest {
                    username: if i < 2 {
                        "same".into()
                    } else {
                        format!("user{i}")
                    },
                    password: PASSWORD.into(),
                })
                .await
                .map(|_| ())
        }
    }))
    .await;
    let counts = codes(&results);
    assert_eq!(counts.get(&Code::ResourceExhausted), Some(&3), "{counts:?}");
    let admitted = counts.get(&Code::Ok).copied().unwrap_or(0)
        + counts.get(&Code::AlreadyExists).copied().unwrap_or(0);
    assert_eq!(admitted, 5, "{counts:?}");
    assert!(counts.get(&Code::AlreadyExists).copied().unwrap_or(0) <= 1);

    // Another address is not limited; after the hour this one is not either.
    let mut other = client_from(&app, "127.0.10.2").await;
    other
        .register(RegisterRequest {
            username: "elsewhere".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("another address registers");
    expect_code(
        other
            .register(RegisterRequest {
                username: "elsewhere".into(),
                password: PASSWORD.into(),
            })
            .await,
        Code::AlreadyExists,
    );
    app.advance(3600);
    let mut client = client;
    client
        .register(RegisterRequest {
            username: "later".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("a new hour");
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart_by_x_forwarded_for_and_ipv6_per_64() {
    let app = TestApp::spawn_with(|config| {
        config.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    app.register("frank").await;
    let mut proxy = client_from(&app, "127.0.11.1").await;
    let from = |client: &str, password: &str| {
        let mut request = Request::new(login_request("frank", password));
        request.metadata_mut().insert(
            "x-forwarded-for",
            format!("{client}, 127.0.11.9").parse().expect("metadata"),
        );
        request
    };
    for _ in 0..5 {
        expect_code(
            proxy.login(from("2001:db8:1:2::a", WRONG)).await,
            Code::Unauthenticated,
        );
    }
    // The same /64 is the same client; another /64 and another IPv4 client are not.
    expect_code(
        proxy.login(from("2001:db8:1:2:ffff::1", PASSWORD)).await,
        Code::ResourceExhausted,
    );
    proxy
        .login(from("2001:db8:1:3::a", PASSWORD))
        .await
        .expect("another /64");
    proxy
        .login(from("203.0.113.7", PASSWORD))
        .await
        .expect("another client behind the proxy");
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = TestApp::spawn().await;
    app.register("grace").await;
    let mut client = client_from(&app, "127.0.12.1").await;
    for i in 0..5 {
        let mut request = Request::new(login_request("grace", WRONG));
        request.metadata_mut().insert(
            "x-forwarded-for",
            format!("198.51.100.{i}").parse().expect("metadata"),
        );
        expect_code(client.login(request).await, Code::Unauthenticated);
    }
    expect_code(
        client.login(login_request("grace", PASSWORD)).await,
        Code::ResourceExhausted,
    );
}

#[tokio::test]
async fn the_database_and_its_wal_files_are_private_to_the_owner() {
    if bookstore_testkit::database::postgres().is_some() {
        return; // about SQLite's files; PostgreSQL keeps its own
    }
    let app = TestApp::spawn().await;
    app.register("heidi").await;
    for file in ["auth.db", "auth.db-wal", "auth.db-shm"] {
        let path = app.dir.path().join(file);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}

#[tokio::test]
async fn the_purge_deletes_dead_refresh_tokens_and_idle_counters_but_keeps_live_ones() {
    let app = TestApp::spawn().await;
    app.register("ivan").await;
    let live = app.login("ivan").await;
    let mut auth = app.auth().await;
    let dead = app.login("ivan").await;
    auth.logout(bookstore_contract::proto::auth::LogoutRequest {
        refresh_token: dead.refresh_token.clone(),
    })
    .await
    .expect("logout");
    expect_code(
        auth.login(login_request("nobody", WRONG)).await,
        Code::Unauthenticated,
    );
    let admin = app.admin().await;
    let (tokens, _) = admin.purge().await.expect("purge");
    assert_eq!(tokens, 1, "only the logged-out family is dead yet");
    app.advance(2 * 3600);
    let (_, counters) = admin.purge().await.expect("purge");
    assert!(
        counters >= 3,
        "the idle counters of the failed login: {counters}"
    );
    // The live session still refreshes.
    auth.refresh_token(bookstore_contract::proto::auth::RefreshTokenRequest {
        scopes: Vec::new(),
        refresh_token: live.refresh_token,
    })
    .await
    .expect("a live family survives the purge");
}

#[tokio::test]
async fn twenty_concurrent_logins_with_the_right_password_from_one_address_all_succeed() {
    let app = TestApp::spawn().await;
    app.register("judy").await;
    let client = client_from(&app, "127.0.14.1").await;
    let results = burst(&client, 20, |_| "judy".into(), |_| PASSWORD.into()).await;
    let counts = codes(&results);
    assert_eq!(counts.get(&Code::Ok), Some(&20), "{counts:?}");
}

#[tokio::test]
async fn a_taken_name_is_answered_before_any_password_hashing() {
    let dir = tempfile::tempdir().expect("dir");
    let (clock, _) = bookstore_kit::clock::Clock::manual(chrono::Utc::now());
    let config = crate::helpers::config(dir.path(), clock);
    let accounts =
        auth_service::startup::accounts(&config, &bookstore_kit::metrics::Metrics::new())
            .await
            .expect("accounts");
    let client = auth_service::caller::ClientAddr(Some("127.0.15.1".parse().expect("ip")));
    accounts
        .register("taken".into(), PASSWORD.into(), &client)
        .await
        .expect("first registration");
    let hashed = accounts.hasher.computed();
    let again = accounts
        .register("taken".into(), PASSWORD.into(), &client)
        .await
        .expect_err("the name is taken");
    assert!(
        matches!(again, auth_service::error::Error::UsernameTaken),
        "{again:?}"
    );
    assert_eq!(
        accounts.hasher.computed(),
        hashed,
        "no argon2 run for a taken name"
    );
}
