//! Token revocation (RFC 7009). A refresh token revokes its whole family (RFC 9700 §4.14). Access
//! tokens are short-lived signed JWTs that resource servers verify on their own, so revoking one
//! is answered like any token the server does not hold: 200, as §2.2 prescribes, so a client
//! revoking both of its tokens sees no error.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::OAuthError;
use super::form::OAuthForm;
use super::{client_auth, no_store};
use crate::app::App;
use crate::crypto::secret::TokenHash;
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
    let (tid, hash, now, client_id) = (
        tenant.id().clone(),
        TokenHash::of(token),
        app.now(),
        client.client_id,
    );
    app.store
        .run(move |c| {
            // Only the client the token was issued to can revoke it (§2.1); others get the same 200.
            if let Some(family) = refresh::family_of(c, &tid, &client_id, &hash)? {
                refresh::revoke_family(c, &tid, &family, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(no_store(StatusCode::OK.into_response()))
}
