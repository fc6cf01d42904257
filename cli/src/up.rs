//! `bookstore up`: both services in this process, each on its own SQLite file, stopped together
//! by SIGTERM or Ctrl-C (health NOT_SERVING, drain, exit 0).

use std::path::Path;

use anyhow::Context;
use bookstore_common::server::shutdown_signal;
use tokio::{net::TcpListener, sync::watch};

use crate::args::UpArgs;

/// `sqlite://` URL of `file` in `dir`.
fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// Runs both services until a shutdown signal.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let dir = args.data_dir.canonicalize()?;
    let auth_listener = TcpListener::bind(args.auth_listen)
        .await
        .with_context(|| format!("cannot listen on {} for auth-service", args.auth_listen))?;
    let book_listener = TcpListener::bind(args.book_listen)
        .await
        .with_context(|| format!("cannot listen on {} for book-service", args.book_listen))?;
    let auth_addr = auth_listener.local_addr()?;
    let book_addr = book_listener.local_addr()?;

    let auth_config = auth_service::Config::with_database(sqlite_url(&dir, "auth.db"));
    let book_config =
        book_service::Config::new(sqlite_url(&dir, "books.db"), format!("http://{auth_addr}"));
    let (stop, stopped) = watch::channel(());
    let on_stop = |mut rx: watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let mut auth = tokio::spawn(auth_service::serve(
        auth_config,
        auth_listener,
        on_stop(stopped.clone()),
    ));
    let mut book = tokio::spawn(book_service::serve(
        book_config,
        book_listener,
        on_stop(stopped),
    ));

    println!("Bookstore is up (data in {}):", dir.display());
    println!("  auth-service  http://{auth_addr}");
    println!("  book-service  http://{book_addr}");
    println!("Try: grpcurl -plaintext {auth_addr} list");
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
    println!("Bookstore stopped.");
    Ok(())
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
