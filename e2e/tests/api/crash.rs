//! kill -9 of book-service during a burst of writers (16, and 64 so that group commit puts many
//! writes in each transaction): every acknowledged book survives, and no request_id is stored
//! twice.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use bookstore_contract::proto::book::{
    book_service_client::BookServiceClient, CreateBookRequest, GetBookRequest, ListBooksRequest,
};
use bookstore_testkit::{any_port, database_url, ChildService};
use tonic::transport::Channel;

use crate::helpers::{
    bearer, register_and_login, sample, start_auth, start_book_child, wait_serving,
};

async fn client(process: &ChildService) -> BookServiceClient<Channel> {
    wait_serving(process.addr.parse().expect("addr"), Duration::from_secs(10)).await;
    BookServiceClient::connect(process.url())
        .await
        .expect("connect")
}

fn request(request_id: &str) -> CreateBookRequest {
    CreateBookRequest {
        book: Some(sample(&format!("Burst {request_id}"))),
        request_id: request_id.to_string(),
    }
}

#[tokio::test]
async fn kill_9_during_a_16_writer_burst_loses_no_acknowledged_book() {
    kill_9_during_a_burst(16).await;
}

#[tokio::test]
async fn kill_9_during_a_64_writer_burst_loses_no_acknowledged_book() {
    kill_9_during_a_burst(64).await;
}

/// `count` writers create books with fresh request_ids until the server is killed (after 5
/// acknowledged books per writer), then every acknowledged book is read back and every request
/// sent is retried.
async fn kill_9_during_a_burst(count: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = start_auth(dir.path(), any_port()).await;
    let auth_url = auth.url();
    let db_url = database_url(dir.path(), "books.db");
    let alice = register_and_login(auth.addr, "alice").await;
    let token = alice.token().to_string();
    let process = start_book_child(&db_url, &auth_url, dir.path(), &[]).await;
    // request_id → book id for acknowledged creates; every request_id sent, acknowledged or not.
    let acknowledged = Arc::new(Mutex::new(HashMap::<String, String>::new()));
    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for _ in 0..count {
        let mut client = client(&process).await;
        let (acknowledged, sent, token) = (acknowledged.clone(), sent.clone(), token.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let request_id = uuid::Uuid::new_v4().to_string();
                sent.lock().expect("lock").push(request_id.clone());
                match client
                    .create_book(bearer(request(&request_id), &token))
                    .await
                {
                    Ok(response) => {
                        let id = response.into_inner().book.expect("book").id;
                        acknowledged.lock().expect("lock").insert(request_id, id);
                    }
                    Err(_) => break, // the server died
                }
            }
        }));
    }
    while acknowledged.lock().expect("lock").len() < 5 * count {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.kill9();
    for writer in writers {
        writer.await.expect("writer");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let sent = sent.lock().expect("lock").clone();

    let process = start_book_child(&db_url, &auth_url, dir.path(), &[]).await;
    let mut client = client(&process).await;
    for (request_id, id) in &acknowledged {
        let book = client
            .get_book(bearer(GetBookRequest { id: id.clone() }, &token))
            .await
            .unwrap_or_else(|e| panic!("acknowledged book {id} lost: {e:?}"))
            .into_inner()
            .book
            .expect("book");
        assert_eq!(book.title, format!("Burst {request_id}"));
    }
    // Retry every request that was sent: acknowledged ones return their first book, the others
    // are created at most once.
    let mut ids = HashSet::new();
    for request_id in &sent {
        let book = client
            .create_book(bearer(request(request_id), &token))
            .await
            .expect("retry")
            .into_inner()
            .book
            .expect("book");
        if let Some(first) = acknowledged.get(request_id) {
            assert_eq!(
                &book.id, first,
                "a retry of {request_id} made a second book"
            );
        }
        ids.insert(book.id);
    }
    let listed = client
        .list_books(bearer(ListBooksRequest::default(), &token))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed.total_size as usize,
        sent.len(),
        "one book per request_id, none twice"
    );
    assert_eq!(ids.len(), sent.len());
}
