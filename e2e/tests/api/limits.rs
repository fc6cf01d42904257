//! What a caller can make book-service hold: filters are capped at 200 characters, a user owns
//! at most `--max-books-per-user` books (also under 20 concurrent creates), memory stays flat
//! under 30,000 distinct filters, and no call is admitted before book-service holds the whole
//! revocation backlog.

use std::{net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use bookstore_contract::proto::{
    auth::{
        auth_service_client::AuthServiceClient,
        auth_service_server::{AuthService, AuthServiceServer},
        revocation_service_server::{RevocationService, RevocationServiceServer},
        GetJwksRequest, GetJwksResponse, IssueClientTokenRequest, IssueClientTokenResponse,
        LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, RefreshTokenRequest,
        RefreshTokenResponse, RegisterRequest, RegisterResponse, WatchRevocationsRequest,
        WatchRevocationsResponse,
    },
    book::{
        book_service_client::BookServiceClient, CreateBookRequest, DeleteBookRequest,
        ListBooksRequest,
    },
};
use bookstore_testkit::{any_port, database_url, reason};
use futures::{future::join_all, Stream};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

use crate::helpers::{
    bearer, expect_code, health, register_and_login, sample, start_auth, start_book_with, Stack,
};

#[tokio::test]
async fn filters_longer_than_a_stored_field_are_invalid_argument_with_field_violations() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut books = stack.books().await;
    let long = "x".repeat(201);
    let status = expect_code(
        books
            .list_books(bearer(
                ListBooksRequest {
                    author: long.clone(),
                    title_query: long,
                    ..Default::default()
                },
                alice.token(),
            ))
            .await,
        Code::InvalidArgument,
    );
    let fields = crate::helpers::violated_fields(&status);
    assert_eq!(fields, ["author", "title_query"]);
    // 200 is still fine.
    books
        .list_books(bearer(
            ListBooksRequest {
                author: "y".repeat(200),
                ..Default::default()
            },
            alice.token(),
        ))
        .await
        .expect("a 200-character filter");
}

#[tokio::test]
async fn no_user_gets_past_the_book_quota_even_with_concurrent_creates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = start_auth(dir.path(), any_port()).await;
    let book = start_book_with(dir.path(), auth.addr, |config| {
        config.max_books_per_user = 5;
    })
    .await;
    crate::helpers::wait_serving(book.addr, Duration::from_secs(10)).await;
    let alice = register_and_login(auth.addr, "alice").await;
    let bob = register_and_login(auth.addr, "bob").await;
    let books = BookServiceClient::connect(format!("http://{}", book.addr))
        .await
        .expect("connect");
    let create = |token: String, i: usize| {
        let mut books = books.clone();
        async move {
            let request = CreateBookRequest {
                book: Some(sample(&format!("book {i}"))),
                ..Default::default()
            };
            books.create_book(bearer(request, &token)).await
        }
    };
    let results = join_all((0..20).map(|i| create(alice.token().to_string(), i))).await;
    let created: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 5, "{results:?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert_eq!(reason(refused), "QUOTA_EXCEEDED");
    }
    // Per user: bob is not affected.
    create(bob.token().to_string(), 0)
        .await
        .expect("bob's book");
    // A delete frees a place.
    let id = created[0].get_ref().book.as_ref().expect("book").id.clone();
    let mut client = books.clone();
    client
        .delete_book(bearer(
            DeleteBookRequest {
                id,
                ..Default::default()
            },
            alice.token(),
        ))
        .await
        .expect("delete");
    create(alice.token().to_string(), 99)
        .await
        .expect("room after a delete");
    let status = expect_code(
        create(alice.token().to_string(), 100).await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&status), "QUOTA_EXCEEDED");
}

/// Resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn thirty_thousand_distinct_filters_leave_memory_flat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = start_auth(dir.path(), any_port()).await;
    let db = database_url(dir.path(), "books.db");
    let auth_url = format!("http://{}", auth.addr);
    let book = crate::helpers::start_book_child(&db, &auth_url, dir.path(), &[]).await;
    let addr: SocketAddr = book.addr.parse().expect("addr");
    crate::helpers::wait_serving(addr, Duration::from_secs(10)).await;
    let alice = register_and_login(auth.addr, "alice").await;
    let books = BookServiceClient::connect(book.url())
        .await
        .expect("connect");
    let list = |i: usize| {
        let mut books = books.clone();
        let token = alice.token().to_string();
        async move {
            // Distinct filters of the longest allowed length: the worst a caller can send.
            let request = ListBooksRequest {
                author: format!("{i:0>200}"),
                title_query: format!("{i:x>200}"),
                ..Default::default()
            };
            books
                .list_books(bearer(request, &token))
                .await
                .expect("list");
        }
    };
    // Warm up (allocator arenas, connection buffers) before the baseline.
    for chunk in (0..2_000).collect::<Vec<_>>().chunks(32) {
        join_all(chunk.iter().map(|&i| list(i))).await;
    }
    let before = rss_kib(book.child.id());
    for chunk in (2_000..32_000).collect::<Vec<_>>().chunks(32) {
        join_all(chunk.iter().map(|&i| list(i))).await;
    }
    let after = rss_kib(book.child.id());
    assert!(
        after <= before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 30,000 distinct filters"
    );
}

/// An auth-service stand-in that publishes the real auth-service's keys but never sends a
/// single revocation: a revocation stream that is stuck (a fault the real service cannot be
/// made to show).
struct SilentRevocations {
    real: SocketAddr,
}

