//! The token endpoint (RFC 6749 §3.2). The client authenticates first (§2.3); then the grant is
//! checked and redeemed: `authorization_code` and `refresh_token` (in [`super::grant`]) and
//! `client_credentials` (§4.4, here).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::access_token::{self, AccessToken};
use super::client_auth;
use super::error::OAuthError;
use super::form::OAuthForm;
use super::grant;
use super::scope::Scope;
use crate::app::App;
use crate::crypto::secret::random_token;
use crate::store::clients::{AuthMethod, Client};
use crate::tenant::resolve::TenantCtx;

/// Scopes about a user; a client acting on its own behalf has no user, so they are not granted.
const USER_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "offline_access",
];

/// `POST /t/{tenant}/token`
pub async fn token(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&app, &tenant, &headers, &form).await?;
    match form.require("grant_type")? {
        "authorization_code" => grant::authorization_code(&app, &tenant, &client, &form).await,
        "refresh_token" => grant::refresh_token(&app, &tenant, &client, &form).await,
        "client_credentials" => client_credentials(&app, &tenant, &client, &form).await,
        _ => Err(OAuthError::UnsupportedGrantType(
            "grant_type must be authorization_code, refresh_token or client_credentials".into(),
        )),
    }
}

/// RFC 6749 §4.4: a confidential client obtains a token for itself.
async fn client_credentials(
    app: &App,
    tenant: &TenantCtx,
    client: &Client,
    form: &OAuthForm,
) -> Result<Response, OAuthError> {
    if client.auth_method == AuthMethod::None {
        return Err(OAuthError::UnauthorizedClient(
            "a public client cannot use client_credentials".into(),
        ));
    }
    if !client.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(OAuthError::UnauthorizedClient(
            "this client is not registered for client_credentials".into(),
        ));
    }
    let requested = Scope::parse(form.get("scope").unwrap_or(""))
        .ok_or_else(|| OAuthError::InvalidScope("scope is malformed".into()))?;
    let user_scopes = Scope::parse(&USER_SCOPES.join(" ")).unwrap_or_default();
    let granted = Scope::parse(
        &requested
            .iter()
            .filter(|s| !user_scopes.contains(s))
            .collect::<Vec<_>>()
            .join(" "),
    )
    .unwrap_or_default();
    let audience = match form.get("resource") {
        Some(resource) => resource_indicator(resource)?,
        None => tenant.issuer.clone(),
    };
    let lifetime = client
        .access_token_lifetime
        .unwrap_or(app.config.tokens.access_token_lifetime);
    let jti = random_token(16);
    let claims = AccessToken {
        issuer: &tenant.issuer,
        audience: &audience,
        subject: &client.client_id,
        client_id: &client.client_id,
        scope: &granted,
        issued_at: app.now(),
        lifetime,
        jti: &jti,
    }
    .claims();
    let ring = app.keyring(tenant.id()).await.map_err(|e| match e {
        crate::crypto::keys::KeyError::Store(s) => OAuthError::from(s),
        other => {
            tracing::error!(error = %other, "keyring unavailable");
            OAuthError::ServerError
        }
    })?;
    let token = ring
        .sign(access_token::DEFAULT_ALG, access_token::TYP, claims)
        .map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            OAuthError::ServerError
        })?;
    let mut body = json!({ "access_token": token, "token_type": "Bearer", "expires_in": lifetime });
    if !granted.is_empty() {
        body["scope"] = json!(granted.to_string());
    }
    Ok(super::no_store(Json(body).into_response()))
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub(crate) fn resource_indicator(resource: &str) -> Result<String, OAuthError> {
    match url::Url::parse(resource) {
        Ok(u) if u.fragment().is_none() && !u.cannot_be_a_base() => Ok(resource.to_string()),
        _ => Err(OAuthError::InvalidRequest(
            "resource must be an absolute URI without a fragment".into(),
        )),
    }
}
