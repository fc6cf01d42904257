//! gRPC-Web beside gRPC on the same port: tonic-web translates each gRPC-Web call (binary
//! `application/grpc-web+proto` or base64 `application/grpc-web-text`, over HTTP/1.1 or
//! HTTP/2) into a gRPC call for the services below it, and the answer back.
//!
//! Two additions, in [`GrpcWebAnswersLayer`] around tonic-web's layer:
//! - an error answered "trailers-only" (the status in the response headers and no body, as
//!   tonic answers every error) also gets its status as a trailer frame in the body. The
//!   gRPC-Web protocol allows either place; clients that read trailers only from the body (as
//!   every gRPC-Web client does for successful calls) then see the error too, and the headers
//!   stay for those that look there first;
//! - a text-mode request whose `Accept` names no gRPC-Web mode is answered in text mode, the
//!   mode it was asked in (tonic-web answers in binary unless `Accept` says text).

use std::task::{Context, Poll};

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{future::MapOk, TryFutureExt};
use http::{header, HeaderMap, Response};
use tonic::body::Body;
use tower::{Layer, Service};

/// The gRPC-Web frame flag of a trailer frame.
const TRAILER_FRAME: u8 = 0x80;
/// The trailers a status is made of.
const STATUS_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// The layer of both additions (put it around tonic-web's).
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcWebAnswersLayer;

impl<S> Layer<S> for GrpcWebAnswersLayer {
    type Service = GrpcWebAnswers<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcWebAnswers { inner }
    }
}

/// The service made by [`GrpcWebAnswersLayer`].
#[derive(Debug, Clone)]
pub struct GrpcWebAnswers<S> {
    inner: S,
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for GrpcWebAnswers<S>
where
    S: Service<http::Request<ReqBody>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = MapOk<S::Future, fn(Response<Body>) -> Response<Body>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        answer_in_the_mode_asked(request.headers_mut());
        self.inner
            .call(request)
            .map_ok(with_trailers_in_body as fn(_) -> _)
    }
}

/// A text-mode request (`application/grpc-web-text`) whose `Accept` is missing or names no
/// gRPC-Web type accepts text mode.
fn answer_in_the_mode_asked(headers: &mut HeaderMap) {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return;
    };
    let text = content_type
        .to_str()
        .is_ok_and(|c| c.starts_with("application/grpc-web-text"));
    let accepts_grpc_web = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/grpc-web"));
    if text && !accepts_grpc_web {
        let content_type = content_type.clone();
        headers.insert(header::ACCEPT, content_type);
    }
}

/// `response` unchanged, unless it is a trailers-only gRPC-Web answer: then its body is the
/// one trailer frame (base64 for the text mode).
fn with_trailers_in_body(mut response: Response<Body>) -> Response<Body> {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/grpc-web")
        || !response.headers().contains_key("grpc-status")
    {
        return response;
    }
    let frame = trailer_frame(response.headers());
    let body = if content_type.starts_with("application/grpc-web-text") {
        Bytes::from(base64::engine::general_purpose::STANDARD.encode(&frame))
    } else {
        frame
    };
    response.headers_mut().remove(header::CONTENT_LENGTH);
    *response.body_mut() = Body::new(http_body_util::Full::new(body));
    response
}

/// A gRPC-Web trailer frame holding the status headers of `headers`.
fn trailer_frame(headers: &HeaderMap) -> Bytes {
    let mut block = BytesMut::new();
    for name in STATUS_HEADERS {
        if let Some(value) = headers.get(name) {
            block.put_slice(name.as_bytes());
            block.put_u8(b':');
            block.put_slice(value.as_bytes());
            block.put_slice(b"\r\n");
        }
    }
    let mut frame = BytesMut::with_capacity(5 + block.len());
    frame.put_u8(TRAILER_FRAME);
    // A status block is a few hundred bytes: its length fits the frame's 32 bits.
    frame.put_u32(u32::try_from(block.len()).unwrap_or(u32::MAX));
    frame.put_slice(&block);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_trailer_frame_carries_the_status_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("16"));
        headers.insert("grpc-message", HeaderValue::from_static("no"));
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/grpc-web+proto"),
        );
        let frame = trailer_frame(&headers);
        let block = b"grpc-status:16\r\ngrpc-message:no\r\n";
        assert_eq!(frame[0], TRAILER_FRAME);
        assert_eq!(&frame[1..5], &(block.len() as u32).to_be_bytes());
        assert_eq!(&frame[5..], block);
    }
}
