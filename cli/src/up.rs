//! `bookstore up`: both services in this process, each on its own SQLite file, and the
//! bookshelf web page ([`crate::web`]), stopped together by SIGTERM or Ctrl-C (health
//! NOT_SERVING, drain, exit 0).

use anyhow::Context;
use bookstore_kit::{signal::shutdown_signal, storage::sqlite_url};
use tokio::sync::watch;

use crate::{args::UpArgs, tls, web};

/// Runs both services until a shutdown signal.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let dir = args.data_dir.canonicalize()?;
    let certs = args.tls.then(|| tls::ensure(&dir)).transpose()?;
    let (scheme, host) = if certs.is_some() {
        ("https", "localhost")
    } else {
        ("http", "127.0.0.1")
    };

    // Bound first, as the services bind theirs: the page's origin is known before they start.
    let web_listener = match args.no_web {
        true => None,
        false => Some(
            tokio::net::TcpListener::bind(args.web_listen)
                .await
                .with_context(|| format!("cannot listen on {} (--web-listen)", args.web_listen))?,
        ),
    };
    let web_addr = web_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let page_origins = web_addr.map(web::origins).unwrap_or_default();

    let mut auth_config = auth_service::Config::from_env();
    auth_config.serve.listen = args.auth_listen;
    auth_config.serve.http_listen = Some(args.auth_http_listen);
    auth_config.serve.database_url = sqlite_url(&dir, "auth.db");
    let mut book_config = book_service::Config::from_env();
    book_config.serve.listen = args.book_listen;
    book_config.serve.http_listen = Some(args.book_http_listen);
    book_config.serve.database_url = sqlite_url(&dir, "books.db");
    for serve in [&mut auth_config.serve, &mut book_config.serve] {
        serve.cors_origins.extend(page_origins.iter().cloned());
    }
    if let Some(certs) = &certs {
        for serve in [&mut auth_config.serve, &mut book_config.serve] {
            serve.tls_cert = Some(certs.cert.clone());
            serve.tls_key = Some(certs.key.clone());
        }
        book_config.auth_ca_cert = Some(certs.ca.clone());
    }
    let admin_config = auth_config.clone();
    let auth_app = auth_service::build(auth_config)
        .await
        .context("auth-service")?;
    let secret_file = provision_book_client(&admin_config, &dir).await?;
    book_config.auth_client_id = Some(BOOK_CLIENT.to_string());
    book_config.auth_client_secret_file = Some(secret_file);
    let auth_addr = auth_app.local_addr();
    let auth_http = auth_app.http_addr();
    let auth_url = format!("{scheme}://{host}:{}", auth_addr.port());
    book_config.auth_url = auth_url.clone();
    let book_app = book_service::build(book_config)
        .await
        .context("book-service")?;
    let book_addr = book_app.local_addr();
    let book_http = book_app.http_addr();
    let book_url = format!("{scheme}://{host}:{}", book_addr.port());

    let (stop, stopped) = watch::channel(());
    let on_stop = |mut rx: watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let mut auth = tokio::spawn(auth_app.run_until_stopped(on_stop(stopped.clone())));
    let mut book = tokio::spawn(book_app.run_until_stopped(on_stop(stopped.clone())));
    let page = web_listener.map(|listener| {
        let router = web::router(&auth_url, &book_url);
        tokio::spawn(web::serve(listener, router, on_stop(stopped)))
    });

    println!("Bookstore is up (data in {}):", dir.display());
    println!("  auth-service  {auth_url}");
    println!("  book-service  {book_url}");
    if let (Some(auth_http), Some(book_http)) = (auth_http, book_http) {
        println!(
            "  metrics       http://{auth_http}/metrics  http://{book_http}/metrics (and /healthz; JWKS at http://{auth_http}/.well-known/jwks.json)"
        );
    }
    if let Some(addr) = web_addr {
        println!("  bookshelf     http://{addr}/");
    }
    match &certs {
        None => println!("Try: grpcurl -plaintext {auth_addr} list"),
        Some(certs) => {
            let ca = certs.ca.display();
            println!("TLS with the local CA {ca}:");
            println!(
                "Try: grpcurl -cacert {ca} localhost:{} list",
                auth_addr.port()
            );
            println!(
                "CLI: export BOOKSTORE_CA_CERT={ca} BOOKSTORE_AUTH_URL={auth_url} BOOKSTORE_BOOK_URL={book_url}"
            );
        }
    }
    println!("Stop with Ctrl-C.");

    // Stop on a signal, or as soon as either service ends on its own (an error).
    tokio::select! {
        () = shutdown_signal() => {
            let _ = stop.send(());
            report("auth-service", auth.await)?;
            report("book-service", book.await)?;
        }
        result = &mut auth => {
            let _ = stop.send(());
            let other = book.await;
            report("auth-service", result)?;
            report("book-service", other)?;
        }
        result = &mut book => {
            let _ = stop.send(());
            let other = auth.await;
            report("book-service", result)?;
            report("auth-service", other)?;
        }
    }
    if let Some(page) = page {
        report("web page", page.await)?;
    }
    println!("Bookstore stopped.");
    Ok(())
}

/// The service client book-service watches revocations as.
const BOOK_CLIENT: &str = "book-service";

/// Makes sure auth-service's database has book-service's client (scope `revocations:watch`)
/// and `DIR/book-service.secret` (0600) holds its secret: created on the first `up`, kept
/// after. Returns the secret file.
async fn provision_book_client(
    config: &auth_service::Config,
    dir: &std::path::Path,
) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("book-service.secret");
    let admin = auth_service::admin::Admin::open(config).await?;
    let ensured = admin
        .ensure_client(
            BOOK_CLIENT,
            bookstore_contract::scope::REVOCATIONS_WATCH,
            &path,
        )
        .await;
    admin.close().await;
    ensured?;
    Ok(path)
}

fn report(
    name: &str,
    result: Result<anyhow::Result<()>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.context(format!("{name} failed"))),
        Err(e) => Err(anyhow::anyhow!("{name} crashed: {e}")),
    }
}
