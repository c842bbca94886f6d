//! Cross-origin access for the endpoints a browser-based app calls itself: the token endpoint
//! (a public client redeeming its code with PKCE), UserInfo and revocation (OAuth 2.0 for
//! Browser-Based Apps, §6; the discovery document and JWKS are public documents and say so
//! already).
//!
//! Any origin may call them, and no credentials ride along: these endpoints take no cookies, only
//! what the caller presents (a client's credentials, a code and its verifier, a token), which a
//! page on another origin could send from a server of its own just as well. Without
//! `Access-Control-Allow-Credentials` a browser never attaches the user's cookies, so the
//! permission grants nothing a script did not already hold. Introspection is for resource
//! servers and stays closed to pages.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Marks a response readable by a page of any origin, with the challenge of a refused bearer
/// token (RFC 6750 §3) among what the page may read.
pub async fn readable(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("www-authenticate"),
    );
    response
}

/// The answer to a CORS preflight (`OPTIONS`) at UserInfo, which takes GET and POST.
pub async fn preflight() -> Response {
    preflight_for("GET, POST")
}

/// The answer to a CORS preflight at the token and revocation endpoints, which take POST only.
pub async fn preflight_post() -> Response {
    preflight_for("POST")
}

/// A preflight answer: `methods` and the request headers these endpoints use, cached by the
/// browser for ten minutes.
fn preflight_for(methods: &'static str) -> Response {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    (StatusCode::NO_CONTENT, headers).into_response()
}
