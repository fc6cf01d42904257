//! Prometheus metrics of one service: the go-grpc-prometheus server metrics, counted by one
//! tower layer for every RPC (health, reflection and calls the interceptor refuses included),
//! the process metrics, and whatever the service registers beside them. Served as text on the
//! HTTP side door (`/metrics`, [`crate::http`]).
//!
//! Label values never carry caller input: `grpc_service` and `grpc_method` come from the
//! descriptor sets the server was built with, and any other path counts as `unknown`.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use bytes::Buf;
use http_body::{Body, Frame};
use prometheus::{
    core::Collector, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use prost::Message;

/// The metrics of one service. Cheap to clone; clones share the registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    grpc: Arc<GrpcMetrics>,
    methods: Arc<HashMap<String, Arc<Method>>>,
    /// The labels of paths outside the descriptor sets.
    unknown: Arc<Method>,
    /// Run before each scrape, to read gauges that are cheaper to sample than to track.
    samplers: Arc<std::sync::Mutex<Vec<Sampler>>>,
}

type Sampler = Box<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

struct GrpcMetrics {
    started: IntCounterVec,
    handled: IntCounterVec,
    seconds: HistogramVec,
    received: IntCounterVec,
    sent: IntCounterVec,
}

/// What the labels of one RPC are, and its series once it has been called.
#[derive(Debug)]
struct Method {
    service: String,
    method: String,
    kind: &'static str,
    series: OnceLock<Series>,
}

/// The series of one RPC that every call touches, looked up on its first call: each
/// `with_label_values` hashes the labels and takes the family's lock, and a call would
/// otherwise do that five times (measured: 1.7 % of book-service's time under GetBook).
/// Looked up lazily, not at start-up, so `/metrics` shows only RPCs that were called.
#[derive(Debug)]
struct Series {
    started: IntCounter,
    received: IntCounter,
    sent: IntCounter,
    seconds: Histogram,
    /// `grpc_server_handled_total` with `grpc_code="OK"`; other codes are looked up per call.
    handled_ok: IntCounter,
}

impl Method {
    fn new(service: String, method: String, kind: &'static str) -> Self {
        Method {
            service,
            method,
            kind,
            series: OnceLock::new(),
        }
    }

    fn unknown() -> Self {
        Method::new("unknown".into(), "unknown".into(), "unary")
    }

    fn labels(&self) -> [&str; 3] {
        [self.kind, &self.service, &self.method]
    }

    fn series(&self, grpc: &GrpcMetrics) -> &Series {
        self.series.get_or_init(|| {
            let labels = self.labels();
            let [kind, service, method] = labels;
            Series {
                started: grpc.started.with_label_values(&labels),
                received: grpc.received.with_label_values(&labels),
                sent: grpc.sent.with_label_values(&labels),
                seconds: grpc.seconds.with_label_values(&labels),
                handled_ok: grpc.handled.with_label_values(&[
                    kind,
                    service,
                    method,
                    code_name(tonic::Code::Ok),
                ]),
            }
        })
    }
}

/// Every RPC of the encoded `FileDescriptorSet`s, by request path (`/package.Service/Method`).
fn methods(descriptor_sets: &[&[u8]]) -> HashMap<String, Arc<Method>> {
    let mut methods = HashMap::new();
    for set in descriptor_sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
            continue;
        };
        for file in &set.file {
            for service in &file.service {
                let full = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    let kind = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (false, true) => "server_stream",
                        (true, false) => "client_stream",
                        (true, true) => "bidi_stream",
                    };
                    methods.insert(
                        format!("/{full}/{}", method.name()),
                        Arc::new(Method::new(full.clone(), method.name().to_string(), kind)),
                    );
                }
            }
        }
    }
    methods
}

/// The go-grpc-prometheus spelling of a status code (`OK`, `InvalidArgument`, ...).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

const GRPC_LABELS: [&str; 3] = ["grpc_type", "grpc_service", "grpc_method"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the gRPC server metrics of every RPC a service serves (Bookstore's,
    /// health, reflection) and the process metrics.
    pub fn new() -> Self {
        Self::for_descriptor_sets(&[
            bookstore_contract::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ])
    }

    fn for_descriptor_sets(descriptor_sets: &[&[u8]]) -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let handled_labels = [GRPC_LABELS.as_slice(), &["grpc_code"]].concat();
        let grpc = GrpcMetrics {
            started: counter(
                "grpc_server_started_total",
                "Total number of RPCs started on the server.",
                &GRPC_LABELS,
            ),
            handled: counter(
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
                &handled_labels,
            ),
            seconds: HistogramVec::new(
                HistogramOpts::new(
                    "grpc_server_handling_seconds",
                    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0,
                ]),
                &GRPC_LABELS,
            )
            .expect("valid metric"),
            received: counter(
                "grpc_server_msg_received_total",
                "Total number of RPC stream messages received on the server.",
                &GRPC_LABELS,
            ),
            sent: counter(
                "grpc_server_msg_sent_total",
                "Total number of gRPC stream messages sent by the server.",
                &GRPC_LABELS,
            ),
        };
        let metrics = Metrics {
            registry,
            methods: Arc::new(methods(descriptor_sets)),
            unknown: Arc::new(Method::unknown()),
            grpc: Arc::new(grpc),
            samplers: Arc::default(),
        };
        metrics.register(crate::log_writer::LINES_DROPPED.clone());
        metrics.register(metrics.grpc.started.clone());
        metrics.register(metrics.grpc.handled.clone());
        metrics.register(metrics.grpc.seconds.clone());
        metrics.register(metrics.grpc.received.clone());
        metrics.register(metrics.grpc.sent.clone());
        metrics.register(prometheus::process_collector::ProcessCollector::for_self());
        metrics
    }

    /// Adds `collector` to this service's registry. A name registered twice is a bug.
    pub fn register<C: Collector + 'static>(&self, collector: C) {
        self.registry
            .register(Box::new(collector))
            .expect("each metric is registered once");
    }

    /// A counter family registered in this service's registry.
    pub fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
        self.register(counter.clone());
        counter
    }

    /// A gauge family registered in this service's registry.
    pub fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let gauge = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
        self.register(gauge.clone());
        gauge
    }

    /// Runs `sample` before every scrape (to set gauges read from elsewhere).
    pub fn sample_before_scrape(&self, sample: impl Fn() + Send + Sync + 'static) {
        self.samplers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(sample));
    }

    /// Everything in the Prometheus text format.
    pub fn encode(&self) -> String {
        for sample in self
            .samplers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            sample();
        }
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// Counts a call to `path` as started (and its request message as received).
    pub(crate) fn start(&self, path: &str) -> Call {
        // Shared labels and series: no allocation and no label lookup per call.
        let method = self.methods.get(path).unwrap_or(&self.unknown).clone();
        let series = method.series(&self.grpc);
        series.started.inc();
        series.received.inc();
        Call {
            metrics: self.clone(),
            method,
            start: Instant::now(),
            finished: false,
        }
    }
}

