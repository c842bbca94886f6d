//! What every request and response passes, in one service: the request id, the request's span
//! and access-log line, the body-size and time limits, error rendering, security headers and
//! metrics.
//!
//! One hand-written service, not a stack of layers: each `from_fn` layer boxes a future and a
//! service per request, and each tower-http layer adds its own future. Discovery and JWKS answer
//! from cached bytes, so this envelope is most of what they cost beyond the kernel's TCP work.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::Limited;
use tower::{BoxError, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::app::App;
use crate::i18n::{self, Locale};
use crate::telemetry::{self, RouteLabel};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client (a proxy's); longer or odd ones are replaced, so
/// a log line cannot be padded or forged through it.
const MAX_REQUEST_ID: usize = 64;

const CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'",
);

/// Wraps the router (`inner`); see the module documentation.
#[derive(Clone)]
pub struct Envelope<S> {
    app: App,
    inner: S,
    /// A request still unanswered after this gets 408.
    timeout: Duration,
    /// A request whose `Content-Length` is larger gets 413 before any handler runs; a body
    /// without one fails as it is read past this, which extractors answer with 413.
    max_body: usize,
}

impl<S> Envelope<S> {
    pub fn new(app: App, inner: S) -> Envelope<S> {
        let timeout = Duration::from_secs(app.config.http.request_timeout_secs.max(1));
        let max_body = app.config.http.max_body_bytes;
        Envelope {
            app,
            inner,
            timeout,
            max_body,
        }
    }
}

impl<S, B> Service<Request<B>> for Envelope<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Enveloped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().ok().and_then(|v| v.parse::<usize>().ok()));
        // hyper holds a body to its `Content-Length`; only a body without one (chunked, or an
        // HTTP/2 stream) needs bounding as it is read.
        let body = match declared {
            Some(Some(_)) => Body::new(body),
            _ if body.is_end_stream() => Body::new(body),
            _ => Body::new(Limited::new(body, self.max_body)),
        };
        let too_large = matches!(declared, Some(Some(length)) if length > self.max_body);
        let req = Request::from_parts(parts, body);
        let request_id = match req.headers().get(&REQUEST_ID) {
            Some(id) if acceptable(id) => id.clone(),
            _ => new_request_id(),
        };
        let method = telemetry::method_label(req.method());
        // For an error page, should there be one: the language from the cookie and the browser.
        // Endpoints only programs call answer in JSON whatever the Accept header says.
        let html = (!for_programs(req.uri().path())
            && req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("text/html")))
        .then(|| i18n::negotiate(&i18n::Preferences::of(req.headers())));
        let span = tracing::info_span!(
            "request",
            method,
            path = %req.uri().path(),
            request_id = %request_id.to_str().unwrap_or_default(),
        );
        let stage = if too_large {
            Stage::Refused
        } else {
            Stage::Running {
                future: tokio::time::timeout_at(
                    tokio::time::Instant::from_std(start) + self.timeout,
                    self.inner.call(req),
                )
                .instrument(span.clone()),
            }
        };
        Enveloped {
            stage,
            after: Some(After {
                app: self.app.clone(),
                start,
                request_id,
                method,
                html,
                span,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's answer, finished by [`After`].
    pub struct Enveloped<F> {
        #[pin]
        stage: Stage<F>,
        after: Option<After>,
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Running { #[pin] future: Instrumented<tokio::time::Timeout<F>> },
        Refused,
    }
}

impl<F> Future for Enveloped<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.stage.project() {
            StageProj::Running { future } => match ready!(future.poll(cx)) {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_elapsed) => StatusCode::REQUEST_TIMEOUT.into_response(),
            },
            StageProj::Refused => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
        Poll::Ready(Ok(match this.after.take() {
            Some(after) => after.finish(response),
            None => response,
        }))
    }
}

/// What the envelope keeps from the request for the response.
struct After {
    app: App,
    start: Instant,
    request_id: HeaderValue,
    method: &'static str,
    html: Option<Locale>,
    span: tracing::Span,
}

impl After {
    fn finish(self, response: Response) -> Response {
        let _entered = self.span.enter();
        let id = self.request_id.to_str().unwrap_or_default();
        let mut response = super::error::render(&self.app, self.html, id, response);
        security_headers(self.app.config.https(), &mut response);
        response.headers_mut().insert(REQUEST_ID, self.request_id);
        let route = response
            .extensions()
            .get::<RouteLabel>()
            .map_or("unmatched", |l| l.0);
        let status = response.status().as_u16();
        let elapsed = self.start.elapsed();
        self.app
            .metrics
            .observe(self.method, route, status, elapsed.as_secs_f64());
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "finished processing request"
        );
        response
    }
}

fn acceptable(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_request_id() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

/// Headers every response carries; a handler that sets its own CSP (for example a form_post
/// page) keeps it.
fn security_headers(https: bool, response: &mut Response) {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"text/html"));
    let headers = response.headers_mut();
    // Room for these and the request id at once, rather than growing the map as they go in.
    headers.reserve(8);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if is_html {
        // Powerful features no Sesame page uses, off for it and anything it might embed.
        headers.insert(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(
                "camera=(), microphone=(), geolocation=(), payment=(), usb=(), display-capture=()",
            ),
        );
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(CSP);
    }
}

/// Whether `path` is an endpoint for programs (OAuth token, introspection, revocation, UserInfo,
/// the admin API), whose errors are JSON (RFC 6749 §5.2, RFC 6750 §3) even for a client that
/// happens to accept HTML.
fn for_programs(path: &str) -> bool {
    // Tenants are reached by `/t/{tenant}` or by their own host; the rest is the endpoint.
    let endpoint = match path
        .strip_prefix("/t/")
        .and_then(|p| p.find('/').map(|i| &p[i..]))
    {
        Some(rest) => rest,
        None => path,
    };
    matches!(endpoint, "/token" | "/introspect" | "/revoke" | "/userinfo")
        || endpoint.starts_with("/api/v1/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_short_and_plain() {
        assert!(acceptable(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!acceptable(&HeaderValue::from_static("")));
        assert!(!acceptable(&HeaderValue::from_static("a b")));
        assert!(!acceptable(&HeaderValue::from_static("x\"y")));
        let long = HeaderValue::from_str(&"a".repeat(MAX_REQUEST_ID + 1)).unwrap();
        assert!(!acceptable(&long));
        assert_eq!(new_request_id().len(), 36);
    }

    #[test]
    fn only_the_protocol_endpoints_for_programs_skip_error_pages() {
        for path in [
            "/t/acme/token",
            "/token",
            "/t/acme/revoke",
            "/userinfo",
            "/t/acme/api/v1/users/alice/unlock",
        ] {
            assert!(for_programs(path), "{path}");
        }
        // A browser form whose path ends the same way is a page.
        for path in [
            "/t/acme/account/consents/revoke",
            "/account/consents/revoke",
            "/t/acme/login",
            "/t/token",
        ] {
            assert!(!for_programs(path), "{path}");
        }
    }
}
