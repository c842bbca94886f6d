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
use axum::routing::post;
use serde_json::Value;

use crate::account::Login;
use crate::app::App;
use crate::crypto::keys::KeyError;
use crate::oidc::access_token;
use crate::oidc::scope::Scope;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::{StoreError, users};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;

/// The scope an access token needs for the admin API.
pub const SCOPE: &str = "sesame:admin";

pub fn routes() -> Router<App> {
    Router::new().route("/api/v1/users/{user}/unlock", post(unlock))
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid access token is required")]
    Unauthenticated,
    #[error("the access token lacks the sesame:admin scope")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
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
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
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
            ApiError::Unauthenticated => Some("Bearer realm=\"sesame\", error=\"invalid_token\""),
            ApiError::Forbidden => Some(
                "Bearer realm=\"sesame\", error=\"insufficient_scope\", scope=\"sesame:admin\"",
            ),
            _ => None,
        };
        if let Some(c) = challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
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
    // Two credentials are none: which one counts is not ours to pick.
    if crate::oidc::repeats_authorization(headers) {
        return Err(ApiError::Unauthenticated);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
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
            Ok(Some(user.id))
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    app.forget_subject(tenant.id(), &user_id);
    Ok(StatusCode::NO_CONTENT)
}
