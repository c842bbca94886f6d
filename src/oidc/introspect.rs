//! Token introspection (RFC 7662). The caller must authenticate as a client; it learns about a
//! token only if the token was issued to it or names it as audience, otherwise the answer is the
//! same `{"active": false}` as for an unknown, expired or revoked token (§2.2, §4).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::OAuthError;
use super::form::OAuthForm;
use super::{access_token, client_auth, no_store};
use crate::app::App;
use crate::clock::UnixTime;
use crate::crypto::secret::TokenHash;
use crate::store::clients::{AuthMethod, Client};
use crate::store::refresh;
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;

/// `POST /t/{tenant}/introspect`
pub async fn introspect(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    caller: ClientInfo,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let client =
        client_auth::authenticate(&app, &tenant, &headers, &caller, &form, "introspect").await?;
    // §2.1: the endpoint requires authorization; a public client proves nothing by its id.
    if client.auth_method == AuthMethod::None {
        return Err(OAuthError::InvalidClient { basic: false });
    }
    let token = form.require("token")?;
    let now = app.now();
    let answer = match access_token_claims(&app, &tenant, &client, token, now).await? {
        Some(claims) => claims,
        None => refresh_token_claims(&app, &tenant, &client, token, now)
            .await?
            .unwrap_or_else(inactive),
    };
    Ok(no_store(Json(Value::Object(answer)).into_response()))
}

fn inactive() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("active".into(), json!(false));
    m
}

/// The answer for a JWT: its claims if it is a live access token of this tenant that concerns
/// `client`, inactive otherwise; `None` for a token that is not a JWT (perhaps a refresh token).
async fn access_token_claims(
    app: &App,
    tenant: &TenantCtx,
    client: &Client,
    token: &str,
    now: UnixTime,
) -> Result<Option<Map<String, Value>>, OAuthError> {
    // Refresh tokens are base64url: never three parts.
    if token.split('.').count() != 3 {
        return Ok(None);
    }
    let ring = super::grant::keyring(app, tenant.id()).await?;
    let Some(claims) = access_token::live_claims(&ring, token, &tenant.issuer, now) else {
        return Ok(Some(inactive()));
    };
    let issued_to = claims.get("client_id").and_then(Value::as_str);
    let issued_to_caller = issued_to == Some(client.client_id.as_str());
    if !issued_to_caller && !audience_contains(claims.get("aud"), &client.client_id) {
        return Ok(Some(inactive()));
    }
    // A resource server asking about a token of a client deleted since: the token died with its
    // client, as it does at UserInfo (within the client cache's lifetime).
    if !issued_to_caller {
        let Some(issued_to) = issued_to else {
            return Ok(Some(inactive()));
        };
        if app.client(tenant.id(), issued_to).await?.is_none() {
            return Ok(Some(inactive()));
        }
    }
    let mut answer = std::sync::Arc::unwrap_or_clone(claims);
    answer.insert("active".into(), json!(true));
    answer.insert("token_type".into(), json!("Bearer"));
    Ok(Some(answer))
}

fn audience_contains(aud: Option<&Value>, client_id: &str) -> bool {
    match aud {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    }
}

/// A live refresh token issued to `client`.
async fn refresh_token_claims(
    app: &App,
    tenant: &TenantCtx,
    client: &Client,
    token: &str,
    now: UnixTime,
) -> Result<Option<Map<String, Value>>, OAuthError> {
    let (tid, hash) = (tenant.id().clone(), TokenHash::of(token));
    let Some(grant) = app
        .store
        .run(move |c| refresh::find_active(c, &tid, &hash, now))
        .await?
    else {
        return Ok(None);
    };
    if grant.client_id != client.client_id {
        return Ok(None);
    }
    let mut m = Map::new();
    m.insert("active".into(), json!(true));
    // No `token_type`: RFC 7662 defines it as an access token's type (RFC 6749 §7.1), which a
    // refresh token does not have; "refresh_token" there read as a kind of Bearer to some RSs.
    m.insert("client_id".into(), json!(grant.client_id));
    if !grant.scope.is_empty() {
        m.insert("scope".into(), json!(grant.scope));
    }
    m.insert("exp".into(), json!(grant.expires_at.0));
    m.insert("iss".into(), json!(&*tenant.issuer));
    if let Some(sub) = grant.user_id {
        m.insert("sub".into(), json!(sub));
    }
    Ok(Some(m))
}
