//! Register and UserService (GetCurrentUser, ChangePassword, ListUsers).

use bookstore_contract::proto::auth::{
    ChangePasswordRequest, GetCurrentUserRequest, ListUsersRequest, RefreshTokenRequest,
    RegisterRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{bearer, expect_code, TestApp, PASSWORD};

#[tokio::test]
async fn register_returns_the_user_with_a_lower_case_name_and_no_secret() {
    let app = TestApp::spawn().await;
    let user = app.register("Alice.Smith-2").await;
    assert_eq!(user.username, "alice.smith-2");
    assert!(!user.admin);
    assert!(uuid::Uuid::parse_str(&user.id).is_ok());
    assert!(user.create_time.is_some());
}

#[tokio::test]
async fn register_reports_every_field_violation_at_once() {
    let app = TestApp::spawn().await;
    let status = expect_code(
        app.auth()
            .await
            .register(RegisterRequest {
                username: "a!".into(),
                password: "short".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    let bad = status.get_details_bad_request().expect("BadRequest detail");
    let fields: Vec<_> = bad
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["username", "username", "password"]);
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.domain, "auth-service");
    assert_eq!(info.reason, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn register_refuses_long_and_common_passwords_and_bad_names() {
    let app = TestApp::spawn().await;
    let mut auth = app.auth().await;
    for (username, password, field) in [
        ("bob", "x".repeat(129), "password"),
        ("bob", "Password1234".to_string(), "password"),
        ("bo", PASSWORD.to_string(), "username"),
        (&"b".repeat(33), PASSWORD.to_string(), "username"),
        ("bob smith", PASSWORD.to_string(), "username"),
        ("bøb", PASSWORD.to_string(), "username"),
    ] {
        let status = expect_code(
            auth.register(RegisterRequest {
                username: username.to_string(),
                password,
            })
            .await,
            Code::InvalidArgument,
        );
        let bad = status.get_details_bad_request().expect("BadRequest");
        assert!(
            bad.field_violations.iter().any(|v| v.field == field),
            "{username}: {status:?}"
        );
    }
    // Nothing was stored: the name is still free.
    app.register("bob").await;
}

#[tokio::test]
async fn a_password_of_128_code_points_is_accepted_and_never_truncated() {
    let app = TestApp::spawn().await;
    let long = "é".repeat(128);
    app.auth()
        .await
        .register(RegisterRequest {
            username: "carol".into(),
            password: long.clone(),
        })
        .await
        .expect("128 code points are allowed");
    app.try_login("carol", &long)
        .await
        .expect("full password logs in");
    let almost = "é".repeat(127);
    expect_code(app.try_login("carol", &almost).await, Code::Unauthenticated);
}

#[tokio::test]
async fn register_with_a_taken_name_in_any_case_is_already_exists() {
    let app = TestApp::spawn().await;
    app.register("dave").await;
    let status = expect_code(
        app.auth()
            .await
            .register(RegisterRequest {
                username: "DAVE".into(),
                password: PASSWORD.into(),
            })
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "USERNAME_TAKEN"
    );
}

#[tokio::test]
async fn get_current_user_returns_the_token_owner() {
    let app = TestApp::spawn().await;
    let user = app.register("erin").await;
    let login = app.login("erin").await;
    let me = app
        .users()
        .await
        .get_current_user(bearer(GetCurrentUserRequest {}, &login.access_token))
        .await
        .expect("current user")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(me, user);
}

#[tokio::test]
async fn get_current_user_without_a_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let status = expect_code(
        app.users()
            .await
            .get_current_user(GetCurrentUserRequest {})
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "TOKEN_MISSING"
    );
}

#[tokio::test]
async fn change_password_replaces_it_and_revokes_every_refresh_token() {
    let app = TestApp::spawn().await;
    app.register("frank").await;
    let first = app.login("frank").await;
    let second = app.login("frank").await;
    let new_password = "another long passphrase";
    app.users()
        .await
        .change_password(bearer(
            ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: new_password.into(),
            },
            &first.access_token,
        ))
        .await
        .expect("change password");
    for session in [&first, &second] {
        expect_code(
            app.auth()
                .await
                .refresh_token(RefreshTokenRequest {
                    scopes: Vec::new(),
                    refresh_token: session.refresh_token.clone(),
                })
                .await,
            Code::Unauthenticated,
        );
    }
    expect_code(
        app.try_login("frank", PASSWORD).await,
        Code::Unauthenticated,
    );
    app.try_login("frank", new_password)
        .await
        .expect("new password works");
}

#[tokio::test]
async fn change_password_with_a_wrong_current_password_or_a_weak_new_one_changes_nothing() {
    let app = TestApp::spawn().await;
    app.register("grace").await;
    let login = app.login("grace").await;
    let mut users = app.users().await;
    expect_code(
        users
            .change_password(bearer(
                ChangePasswordRequest {
                    current_password: "not the password".into(),
                    new_password: "another long passphrase".into(),
                },
                &login.access_token,
            ))
            .await,
        Code::Unauthenticated,
    );
    let status = expect_code(
        users
            .change_password(bearer(
                ChangePasswordRequest {
                    current_password: String::new(),
                    new_password: "short".into(),
                },
                &login.access_token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations
            .len(),
        2
    );
    expect_code(
        users
            .change_password(ChangePasswordRequest::default())
            .await,
        Code::Unauthenticated,
    );
    app.try_login("grace", PASSWORD)
        .await
        .expect("old password still works");
}

#[tokio::test]
async fn list_users_is_admin_only_and_pages_through_everyone() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.register(&format!("user{i}")).await;
    }
    let plain = app.login("user0").await;
    expect_code(
        app.users()
            .await
            .list_users(bearer(ListUsersRequest::default(), &plain.access_token))
            .await,
        Code::PermissionDenied,
    );

    // `admin promote`, as the subcommand does it, then a fresh token carries admin.
    let admin = app.admin().await;
    assert!(admin.promote("user0").await.expect("promote"));
    let admin = app.login("user0").await;
    assert!(admin.user.as_ref().expect("user").admin);

    let mut users = app.users().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = users
            .list_users(bearer(
                ListUsersRequest {
                    page_size: 3,
                    page_token: token,
                },
                &admin.access_token,
            ))
            .await
            .expect("page")
            .into_inner();
        assert!(page.users.len() <= 3);
        seen.extend(page.users.into_iter().map(|u| u.username));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("user{i}")).collect();
    assert_eq!(seen, expected);

    for (size, token) in [(-1, String::new()), (10, "forged".to_string())] {
        expect_code(
            users
                .list_users(bearer(
                    ListUsersRequest {
                        page_size: size,
                        page_token: token,
                    },
                    &admin.access_token,
                ))
                .await,
            Code::InvalidArgument,
        );
    }
}
