//! Revocation under overlap: Logins and RefreshTokens in flight on two replicas (one SQLite
//! file, or one PostgreSQL database in CI's second run) while ChangePassword, `admin disable` /
//! `enable` or Logout answers. Once that call answered, nothing an overlapping call obtained
//! may still work: its refresh token is refused, its access token is refused as revoked within
//! a second. Each scenario runs many rounds, because one round overlaps only by chance.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use bookstore_contract::proto::auth::{
    auth_service_client::AuthServiceClient, user_service_client::UserServiceClient,
    ChangePasswordRequest, GetCurrentUserRequest, LoginRequest, LogoutRequest, RefreshTokenRequest,
};
use bookstore_testkit::until_revoked;
use tokio::task::JoinSet;
use tonic::{transport::Channel, Code};

use crate::helpers::{bearer, expect_code, TestApp, PASSWORD};

/// Rounds per scenario.
const ROUNDS: usize = 25;
/// Concurrent callers racing the revoking call.
const RACERS: usize = 4;

/// Two replicas on one database, and a channel to each.
async fn replicas() -> (TestApp, TestApp, [Channel; 2]) {
    let one = TestApp::spawn().await;
    let two = one.replica().await;
    let channels = [one.channel().await, two.channel().await];
    (one, two, channels)
}

/// What a racer obtained: (access token, refresh token) pairs.
type Obtained = Vec<(String, String)>;

/// Runs `RACERS` loops of `call` (alternating replicas) until `stop` is set; each returns what
/// its successful calls obtained.
fn race<F, Fut>(channels: &[Channel; 2], stop: &Arc<AtomicBool>, call: F) -> JoinSet<Obtained>
where
    F: Fn(AuthServiceClient<Channel>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<(String, String)>> + Send,
{
    let mut racers = JoinSet::new();
    for i in 0..RACERS {
        let client = AuthServiceClient::new(channels[i % 2].clone());
        let (stop, call) = (stop.clone(), call.clone());
        racers.spawn(async move {
            let mut obtained = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Some(pair) = call(client.clone()).await {
                    obtained.push(pair);
                }
                tokio::task::yield_now().await;
            }
            obtained
        });
    }
    racers
}

/// Logs in as `username` with `password`, returning the tokens on success.
async fn try_login(
    mut auth: AuthServiceClient<Channel>,
    username: String,
    password: String,
) -> Option<(String, String)> {
    let login = auth
        .login(LoginRequest {
            scopes: Vec::new(),
            username,
            password,
        })
        .await
        .ok()?;
    let login = login.into_inner();
    Some((login.access_token, login.refresh_token))
}

/// Waits for the racers to finish and checks that nothing they obtained still works: each
/// refresh token is refused, each access token is refused as revoked within 1 s (on either
/// replica). Returns how many pairs were checked.
async fn nothing_survives(racers: JoinSet<Obtained>, channels: &[Channel; 2]) -> usize {
    let obtained = racers.join_all().await.into_iter().flatten().collect();
    nothing_survives_of(obtained, channels).await
}

/// [`nothing_survives`] for pairs already gathered.
async fn nothing_survives_of(obtained: Obtained, channels: &[Channel; 2]) -> usize {
    for (i, (access, refresh)) in obtained.iter().enumerate() {
        let mut auth = AuthServiceClient::new(channels[i % 2].clone());
        expect_code(
            auth.refresh_token(RefreshTokenRequest {
                scopes: Vec::new(),
                refresh_token: refresh.clone(),
            })
            .await,
            Code::Unauthenticated,
        );
        let users = UserServiceClient::new(channels[(i + 1) % 2].clone());
        until_revoked(Duration::from_secs(1), || {
            let mut users = users.clone();
            let request = bearer(GetCurrentUserRequest {}, access);
            async move { users.get_current_user(request).await }
        })
        .await;
    }
    obtained.len()
}

/// Changes the password of the owner of `token` (to one of its own per round), on `channel`.
async fn change_password(channel: &Channel, token: &str, round: usize) {
    UserServiceClient::new(channel.clone())
        .change_password(bearer(
            ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: format!("a new passphrase {round}"),
            },
            token,
        ))
        .await
        .expect("change password");
}

