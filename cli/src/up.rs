//! `bookstore up`: both services in this process, each on its own SQLite file, stopped together
//! by SIGTERM or Ctrl-C (health NOT_SERVING, drain, exit 0).

use anyhow::Context;
use bookstore_kit::{server::shutdown_signal, storage::sqlite_url};
use tokio::sync::watch;

use crate::args::UpArgs;

/// Runs both services until a shutdown signal.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let dir = args.data_dir.canonicalize()?;
    let mut auth_config = auth_service::Config::from_env();
    auth_config.serve.listen = args.auth_listen;
    auth_config.serve.database_url = sqlite_url(&dir, "auth.db");
    let auth_app = auth_service::build(auth_config).await?;
    let auth_addr = auth_app.local_addr();

    let mut book_config = book_service::Config::from_env();
    book_config.serve.listen = args.book_listen;
    book_config.serve.database_url = sqlite_url(&dir, "books.db");
    book_config.auth_url = format!("http://{auth_addr}");
    let book_app = book_service::build(book_config).await?;
    let book_addr = book_app.local_addr();

    let (stop, stopped) = watch::channel(());
    let on_stop = |mut rx: watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let mut auth = tokio::spawn(auth_app.run_until_stopped(on_stop(stopped.clone())));
    let mut book = tokio::spawn(book_app.run_until_stopped(on_stop(stopped)));

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
