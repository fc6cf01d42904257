//! Log setup: level from `RUST_LOG` (default `info`), format from `LOG_FORMAT` (`pretty`, the
//! default, or `json` for one JSON object per line). The sink is a parameter, as in zero2prod:
//! binaries pass `std::io::stderr`, a test can pass a buffer.

use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

/// Installs the global subscriber writing to `sink`. Safe to call more than once (later calls
/// do nothing), so `bookstore up` and tests can start several services in one process.
pub fn init<W>(sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
