//! The command line of `bookstore`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

/// Bookstore: `bookstore up` runs auth-service and book-service in one process; the other
/// commands call them. Logs of `up`: level from RUST_LOG, format from LOG_FORMAT=json|pretty.
#[derive(Debug, Parser)]
#[command(name = "bookstore", version)]
pub struct Cli {
    /// auth-service to call (`--auth-url`, `BOOKSTORE_AUTH_URL`).
    #[arg(
        long,
        env = "BOOKSTORE_AUTH_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub auth_url: String,
    /// book-service to call (`--book-url`, `BOOKSTORE_BOOK_URL`).
    #[arg(
        long,
        env = "BOOKSTORE_BOOK_URL",
        default_value = "http://127.0.0.1:50052",
        global = true
    )]
    pub book_url: String,
    /// PEM CA certificate that signs the services' certificates, for `https://` URLs
    /// (`--ca-cert`, `BOOKSTORE_CA_CERT`; `bookstore up --tls` prints it).
    #[arg(long, env = "BOOKSTORE_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `bookstore` commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run auth-service and book-service in this process, with SQLite files under --data-dir.
    Up(UpArgs),
    /// Create an account (password from a prompt, or one line of stdin with --password-stdin).
    Register(Credentials),
    /// Log in and keep the tokens in a 0600 file under $XDG_CONFIG_HOME/bookstore/.
    Login(Credentials),
    /// Revoke the session's refresh token and delete the stored tokens.
    Logout,
    /// Print the logged-in username.
    Whoami,
    /// Print an access token for scripts (`authorization: Bearer $(bookstore token)`), holding
    /// only `--scopes` when given. As a service client when BOOKSTORE_CLIENT_ID and
    /// BOOKSTORE_CLIENT_SECRET are set, else for the logged-in user.
    Token {
        /// Space-separated scopes, e.g. "books:read" (default: all the identity holds).
        #[arg(long, default_value = "")]
        scopes: String,
    },
    /// Manage your books.
    #[command(subcommand)]
    Books(BooksCommand),
}

impl Command {
    /// The command's name, for its trace span (`bookstore login`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Up(_) => "bookstore up",
            Command::Register(_) => "bookstore register",
            Command::Login(_) => "bookstore login",
            Command::Logout => "bookstore logout",
            Command::Whoami => "bookstore whoami",
            Command::Token { .. } => "bookstore token",
            Command::Books(_) => "bookstore books",
        }
    }
}

/// `bookstore up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where auth.db and books.db live (`--data-dir`, `BOOKSTORE_DATA_DIR`).
    #[arg(long, env = "BOOKSTORE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// auth-service address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub auth_listen: SocketAddr,
    /// book-service address.
    #[arg(long, default_value = "127.0.0.1:50052")]
    pub book_listen: SocketAddr,
    /// auth-service's HTTP side door (`/metrics`, `/healthz`, `/.well-known/jwks.json`).
    #[arg(long, default_value = "127.0.0.1:9051")]
    pub auth_http_listen: SocketAddr,
    /// book-service's HTTP side door (`/metrics`, `/healthz`).
    #[arg(long, default_value = "127.0.0.1:9052")]
    pub book_http_listen: SocketAddr,
    /// Serve both services over TLS with a local CA and a certificate for localhost and
    /// 127.0.0.1, made under DATA_DIR/tls/ on first use and kept.
    #[arg(long)]
    pub tls: bool,
    /// Where the bookshelf web page is served; its origin may call both services (CORS).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub web_listen: SocketAddr,
    /// Do not serve the web page (and allow no origin beyond `--cors-origins` of the
    /// services' environment).
    #[arg(long)]
    pub no_web: bool,
}

/// A username and where the password comes from.
#[derive(Debug, Args)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Read the password as one line from stdin (trailing newline stripped) instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `bookstore books ...`.
#[derive(Debug, Subcommand)]
pub enum BooksCommand {
    /// Add a book.
    Add {
        /// Title.
        #[arg(long)]
        title: String,
        /// Author.
        #[arg(long)]
        author: String,
        /// Publisher.
        #[arg(long, default_value = "")]
        publisher: String,
        /// Price, e.g. 12.50.
        #[arg(long)]
        price: String,
        /// ISBN-10 or ISBN-13.
        #[arg(long, default_value = "")]
        isbn: String,
        /// Print the proto3 JSON form.
        #[arg(long)]
        json: bool,
    },
    /// List your books (every page).
    List {
        /// Only books by exactly this author (case-insensitive).
        #[arg(long)]
        author: Option<String>,
        /// Only books whose title contains this (case-insensitive).
        #[arg(long)]
        query: Option<String>,
        /// Print the proto3 JSON form.
        #[arg(long)]
        json: bool,
    },
    /// Show one book.
    Get {
        /// Book id.
        id: String,
        /// Print the proto3 JSON form.
        #[arg(long)]
        json: bool,
    },
    /// Change some fields of a book (only if nobody changed it meanwhile).
    Update {
        /// Book id.
        id: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New author.
        #[arg(long)]
        author: Option<String>,
        /// New publisher.
        #[arg(long)]
        publisher: Option<String>,
        /// New price, e.g. 12.50.
        #[arg(long)]
        price: Option<String>,
        /// New ISBN (empty to remove).
        #[arg(long)]
        isbn: Option<String>,
        /// Print the proto3 JSON form.
        #[arg(long)]
        json: bool,
    },
    /// Delete a book.
    Rm {
        /// Book id.
        id: String,
    },
}
