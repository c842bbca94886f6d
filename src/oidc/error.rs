//! `OAuthError`: the error of the token, introspection and revocation endpoints, shaped as
//! RFC 6749 §5.2 requires: JSON `{error, error_description}`, 400, or 401 with `WWW-Authenticate`
//! for a failed client authentication, never cached.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed. `basic` says whether the client tried HTTP Basic, which
    /// obliges a 401 with a `WWW-Authenticate: Basic` challenge (§5.2).
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    /// The body is over `http.max_body_bytes`: `invalid_request`, with status 413.
    #[error("the request body is too large")]
    RequestTooLarge,
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 8707 §2: the resource is unknown or not allowed to the client.
    #[error("{0}")]
    InvalidTarget(String),
    #[error("the server is temporarily unable to handle the request")]
    TemporarilyUnavailable,
    /// Too many failed client authentications from this address: 429 with `Retry-After`.
    #[error("too many failed client authentications; try again later")]
    TooManyAttempts { retry_after: i64 },
    #[error("the server encountered an unexpected condition")]
    ServerError,
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::RequestTooLarge => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::TemporarilyUnavailable | OAuthError::TooManyAttempts { .. } => {
                "temporarily_unavailable"
            }
            OAuthError::ServerError => "server_error",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            OAuthError::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            OAuthError::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => OAuthError::TemporarilyUnavailable,
            other => {
                tracing::error!(error = %other, "store error on an OAuth endpoint");
                OAuthError::ServerError
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code(), "error_description": self.to_string() });
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        // RFC 9110 §15.5.2: every 401 carries a challenge, whichever method the client tried.
        if let OAuthError::InvalidClient { .. } = self {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sesame\""),
            );
        }
        match self {
            OAuthError::TemporarilyUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            OAuthError::TooManyAttempts { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_client_over_basic_is_a_401_challenge() {
        let r = OAuthError::InvalidClient { basic: true }.into_response();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"sesame\""
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let r = OAuthError::InvalidClient { basic: false }.into_response();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers().get(header::WWW_AUTHENTICATE).is_some(),
            "every 401 challenges"
        );
    }

    #[test]
    fn a_lost_database_is_temporarily_unavailable() {
        let e = OAuthError::from(StoreError::Unavailable("gone".into()));
        assert_eq!(e.code(), "temporarily_unavailable");
        assert_eq!(e.into_response().status(), 503);
    }
}
