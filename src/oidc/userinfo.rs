//! The UserInfo endpoint (OIDC Core §5.3), GET and POST, with the access token as a Bearer
//! header or a form body parameter (RFC 6750 §2.1, §2.2; never the query, §2.3 being unsafe).
//! Errors are RFC 6750 §3 challenges.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::form::OAuthForm;
use super::scope::Scope;
use super::{access_token, claims, no_store};
use crate::app::App;
use crate::crypto::keys::KeyError;
use crate::flow::login;
use crate::store::StoreError;
use crate::tenant::resolve::TenantCtx;

/// RFC 6750 §3.1 errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No credentials at all: a bare challenge.
    #[error("an access token is required")]
    Missing,
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    #[error("the access token was not granted the openid scope")]
    InsufficientScope,
    #[error("the server is temporarily unable to handle the request")]
    Unavailable,
    #[error("the server encountered an unexpected condition")]
    Internal,
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => BearerError::Unavailable,
            other => {
                tracing::error!(error = %other, "store error at the UserInfo endpoint");
                BearerError::Internal
            }
        }
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            BearerError::Missing => (StatusCode::UNAUTHORIZED, None),
            BearerError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, Some("invalid_request")),
            BearerError::InvalidToken => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
            BearerError::InsufficientScope => (StatusCode::FORBIDDEN, Some("insufficient_scope")),
            BearerError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("temporarily_unavailable"),
            ),
            BearerError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, Some("server_error")),
        };
        let challenge = match (code, &self) {
            (None, _) => "Bearer realm=\"sesame\"".to_string(),
            (Some(c), BearerError::InsufficientScope) => format!(
                "Bearer realm=\"sesame\", error=\"{c}\", error_description=\"{self}\", scope=\"openid\""
            ),
            (Some(c), _) => {
                format!("Bearer realm=\"sesame\", error=\"{c}\", error_description=\"{self}\"")
            }
        };
        let mut response = match code {
            Some(c) => {
                let body = json!({ "error": c, "error_description": self.to_string() });
                no_store((status, Json(body)).into_response())
            }
            // §3.1: a request without credentials gets no error information, only the challenge.
            None => no_store(status.into_response()),
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// The access token of the request: a Bearer header or, for POST, the `access_token` form
/// parameter; both at once is `invalid_request` (§2).
pub fn bearer_token(
    headers: &HeaderMap,
    method: &Method,
    body: &[u8],
) -> Result<String, BearerError> {
    if super::repeats_authorization(headers) {
        return Err(BearerError::InvalidRequest(
            "send one Authorization header, not several",
        ));
    }
    let header_token = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| {
                BearerError::InvalidRequest("the Authorization header is malformed")
            })?;
            match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    let token = token.trim();
                    if !is_b64token(token) {
                        return Err(BearerError::InvalidRequest(
                            "the Authorization header is malformed",
                        ));
                    }
                    Some(token.to_string())
                }
                _ => return Err(BearerError::Missing),
            }
        }
        None => None,
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let body_token = if method == Method::POST && is_form {
        OAuthForm::parse(body)
            .map_err(|_| BearerError::InvalidRequest("the body repeats a parameter"))?
            .get("access_token")
            .map(str::to_string)
    } else {
        None
    };
    match (header_token, body_token) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest(
            "send the access token once, not in both the header and the body",
        )),
        (Some(t), None) | (None, Some(t)) if !t.is_empty() => Ok(t),
        _ => Err(BearerError::Missing),
    }
}

/// RFC 6750 §2.1's `b64token`: the credentials of a Bearer header, one token without spaces.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// `GET`/`POST /t/{tenant}/userinfo`
pub async fn userinfo(
    State(app): State<App>,
    tenant: TenantCtx,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, BearerError> {
    let token = bearer_token(&headers, &method, &body)?;
    let ring = app.keyring(tenant.id()).await.map_err(|e| match e {
        KeyError::Store(s) => BearerError::from(s),
        other => {
            tracing::error!(error = %other, "keyring unavailable");
            BearerError::Internal
        }
    })?;
    let now = app.now();
    let claims = access_token::live_claims(&ring, &token, &tenant.issuer, now)
        .ok_or(BearerError::InvalidToken)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    // A token minted for another resource (RFC 8707) is that resource's, not UserInfo's.
    let for_userinfo = match claims.get("aud") {
        Some(Value::String(a)) => **a == *tenant.issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&*tenant.issuer)),
        _ => false,
    };
    let (Some(sub), Some(client_id), true) = (text("sub"), text("client_id"), for_userinfo) else {
        return Err(BearerError::InvalidToken);
    };
    let scope = Scope::parse(text("scope").unwrap_or("")).unwrap_or_default();
    if !scope.contains("openid") {
        return Err(BearerError::InsufficientScope);
    }
    // A deleted client's tokens stop working here within the client cache's lifetime.
    let client = app
        .client(tenant.id(), client_id)
        .await?
        .ok_or(BearerError::InvalidToken)?;
    let subject = app
        .subject(tenant.id(), sub)
        .await?
        .filter(|s| login::check_account(&s.user, now) == login::AccountCheck::Allowed)
        .ok_or(BearerError::InvalidToken)?;
    // Claims the `claims` request parameter asked UserInfo for, carried by the access token.
    let requested: Vec<String> = claims
        .get(claims::USERINFO_CLAIMS)
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .take(32)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut out = claims::user_claims(
        &subject,
        tenant.id(),
        client.app_id.as_deref(),
        &scope,
        &requested,
    );
    out.insert("sub".into(), json!(subject.user.id));
    Ok(no_store(Json(Value::Object(out)).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn bearer_in_header_or_form_but_not_both() {
        let h = headers(&[("authorization", "Bearer abc")]);
        assert_eq!(bearer_token(&h, &Method::GET, b"").unwrap(), "abc");
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(
            bearer_token(&form, &Method::POST, b"access_token=xyz").unwrap(),
            "xyz"
        );
        assert_eq!(
            bearer_token(&form, &Method::GET, b"access_token=xyz"),
            Err(BearerError::Missing)
        );
        let both = headers(&[
            ("authorization", "Bearer abc"),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        assert!(matches!(
            bearer_token(&both, &Method::POST, b"access_token=xyz"),
            Err(BearerError::InvalidRequest(_))
        ));
        assert_eq!(
            bearer_token(
                &headers(&[("authorization", "Basic abc")]),
                &Method::GET,
                b""
            ),
            Err(BearerError::Missing)
        );
        assert_eq!(
            bearer_token(&HeaderMap::new(), &Method::GET, b""),
            Err(BearerError::Missing)
        );
        let mut twice = headers(&[("authorization", "Bearer abc")]);
        twice.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer def"),
        );
        assert!(matches!(
            bearer_token(&twice, &Method::GET, b""),
            Err(BearerError::InvalidRequest(_))
        ));
    }

    #[test]
    fn challenges_follow_rfc6750() {
        let r = BearerError::Missing.into_response();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"sesame\""
        );
        let r = BearerError::InvalidToken.into_response();
        let www = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(www.contains("error=\"invalid_token\""), "{www}");
        let r = BearerError::InsufficientScope.into_response();
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    }
}