/// Waits until the racers have obtained at least one session, so the revoking call overlaps
/// calls in flight rather than running before them.
async fn until_one_login(app: &TestApp, username: &str, password: &str) {
    for _ in 0..200 {
        if app.try_login(username, password).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{username} could not log in");
}

#[tokio::test]
async fn no_login_that_overlapped_a_password_change_keeps_a_session() {
    let (one, _two, channels) = replicas().await;
    let mut checked = 0;
    for round in 0..ROUNDS {
        // A user of its own each round: the old password's failures after the change must not
        // lock the next round out.
        let username = format!("owner{round}");
        one.register(&username).await;
        let owner = one.login(&username).await.access_token;
        let stop = Arc::new(AtomicBool::new(false));
        let name = username.clone();
        let racers = race(&channels, &stop, move |auth| {
            try_login(auth, name.clone(), PASSWORD.into())
        });
        until_one_login(&one, &username, PASSWORD).await;
        change_password(&channels[round % 2], &owner, round).await;
        stop.store(true, Ordering::SeqCst);
        checked += nothing_survives(racers, &channels).await;
    }
    assert!(checked > ROUNDS, "the racers obtained sessions: {checked}");
}

#[tokio::test]
async fn no_login_that_overlapped_a_disable_comes_back_with_enable() {
    let (one, _two, channels) = replicas().await;
    let admin = one.admin().await;
    let mut checked = 0;
    for round in 0..ROUNDS {
        let username = format!("member{round}");
        one.register(&username).await;
        let stop = Arc::new(AtomicBool::new(false));
        let name = username.clone();
        let racers = race(&channels, &stop, move |auth| {
            try_login(auth, name.clone(), PASSWORD.into())
        });
        until_one_login(&one, &username, PASSWORD).await;
        assert!(admin.set_disabled(&username, true).await.expect("disable"));
        // Logins still in flight now overlapped the disable. Once they have all answered, the
        // account is enabled again: none of their sessions may come back with it. (Enabling
        // while they still run would let a Login that read the account after the enable make a
        // legitimate new session, which a test cannot tell apart from outside.)
        stop.store(true, Ordering::SeqCst);
        let obtained: Vec<(String, String)> =
            racers.join_all().await.into_iter().flatten().collect();
        assert!(admin.set_disabled(&username, false).await.expect("enable"));
        checked += nothing_survives_of(obtained, &channels).await;
        // Enabled again: a login that starts now works.
        one.login(&username).await;
    }
    assert!(checked > ROUNDS, "the racers obtained sessions: {checked}");
}

#[tokio::test]
async fn no_refresh_that_overlapped_a_logout_or_a_password_change_keeps_the_session() {
    let (one, _two, channels) = replicas().await;
    let mut checked = 0;
    for round in 0..ROUNDS {
        let username = format!("reader{round}");
        one.register(&username).await;
        let owner = one.login(&username).await.access_token;
        // Each racer rotates a session of its own, over and over, on alternating replicas;
        // the sessions race their logouts (even rounds) or the password change (odd rounds).
        let mut firsts = Vec::new();
        let mut racers = JoinSet::new();
        let stop = Arc::new(AtomicBool::new(false));
        for i in 0..RACERS {
            let first = one.login(&username).await.refresh_token;
            firsts.push(first.clone());
            let mut auth = AuthServiceClient::new(channels[i % 2].clone());
            let stop = stop.clone();
            racers.spawn(async move {
                let (mut obtained, mut current) = (Vec::new(), first);
                while !stop.load(Ordering::SeqCst) {
                    let request = RefreshTokenRequest {
                        scopes: Vec::new(),
                        refresh_token: current.clone(),
                    };
                    let Ok(next) = auth.refresh_token(request).await else {
                        break;
                    };
                    let next = next.into_inner();
                    current.clone_from(&next.refresh_token);
                    obtained.push((next.access_token, next.refresh_token));
                }
                obtained
            });
        }
        // Let the rotations start.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if round % 2 == 0 {
            let mut logouts = JoinSet::new();
            for (i, first) in firsts.into_iter().enumerate() {
                let mut auth = AuthServiceClient::new(channels[(i + 1) % 2].clone());
                logouts.spawn(async move {
                    auth.logout(LogoutRequest {
                        refresh_token: first,
                    })
                    .await
                    .expect("logout")
                });
            }
            logouts.join_all().await;
        } else {
            change_password(&channels[round % 4 / 2], &owner, round).await;
        }
        stop.store(true, Ordering::SeqCst);
        checked += nothing_survives(racers, &channels).await;
    }
    assert!(checked > ROUNDS, "the racers obtained tokens: {checked}");
}
