//! The client commands: each one call (or a few) to the services, then printing.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use bookstore_contract::proto::{
    auth::{GetCurrentUserRequest, LoginRequest, LogoutRequest, RegisterRequest},
    book::{
        Book, CreateBookRequest, DeleteBookRequest, GetBookRequest, ListBooksRequest,
        ListBooksResponse, UpdateBookRequest,
    },
};

use crate::{
    args::{BooksCommand, Credentials},
    client::{self, bearer, Urls},
    output::{self, parse_price},
    session::{self, Session},
};

/// The password: one line of stdin with `--password-stdin`, else a prompt without echo.
fn password(credentials: &Credentials, confirm: bool) -> anyhow::Result<String> {
    if credentials.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        return Ok(line.strip_suffix('\r').unwrap_or(line).to_string());
    }
    if !std::io::stdin().is_terminal() {
        bail!("stdin is not a terminal: pass the password on stdin with --password-stdin");
    }
    let password = rpassword::prompt_password("Password: ")?;
    if confirm && rpassword::prompt_password("Repeat password: ")? != password {
        bail!("the passwords do not match");
    }
    Ok(password)
}

/// `bookstore register NAME`.
pub async fn register(urls: &Urls, credentials: Credentials) -> anyhow::Result<()> {
    let password = password(&credentials, true)?;
    let user = client::auth(urls)
        .await?
        .register(RegisterRequest {
            username: credentials.username,
            password,
        })
        .await?
        .into_inner()
        .user
        .context("auth-service answered without a user")?;
    println!("registered {} ({})", user.username, user.id);
    Ok(())
}

/// `bookstore login NAME`.
pub async fn login(urls: &Urls, credentials: Credentials) -> anyhow::Result<()> {
    let password = password(&credentials, false)?;
    let login = client::auth(urls)
        .await?
        .login(LoginRequest {
            scopes: Vec::new(),
            username: credentials.username,
            password,
        })
        .await?
        .into_inner();
    let username = login.user.map(|u| u.username).unwrap_or_default();
    session::save(&Session {
        username: username.clone(),
        access_token: login.access_token,
        access_expires_at: session::unix_now() + login.expires_in,
        refresh_token: login.refresh_token,
    })?;
    println!("logged in as {username}");
    Ok(())
}

/// `bookstore logout`: ends the login session (its refresh tokens and access tokens), forgets
/// the tokens, then shows that the old access token is refused by both services.
pub async fn logout(urls: &Urls) -> anyhow::Result<()> {
    let Some(session) = session::load()? else {
        println!("not logged in");
        return Ok(());
    };
    client::auth(urls)
        .await?
        .logout(LogoutRequest {
            refresh_token: session.refresh_token,
        })
        .await?;
    session::delete()?;
    println!("logged out {}", session.username);
    let token = session.access_token;
    let started = std::time::Instant::now();
    let auth = refused_within(REFUSAL_WAIT, || async {
        client::users(urls)
            .await?
            .get_current_user(bearer(GetCurrentUserRequest {}, &token)?)
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from)
    });
    let books = refused_within(REFUSAL_WAIT, || async {
        client::books(urls)
            .await?
            .list_books(bearer(
                ListBooksRequest {
                    page_size: 1,
                    ..Default::default()
                },
                &token,
            )?)
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from)
    });
    for (service, refused) in [("auth-service", auth.await), ("book-service", books.await)] {
        match refused {
            Ok(()) => println!(
                "  {service}: the access token is refused (revoked) after {} ms",
                started.elapsed().as_millis()
            ),
            Err(e) => println!("  {service}: could not confirm the refusal: {e:#}"),
        }
    }
    Ok(())
}

