//! Logs and traces. Logs: level from `RUST_LOG` (default `info`), format from `LOG_FORMAT`
//! (`pretty`, the default, or `json` for one JSON object per line); the sink is a parameter, as
//! in zero2prod. Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and only then), spans are
//! exported with OTLP over gRPC, configured by the standard OpenTelemetry variables
//! (`OTEL_SERVICE_NAME` defaults to the binary's name), and W3C `traceparent` headers are
//! continued and propagated.
//!
//! Log lines cost the call that writes them as little as possible: they go through a
//! non-blocking writer (a background thread writes whatever lines are waiting in one `write`;
//! lines beyond its 128k-line buffer are dropped rather than slowing calls), and carry ANSI colours only when stderr is a terminal
//! and `NO_COLOR` is unset, never into a file or a pipe.

use opentelemetry::{global, propagation::Extractor, trace::TracerProvider as _};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider, Resource};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

/// Flushes and stops trace export when dropped: `main` holds it until the process ends.
#[must_use = "traces are flushed when this is dropped: keep it until the process ends"]
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// Flushes the buffered log lines when dropped.
    _log_writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber writing logs to `sink` and, with
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, exporting spans of `service_name`. Safe to call more than
/// once (later calls do nothing), so `bookstore up` and tests can start several services in one
/// process. Must run inside the Tokio runtime (the OTLP exporter is a tonic client).
pub fn init<W>(sink: W, service_name: &str) -> Telemetry
where
    W: std::io::Write + Send + 'static,
{
    init_with_level(sink, service_name, "info")
}

/// [`init`] with another log level than `info` when `RUST_LOG` is unset (the CLI's client
/// commands log only warnings, so their stderr stays for their one-line errors).
pub fn init_with_level<W>(sink: W, service_name: &str, default_level: &str) -> Telemetry
where
    W: std::io::Write + Send + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    // The background thread writes every line waiting in the channel, then flushes: one
    // `write` per batch of lines instead of one per line.
    let sink = std::io::BufWriter::with_capacity(64 * 1024, sink);
    let (writer, log_writer) = tracing_appender::non_blocking(sink);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(colour);
    // The log level filters the log lines only: spans are exported at `info` whatever
    // `RUST_LOG` says, so quieter logs never cost traces.
    let fmt = if json {
        fmt.json().flatten_event(true).with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let provider = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT")
        .is_some()
        .then(|| tracer_provider(service_name))
        .and_then(|built| match built {
            Ok(provider) => Some(provider),
            Err(e) => {
                eprintln!("{service_name}: traces are off: {e}");
                None
            }
        });
    let otel = provider.as_ref().map(|provider| {
        global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("bookstore"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    Telemetry {
        provider: provider.filter(|_| installed),
        _log_writer: installed.then_some(log_writer),
    }
}

fn tracer_provider(service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service_name.to_string());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(name).build())
        .build())
}

/// Reads W3C trace context from HTTP/2 request headers.
pub(crate) struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
