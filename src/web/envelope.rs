//! What every request and response passes, in one middleware: the request id, the request's span
//! and access-log line, error rendering, security headers and metrics.
//!
//! One layer, not five: each `from_fn` layer boxes a future and a service per request, and each
//! tower-http layer adds its own future. Discovery and JWKS answer from cached bytes, so this
//! envelope is most of what they cost beyond the kernel's TCP work.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::app::App;
use crate::i18n;
use crate::telemetry::{self, RouteLabel};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client (a proxy's); longer or odd ones are replaced, so
/// a log line cannot be padded or forged through it.
const MAX_REQUEST_ID: usize = 64;

const CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'",
);

pub async fn envelope(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = match req.headers().get(&REQUEST_ID) {
        Some(id) if acceptable(id) => id.clone(),
        _ => {
            let id = new_request_id();
            req.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    let id = request_id.to_str().unwrap_or_default();
    let method = telemetry::method_label(req.method());
    // For an error page, should there be one: the language from the cookie and the browser.
    let html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
        .then(|| i18n::negotiate(&i18n::Preferences::of(req.headers())));
    let span = tracing::info_span!("request", method, path = %req.uri().path(), request_id = %id);
    let response = next.run(req).instrument(span.clone()).await;

    let _entered = span.enter();
    let mut response = super::error::render(&app, html, id, response);
    security_headers(app.config.https(), &mut response);
    response
        .headers_mut()
        .insert(REQUEST_ID, request_id.clone());
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or("unmatched", |l| l.0);
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    app.metrics
        .observe(method, route, status, elapsed.as_secs_f64());
    tracing::info!(
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "finished processing request"
    );
    response
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
    headers.reserve(7);
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
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(CSP);
    }
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
}
