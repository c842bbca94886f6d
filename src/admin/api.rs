//! The admin REST API under `{issuer}/api/v1`, answering errors as RFC 9457 problem details.
//! It starts with what operators of the sign-in page need first: lifting a lock.
//!
//! Callers are service clients of the tenant with an access token from the client-credentials
//! grant carrying the `sesame:admin` scope, which an administrator grants by listing the scope
//! in the client's `allowed_scopes` (see `docs/integrate-oidc.md`). Tokens are verified locally
//! (RFC 9068): signature by the tenant's keys, `typ`, issuer, audience (the issuer), expiry, and
//! the client still registered.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::Value;

use crate::account::Login;
use crate::app::App;
use crate::crypto::keys::KeyError;
use crate::oidc::access_token;
use crate::oidc::scope::Scope;
use crate::store::StoreError;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::users::{self, UserStatus};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;

/// The scope an access token needs for the admin API.
pub const SCOPE: &str = "sesame:admin";

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/api/v1/users/{user}/unlock",
            post(unlock).fallback(method_not_allowed),
        )
        // Anything else under the API is answered as a problem too, not as a page.
        .route("/api/{*rest}", any(unknown_path))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn unknown_path() -> ApiError {
    ApiError::NotFound("no such API resource".into())
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials at all: the challenge names no error (RFC 6750 §3.1).
    #[error("a valid access token is required")]
    NoToken,
    #[error("the access token is not valid here, or has expired or been revoked")]
    Unauthenticated,
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("the access token lacks the sesame:admin scope")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("this resource answers POST only")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the service is temporarily unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable,
            StoreError::NotFound(what) => ApiError::NotFound(what),
            other => {
                tracing::error!(error = %other, "admin API store error");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::NoToken | ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // RFC 6750 §3: the challenge says what was wrong with the token.
        let challenge = match self {
            ApiError::NoToken => Some("Bearer realm=\"sesame\""),
            ApiError::Unauthenticated => Some("Bearer realm=\"sesame\", error=\"invalid_token\""),
            ApiError::BadRequest(_) => Some("Bearer realm=\"sesame\", error=\"invalid_request\""),
            ApiError::Forbidden => Some(
                "Bearer realm=\"sesame\", error=\"insufficient_scope\", scope=\"sesame:admin\"",
            ),
            _ => None,
        };
        if let Some(c) = challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if matches!(self, ApiError::MethodNotAllowed) {
            headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// The client an admin request comes from, its token checked.
async fn authenticate(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    // Two credentials: which one counts is not ours to pick (RFC 6750 §3.1, invalid_request).
    if crate::oidc::repeats_authorization(headers) {
        return Err(ApiError::BadRequest(
            "the request carries more than one Authorization header",
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::NoToken)?
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty() && t.len() <= 8192)
        .ok_or(ApiError::Unauthenticated)?;
    let ring = app.keyring(tenant.id()).await.map_err(|e| match e {
        KeyError::Store(s) => ApiError::from(s),
        other => {
            tracing::error!(error = %other, "keyring unavailable");
            ApiError::Internal
        }
    })?;
    // Signed by this tenant, unexpired and not revoked (RFC 7009 or with its client's grants).
    let claims = access_token::live_claims(&ring, token, &tenant.issuer, app.now())
        .ok_or(ApiError::Unauthenticated)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let for_us = match claims.get("aud") {
        Some(Value::String(a)) => **a == *tenant.issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&*tenant.issuer)),
        _ => false,
    };
    let client_id = match for_us {
        true => text("client_id").ok_or(ApiError::Unauthenticated)?,
        false => return Err(ApiError::Unauthenticated),
    };
    // The client acting on its own behalf, not a user's token (RFC 9068 §2.2).
    if text("sub") != Some(client_id) {
        return Err(ApiError::Forbidden);
    }
    // A removed client's tokens, or tokens of a client whose scope was withdrawn, stop
    // working within the client cache's lifetime.
    let client = app
        .client(tenant.id(), client_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let scope = Scope::parse(text("scope").unwrap_or("")).unwrap_or_default();
    if !scope.contains(SCOPE) || !client.allowed_scopes.iter().any(|s| s == SCOPE) {
        return Err(ApiError::Forbidden);
    }
    Ok(client_id.to_string())
}

/// `POST {issuer}/api/v1/users/{user}/unlock`: ends a user's lock, temporary (failed sign-ins)
/// or set by an administrator; `{user}` is the id, username, email address or E.164 number.
/// 204 on success.
async fn unlock(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let caller = authenticate(&app, &tenant, &headers).await?;
    let named = params
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty() && v.len() <= 254)
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    let (t, now) = (tenant.id().clone(), app.now());
    let actor = format!("client:{caller}");
    let ip = client.ip.clone();
    let user_id = app
        .store
        .run(move |c| {
            let by_id = users::find(c, &t, &named)?;
            let user = match by_id {
                Some(u) => Some(u),
                None => match Login::parse(&named, None) {
                    Some(login) => users::find_by_login(c, &t, &login)?,
                    None => None,
                },
            };
            let Some(user) = user else {
                return Ok(None);
            };
            // Unlocking cannot let a disabled or pending account in: say so rather than
            // answer as if it could now sign in.
            if matches!(user.status, UserStatus::Disabled | UserStatus::Pending) {
                return Ok(Some(Err(user.status)));
            }
            users::unlock(c, &t, &user.id, now)?;
            audit::record(
                c,
                &t,
                &NewAuditEvent {
                    actor: &actor,
                    action: "user.unlock",
                    target: Some(&user.id),
                    outcome: "success",
                    ip: ip.as_deref(),
                    details: serde_json::json!({}),
                },
                now,
            )?;
            Ok(Some(Ok(user.id)))
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?
        .map_err(|status| match status {
            UserStatus::Pending => {
                ApiError::Conflict("the account is pending: unlocking does not activate it")
            }
            _ => ApiError::Conflict("the account is disabled: enable it to let the user sign in"),
        })?;
    app.forget_subject(tenant.id(), &user_id);
    Ok(StatusCode::NO_CONTENT)
}