/// How long `logout` waits to see the old token refused.
const REFUSAL_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Calls `call` until it answers UNAUTHENTICATED (the token is refused), for at most `within`.
async fn refused_within<F, Fut>(within: std::time::Duration, call: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        match call().await {
            Err(e)
                if e.downcast_ref::<tonic::Status>()
                    .is_some_and(|s| s.code() == tonic::Code::Unauthenticated) =>
            {
                return Ok(());
            }
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Ok(()) if std::time::Instant::now() >= deadline => {
                bail!("still accepted after {} s", within.as_secs())
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// `bookstore token`.
pub async fn token(urls: &Urls, scopes: &str) -> anyhow::Result<()> {
    let scopes: Vec<String> = scopes.split_whitespace().map(str::to_string).collect();
    println!("{}", session::narrowed_token(urls, scopes).await?);
    Ok(())
}

/// `bookstore whoami`.
pub async fn whoami(urls: &Urls) -> anyhow::Result<()> {
    let token = session::access_token(urls).await?;
    let user = client::users(urls)
        .await?
        .get_current_user(bearer(GetCurrentUserRequest {}, &token)?)
        .await?
        .into_inner()
        .user
        .context("auth-service answered without a user")?;
    println!("{}", user.username);
    Ok(())
}

fn print_book(book: &Book, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", output::json(book, "bookstore.book.v1.Book")?);
    } else {
        println!("{}", output::book_details(book));
    }
    Ok(())
}

/// `bookstore books ...`.
pub async fn books(urls: &Urls, command: BooksCommand) -> anyhow::Result<()> {
    let token = session::access_token(urls).await?;
    let mut books = client::books(urls).await?;
    match command {
        BooksCommand::Add {
            title,
            author,
            publisher,
            price,
            isbn,
            json,
        } => {
            let price_cents = parse_price(&price).map_err(anyhow::Error::msg)?;
            let book = Book {
                title,
                author,
                publisher,
                price_cents,
                isbn,
                ..Book::default()
            };
            // A request_id makes a retry of this exact command safe (AIP-155).
            let request = CreateBookRequest {
                book: Some(book),
                request_id: uuid::Uuid::new_v4().to_string(),
            };
            let created = books
                .create_book(bearer(request, &token)?)
                .await?
                .into_inner()
                .book;
            print_book(
                &created.context("book-service answered without a book")?,
                json,
            )?;
        }
        BooksCommand::List {
            author,
            query,
            json,
        } => {
            let mut all = Vec::new();
            let mut page_token = String::new();
            let total_size = loop {
                let request = ListBooksRequest {
                    page_size: 1000,
                    page_token,
                    author: author.clone().unwrap_or_default(),
                    title_query: query.clone().unwrap_or_default(),
                    owner_id: String::new(),
                };
                let page = books
                    .list_books(bearer(request, &token)?)
                    .await?
                    .into_inner();
                all.extend(page.books);
                page_token = page.next_page_token;
                if page_token.is_empty() {
                    break page.total_size;
                }
            };
            if json {
                let response = ListBooksResponse {
                    books: all,
                    next_page_token: String::new(),
                    total_size,
                };
                println!(
                    "{}",
                    output::json(&response, "bookstore.book.v1.ListBooksResponse")?
                );
            } else {
                println!("{}", output::books_table(&all));
            }
        }
        BooksCommand::Get { id, json } => {
            let book = books
                .get_book(bearer(GetBookRequest { id }, &token)?)
                .await?
                .into_inner()
                .book;
            print_book(&book.context("book-service answered without a book")?, json)?;
        }
        BooksCommand::Update {
            id,
            title,
            author,
            publisher,
            price,
            isbn,
            json,
        } => {
            let mut book = books
                .get_book(bearer(GetBookRequest { id }, &token)?)
                .await?
                .into_inner()
                .book
                .context("book-service answered without a book")?;
            let mut paths = Vec::new();
            if let Some(title) = title {
                book.title = title;
                paths.push("title".to_string());
            }
            if let Some(author) = author {
                book.author = author;
                paths.push("author".to_string());
            }
            if let Some(publisher) = publisher {
                book.publisher = publisher;
                paths.push("publisher".to_string());
            }
            if let Some(price) = price {
                book.price_cents = parse_price(&price).map_err(anyhow::Error::msg)?;
                paths.push("price_cents".to_string());
            }
            if let Some(isbn) = isbn {
                book.isbn = isbn;
                paths.push("isbn".to_string());
            }
            if paths.is_empty() {
                bail!("nothing to change: pass --title, --author, --publisher, --price or --isbn");
            }
            // The etag read above makes the change fail (ABORTED) if someone changed the book
            // in between, instead of silently overwriting their change.
            let request = UpdateBookRequest {
                book: Some(book),
                update_mask: Some(prost_types::FieldMask { paths }),
            };
            let updated = books
                .update_book(bearer(request, &token)?)
                .await?
                .into_inner()
                .book;
            print_book(
                &updated.context("book-service answered without a book")?,
                json,
            )?;
        }
        BooksCommand::Rm { id } => {
            books
                .delete_book(bearer(
                    DeleteBookRequest {
                        id: id.clone(),
                        etag: String::new(),
                    },
                    &token,
                )?)
                .await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}
