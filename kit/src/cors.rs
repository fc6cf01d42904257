//! CORS for gRPC-Web callers: browsers reach a service only from the origins of
//! `--cors-origins`. A request from an allowed origin goes through tower-http's CORS service,
//! which answers its preflight and adds the response headers a gRPC-Web client needs. A request
//! from any other origin gets no CORS header at all: its preflight is refused with 403, and a
//! simple request is served as any other client's (the browser then hides the answer from the
//! page). Clients that are not browsers send no `Origin` and are not concerned.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::Either;
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors};

/// Request headers a browser's gRPC-Web client may send.
const ALLOW_HEADERS: [&str; 4] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "authorization",
];
/// Response headers a gRPC-Web client must read: the status travels in them when an error
/// comes with no message ("trailers-only").
const EXPOSE_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];
/// How long a browser may keep a preflight's answer.
const MAX_AGE: Duration = Duration::from_secs(600);

/// Checks one `--cors-origins` entry: an origin is `scheme://host[:port]`, as a browser sends it
/// in its `Origin` header, with no path and no trailing slash (which never matches).
pub fn parse_origin(origin: &str) -> Result<String, String> {
    let explain = || {
        format!("{origin:?} is not an origin: write scheme://host[:port], as http://127.0.0.1:8080")
    };
    let uri: http::Uri = origin.parse().map_err(|_| explain())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    // The parser reads a missing path as "/": the text itself must end at the authority.
    let bare = uri
        .authority()
        .is_some_and(|a| origin.ends_with(a.as_str()))
        && uri.query().is_none();
    if scheme_ok && bare && HeaderValue::from_str(origin).is_ok() {
        Ok(origin.to_owned())
    } else {
        Err(explain())
    }
}

/// The layer: `origins` are exact origins (checked by [`parse_origin`]); none means no browser
/// is let in.
#[derive(Debug, Clone)]
pub struct CorsLayer {
    allowed: Arc<[HeaderValue]>,
    cors: tower_http::cors::CorsLayer,
}

impl CorsLayer {
    /// Allows exactly `origins`.
    pub fn new(origins: &[String]) -> CorsLayer {
        let allowed: Arc<[HeaderValue]> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        let names = |names: &[&'static str]| -> Vec<HeaderName> {
            names.iter().map(|n| HeaderName::from_static(n)).collect()
        };
        let cors = tower_http::cors::CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed.iter().cloned()))
            .allow_methods([Method::POST])
            .allow_headers(names(&ALLOW_HEADERS))
            .expose_headers(names(&EXPOSE_HEADERS))
            .max_age(MAX_AGE);
        CorsLayer { allowed, cors }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = CorsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CorsService {
            allowed: self.allowed.clone(),
            cors: self.cors.layer(inner),
        }
    }
}

/// The service made by [`CorsLayer`].
#[derive(Debug, Clone)]
pub struct CorsService<S> {
    allowed: Arc<[HeaderValue]>,
    /// tower-http's CORS around the inner service, which other origins reach directly.
    cors: Cors<S>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<
        tower_http::cors::ResponseFuture<S::Future>,
        Either<std::future::Ready<Result<Response<ResBody>, S::Error>>, S::Future>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let origin = request.headers().get(header::ORIGIN);
        if origin.is_some_and(|o| self.allowed.contains(o)) {
            return Either::Left(self.cors.call(request));
        }
        if origin.is_some() && request.method() == Method::OPTIONS {
            let mut refused = Response::new(ResBody::default());
            *refused.status_mut() = StatusCode::FORBIDDEN;
            return Either::Right(Either::Left(std::future::ready(Ok(refused))));
        }
        Either::Right(Either::Right(self.cors.get_mut().call(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_origin;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "http://127.0.0.1:8080",
            "https://books.example",
            "http://localhost",
        ] {
            assert_eq!(parse_origin(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://host/path",
            "ftp://host",
            "http://host?x=1",
            "*",
        ] {
            let error = parse_origin(bad).expect_err(bad);
            assert!(error.contains("is not an origin"), "{bad}: {error}");
        }
    }
}