type Never = Pin<Box<dyn Stream<Item = Result<WatchRevocationsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RevocationService for SilentRevocations {
    type WatchRevocationsStream = Never;

    async fn watch_revocations(
        &self,
        _request: Request<WatchRevocationsRequest>,
    ) -> Result<Response<Never>, Status> {
        Ok(Response::new(Box::pin(futures::stream::pending())))
    }
}

#[tonic::async_trait]
impl AuthService for SilentRevocations {
    async fn register(
        &self,
        _: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }
    async fn login(&self, _: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }
    async fn refresh_token(
        &self,
        _: Request<RefreshTokenRequest>,
    ) -> Result<Response<RefreshTokenResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }
    async fn logout(&self, _: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }
    async fn get_jwks(
        &self,
        request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        self.real().await?.get_jwks(request.into_inner()).await
    }
    async fn issue_client_token(
        &self,
        request: Request<IssueClientTokenRequest>,
    ) -> Result<Response<IssueClientTokenResponse>, Status> {
        self.real()
            .await?
            .issue_client_token(request.into_inner())
            .await
    }
}

impl SilentRevocations {
    async fn real(&self) -> Result<AuthServiceClient<tonic::transport::Channel>, Status> {
        AuthServiceClient::connect(format!("http://{}", self.real))
            .await
            .map_err(|e| Status::unavailable(e.to_string()))
    }
}

#[tokio::test]
async fn no_call_is_admitted_before_the_revocation_backlog_has_arrived() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = start_auth(dir.path(), any_port()).await;
    let alice = register_and_login(auth.addr, "alice").await;
    let stand_in = Arc::new(SilentRevocations { real: auth.addr });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AuthServiceServer::from_arc(stand_in.clone()))
            .add_service(RevocationServiceServer::from_arc(stand_in))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let book = start_book_with(dir.path(), silent, |_| {}).await;
    let mut books = BookServiceClient::connect(format!("http://{}", book.addr))
        .await
        .expect("connect");
    // Long enough for the keys to arrive; the revocations never do.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(health(book.addr).await, Some(ServingStatus::NotServing));
    let status = expect_code(
        books
            .list_books(bearer(ListBooksRequest::default(), alice.token()))
            .await,
        Code::Unavailable,
    );
    assert_eq!(reason(&status), "NOT_READY");
}

#[tokio::test]
async fn create_book_request_ids_are_forgotten_after_a_day() {
    use book_service::{books::Books, db::Db, validate::BookFields};
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::connect(&database_url(dir.path(), "books.db"))
        .await
        .expect("database");
    let (clock, hand) = bookstore_kit::clock::Clock::manual(chrono::Utc::now());
    let books = Books {
        db,
        page_tokens: bookstore_kit::paging::PageTokens::new([7; 32]),
        clock,
        total_sizes: Arc::default(),
        max_books_per_user: 100,
    };
    let fields = || BookFields {
        title: "Kindred".into(),
        author: "Octavia E. Butler".into(),
        publisher: String::new(),
        price_cents: 1599,
        isbn: None,
    };
    let owner = uuid::Uuid::now_v7().to_string();
    let request = Some(uuid::Uuid::now_v7().to_string());
    let first = books
        .create(&owner, fields(), request.clone())
        .await
        .expect("create");
    hand.advance_seconds(23 * 3600);
    assert_eq!(books.purge().await.expect("purge"), 0, "kept for a day");
    let retried = books
        .create(&owner, fields(), request.clone())
        .await
        .expect("retry");
    assert_eq!(retried.id, first.id, "a retry within the day is recognised");
    hand.advance_seconds(2 * 3600);
    assert_eq!(books.purge().await.expect("purge"), 1, "gone after a day");
    let later = books
        .create(&owner, fields(), request)
        .await
        .expect("create again");
    assert_ne!(later.id, first.id, "the id is new again");
}

#[tokio::test]
async fn text_with_a_nul_is_invalid_argument_and_odd_ids_never_reach_the_database() {
    let stack = Stack::spawn().await;
    let alice = stack.user("alice").await;
    let mut books = stack.books().await;
    let mut nul = sample("Kindred");
    nul.title = "Kin\0dred".into();
    nul.publisher = "Bea\0con".into();
    let status = expect_code(
        books
            .create_book(bearer(
                CreateBookRequest {
                    book: Some(nul),
                    ..Default::default()
                },
                alice.token(),
            ))
            .await,
        Code::InvalidArgument,
    );
    let fields = crate::helpers::violated_fields(&status);
    assert_eq!(fields, ["book.title", "book.publisher"]);
    let status = expect_code(
        books
            .list_books(bearer(
                ListBooksRequest {
                    author: "Le\0Guin".into(),
                    ..Default::default()
                },
                alice.token(),
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(format!("{:?}", status.get_details_bad_request()).contains("author"));
    for id in ["\0", "not-a-uuid\0", "x"] {
        let status = expect_code(
            books
                .get_book(bearer(
                    bookstore_contract::proto::book::GetBookRequest { id: id.into() },
                    alice.token(),
                ))
                .await,
            Code::NotFound,
        );
        assert_eq!(reason(&status), "BOOK_NOT_FOUND");
        expect_code(
            books
                .delete_book(bearer(
                    DeleteBookRequest {
                        id: id.into(),
                        ..Default::default()
                    },
                    alice.token(),
                ))
                .await,
            Code::NotFound,
        );
    }
    let unknown = stack
        .auth_client()
        .await
        .issue_client_token(IssueClientTokenRequest {
            client_id: "bad\0id".into(),
            client_secret: "whatever".into(),
            scopes: Vec::new(),
        })
        .await;
    expect_code(unknown, Code::Unauthenticated);
}
