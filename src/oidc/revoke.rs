//! Token revocation (RFC 7009). A refresh token revokes its whole family (RFC 9700 §4.14) and the
//! access tokens issued under it (§2.1 SHOULD); an access token revokes itself. Sesame's UserInfo
//! and introspection stop accepting a revoked access token (at once on this node, within seconds
//! on the others); a resource server that verifies the JWT on its own sees the revocation only
//! through introspection. A token that is unknown, not the caller's or already expired is
//! answered like a revoked one: 200, as §2.2 prescribes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::OAuthError;
use super::form::OAuthForm;
use super::{access_token, client_auth, no_store};
use crate::app::App;
use crate::clock::UnixTime;
use crate::crypto::secret::TokenHash;
use crate::store::access_revocations::{self, Revoke};
use crate::store::refresh;
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;

/// `POST /t/{tenant}/revoke`
pub async fn revoke(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    caller: ClientInfo,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let client =
        client_auth::authenticate(&app, &tenant, &headers, &caller, &form, "revoke").await?;
    let token = form.require("token")?;
    let now = app.now();
    if let Some(jti) = own_access_token(&app, &tenant, &client.client_id, token, now).await? {
        let (tid, id) = (tenant.id().clone(), jti.clone());
        app.store
            .run(move |c| access_revocations::record(c, &tid, Revoke::Token(&id), now))
            .await?;
        app.note_revoked(tenant.id(), Revoke::Token(&jti), now);
        return Ok(no_store(StatusCode::OK.into_response()));
    }
    let (tid, hash, client_id) = (tenant.id().clone(), TokenHash::of(token), client.client_id);
    let revoked = app
        .store
        .run(move |c| {
            // Only the client the token was issued to can revoke it (§2.1); others get the same 200.
            let family = refresh::family_of(c, &tid, &client_id, &hash)?;
            if let Some(family) = &family {
                refresh::revoke_family(c, &tid, family, now)?;
            }
            Ok(family)
        })
        .await?;
    if let Some(family) = revoked {
        app.note_revoked(tenant.id(), Revoke::Grant(&family), now);
    }
    Ok(no_store(StatusCode::OK.into_response()))
}

/// The `jti` of `token` if it is a live access token of this tenant issued to `client_id`.
async fn own_access_token(
    app: &App,
    tenant: &TenantCtx,
    client_id: &str,
    token: &str,
    now: UnixTime,
) -> Result<Option<String>, OAuthError> {
    if token.split('.').count() != 3 {
        return Ok(None);
    }
    let ring = super::grant::keyring(app, tenant.id()).await?;
    let Some(claims) = access_token::live_claims(&ring, token, &tenant.issuer, now) else {
        return Ok(None);
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    Ok((text("client_id") == Some(client_id))
        .then(|| text("jti").map(str::to_string))
        .flatten())
}
