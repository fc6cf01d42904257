//! Logs and traces. Logs: level from `RUST_LOG` (default `info`), format from `LOG_FORMAT`
//! (`pretty`, the default, or `json` for one JSON object per line); the sink is a parameter, as
//! in zero2prod. Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and only then), spans are
//! exported with OTLP over gRPC, configured by the standard OpenTelemetry variables
//! (`OTEL_SERVICE_NAME` defaults to the binary's name), and W3C `traceparent` headers are
//! continued and propagated.
//!
//! Log lines cost the call that writes them as little as possible: they are gathered in memory
//! and written by a background thread on a timer ([`crate::log_writer`]), carry no trace-export
//! attributes, and carry ANSI colours only when stderr is a terminal and `NO_COLOR` is unset,
//! never into a file or a pipe.

use std::fmt;

use opentelemetry::{global, propagation::Extractor, trace::TracerProvider as _};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider, Resource};
use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::{RecordFields, VisitOutput},
    fmt::{
        format::{DefaultVisitor, Writer},
        FormatFields, FormattedFields,
    },
    layer::SubscriberExt,
    util::SubscriberInitExt,
    EnvFilter, Layer,
};

/// Flushes and stops trace export when dropped: `main` holds it until the process ends.
#[must_use = "traces are flushed when this is dropped: keep it until the process ends"]
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// Writes the gathered log lines when dropped.
    _log_writer: Option<crate::log_writer::Flusher>,
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
    let (writer, log_writer) = crate::log_writer::log_writer(sink);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(colour);
    // The log level filters the log lines only: spans are exported at `info` whatever
    // `RUST_LOG` says, so quieter logs never cost traces.
    let fmt = if json {
        fmt.json().flatten_event(true).with_filter(filter).boxed()
    } else {
        fmt.fmt_fields(TextFields).with_filter(filter).boxed()
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
    let exporting = otel.is_some();
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    if installed {
        EXPORTING_TRACES.store(exporting, std::sync::atomic::Ordering::Relaxed);
    }
    Telemetry {
        provider: provider.filter(|_| installed),
        _log_writer: installed.then_some(log_writer),
    }
}

/// The text format's fields without the span attributes kept for trace export (`otel.*`,
/// `rpc.*`, `enduser.*`): the call's line already says its method and user id.
struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = TextVisitor(DefaultVisitor::new(writer, true));
        fields.record(&mut visitor);
        visitor.0.finish()
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        self.format_fields(Writer::new(&mut added), fields)?;
        if !added.is_empty() {
            if !current.fields.is_empty() {
                current.fields.push(' ');
            }
            current.fields.push_str(&added);
        }
        Ok(())
    }
}

/// The default text visitor, skipping the trace-export attributes.
struct TextVisitor<'a>(DefaultVisitor<'a>);

fn for_traces_only(field: &Field) -> bool {
    ["otel.", "rpc.", "enduser."]
        .iter()
        .any(|prefix| field.name().starts_with(prefix))
}

impl Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !for_traces_only(field) {
            self.0.record_str(field, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !for_traces_only(field) {
            self.0.record_error(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !for_traces_only(field) {
            self.0.record_debug(field, value);
        }
    }
}

/// Whether spans are exported (set once by [`init`]): the call span carries the OpenTelemetry
/// attributes only then.
static EXPORTING_TRACES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process exports traces.
pub fn exporting_traces() -> bool {
    EXPORTING_TRACES.load(std::sync::atomic::Ordering::Relaxed)
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