/// One call being counted; finished with its code (a call dropped unfinished counts as
/// `Canceled`).
pub(crate) struct Call {
    metrics: Metrics,
    method: Arc<Method>,
    start: Instant,
    finished: bool,
}

impl Call {
    /// The `grpc_service` label (`unknown` for paths outside the descriptor sets).
    pub(crate) fn service(&self) -> &str {
        &self.method.service
    }

    /// The `grpc_method` label.
    pub(crate) fn method(&self) -> &str {
        &self.method.method
    }

    fn series(&self) -> &Series {
        self.method.series(&self.metrics.grpc)
    }

    fn sent(&self, messages: u64) {
        self.series().sent.inc_by(messages);
    }

    pub(crate) fn finish(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let series = self.series();
        if code == tonic::Code::Ok {
            series.handled_ok.inc();
        } else {
            let [kind, service, method] = self.method.labels();
            self.metrics
                .grpc
                .handled
                .with_label_values(&[kind, service, method, code_name(code)])
                .inc();
        }
        series.seconds.observe(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

/// The grpc-status in `headers`, if there is one.
pub(crate) fn status_in(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
}

pin_project_lite::pin_project! {
    /// A response body that counts the gRPC messages it carries (their 5-byte length prefixes)
    /// and finishes the call with the grpc-status of its trailers.
    pub struct CountedBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
        // Bytes left of the message being read, and the length prefix read so far.
        left: usize,
        prefix: Prefix,
    }
}

impl<B> CountedBody<B> {
    pub(crate) fn new(inner: B, call: Option<Call>) -> Self {
        CountedBody {
            inner,
            call,
            left: 0,
            prefix: Prefix::default(),
        }
    }
}

/// Counts the messages that start in `data`, given what the previous chunks left open.
fn count_messages(mut data: &[u8], left: &mut usize, prefix: &mut Prefix) -> u64 {
    let mut started = 0;
    while !data.is_empty() {
        if *left > 0 {
            let skip = (*left).min(data.len());
            *left -= skip;
            data = &data[skip..];
            continue;
        }
        let take = (5 - prefix.len).min(data.len());
        prefix.bytes[prefix.len..prefix.len + take].copy_from_slice(&data[..take]);
        prefix.len += take;
        data = &data[take..];
        if prefix.len == 5 {
            started += 1;
            let [_, a, b, c, d] = prefix.bytes;
            *left = u32::from_be_bytes([a, b, c, d]) as usize;
            prefix.len = 0;
        }
    }
    started
}

/// The 5-byte gRPC message prefix (compression flag, big-endian length) read so far.
#[derive(Debug, Default)]
pub(crate) struct Prefix {
    bytes: [u8; 5],
    len: usize,
}

impl<B> Body for CountedBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(frame) = &polled {
            match frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let messages = count_messages(data.chunk(), this.left, this.prefix);
                        if let Some(call) = this.call.as_ref() {
                            call.sent(messages);
                        }
                    } else if let Some(trailers) = frame.trailers_ref() {
                        if let Some(mut call) = this.call.take() {
                            call.finish(status_in(trailers).unwrap_or(tonic::Code::Ok));
                        }
                    }
                }
                Some(Err(_)) => {
                    if let Some(mut call) = this.call.take() {
                        call.finish(tonic::Code::Internal);
                    }
                }
                None => {
                    if let Some(mut call) = this.call.take() {
                        call.finish(tonic::Code::Ok);
                    }
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_counted_across_chunk_boundaries() {
        let message = |len: u32| {
            let mut m = vec![0u8];
            m.extend_from_slice(&len.to_be_bytes());
            m.extend(std::iter::repeat_n(7u8, len as usize));
            m
        };
        let stream: Vec<u8> = [message(3), message(0), message(10)].concat();
        let (mut left, mut prefix) = (0, Prefix::default());
        let mut total = 0;
        for chunk in stream.chunks(4) {
            total += count_messages(chunk, &mut left, &mut prefix);
        }
        assert_eq!(total, 3);
    }

    #[test]
    fn methods_and_their_kinds_come_from_the_descriptor_sets() {
        let methods = methods(&[bookstore_contract::FILE_DESCRIPTOR_SET]);
        let watch = &methods["/bookstore.auth.v1.RevocationService/WatchRevocations"];
        assert_eq!(watch.kind, "server_stream");
        assert_eq!(
            methods["/bookstore.book.v1.BookService/GetBook"].kind,
            "unary"
        );
    }
}
