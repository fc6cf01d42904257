//! A real OTLP trace receiver for tests: the TraceService of the OpenTelemetry protobuf
//! definitions, keeping every span it is sent with its service name.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        trace_service_server::{TraceService, TraceServiceServer},
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    },
    common::v1::KeyValue,
    trace::v1::Span,
};
use tonic::{Request, Response, Status};

/// The spans received so far, each with its resource's `service.name`.
#[derive(Clone, Default)]
pub struct Receiver(Arc<Mutex<Vec<(String, Span)>>>);

impl Receiver {
    /// A receiver serving on a free loopback port; returns it and its `http://` endpoint.
    pub async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the OTLP receiver");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (receiver, endpoint)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<(String, Span)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits (at most `within`) for a span that `matches` (service name, span).
    pub async fn wait_for(
        &self,
        within: Duration,
        matches: impl Fn(&str, &Span) -> bool,
    ) -> (String, Span) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = self.spans().into_iter().find(|(s, span)| matches(s, span)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no matching span within {within:?}; got {:?}",
                self.spans()
                    .iter()
                    .map(|(s, span)| format!("{s}: {}", span.name))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| string(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    kept.push((service.clone(), span));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The value of attribute `key`.
pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// The string value of attribute `key`.
pub fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// Lower-case hex of trace and span ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
