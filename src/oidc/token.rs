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
use crate::store::clients::{AuthMethod, Client};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;

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
    caller: ClientInfo,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let client =
        client_auth::authenticate(&app, &tenant, &headers, &caller, &form, "token").await?;
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
    // Only the API scopes registered for the client; user scopes never, as there is no user.
    let granted = requested.intersect(&allowed_scopes(client));
    // RFC 6749 §5.1 wants a narrowed scope stated, and §3.3 has no empty scope to state: a
    // request none of whose scopes can be granted is refused rather than answered with nothing.
    if granted.is_empty() && !requested.is_empty() {
        return Err(OAuthError::InvalidScope(
            "none of the requested scopes is registered for this client".into(),
        ));
    }
    let audience = audience(client, &tenant.issuer, form.get("resource"))?;
    let lifetime = client
        .access_token_lifetime
        .unwrap_or(app.config.tokens.access_token_lifetime);
    let jti = access_token::new_jti(None);
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
    let ring = grant::keyring(app, tenant.id()).await?;
    let token = ring
        .sign(access_token::alg_for(client), access_token::TYP, claims)
        .map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            OAuthError::ServerError
        })?;
    let mut body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
    });
    // RFC 6749 §5.1: stated, since it may differ from what was asked; but an empty string is not
    // a scope (§3.3), so a token that carries none says nothing.
    if !granted.is_empty() {
        body["scope"] = json!(granted.to_string());
    }
    Ok(super::no_store(Json(body).into_response()))
}

/// The API scopes a client may obtain besides the user scopes.
pub(crate) fn allowed_scopes(client: &Client) -> Scope {
    let user = Scope::parse(&USER_SCOPES.join(" ")).unwrap_or_default();
    let registered = Scope::parse(&client.allowed_scopes.join(" ")).unwrap_or_default();
    Scope::parse(
        &registered
            .iter()
            .filter(|s| !user.contains(s))
            .collect::<Vec<_>>()
            .join(" "),
    )
    .unwrap_or_default()
}

/// The audience of the client's access token: the tenant itself, or an RFC 8707 resource the
/// client registered (any other is `invalid_target`, §2).
pub(crate) fn audience(
    client: &Client,
    issuer: &str,
    resource: Option<&str>,
) -> Result<String, OAuthError> {
    match resource {
        None => Ok(issuer.to_string()),
        Some(r) => {
            let r = resource_indicator(r)?;
            if client.allowed_resources.contains(&r) {
                Ok(r)
            } else {
                Err(OAuthError::InvalidTarget(
                    "this client may not obtain tokens for that resource".into(),
                ))
            }
        }
    }
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub(crate) fn resource_indicator(resource: &str) -> Result<String, OAuthError> {
    match url::Url::parse(resource) {
        Ok(u) if u.fragment().is_none() => Ok(resource.to_string()),
        _ => Err(OAuthError::InvalidTarget(
            "resource must be an absolute URI without a fragment".into(),
        )),
    }
}
