//! The OpenID Connect provider surface of a tenant. Served so far: discovery and the JWKS. The
//! protocol rules the authorization and token endpoints will use (PKCE, scopes, exact redirect
//! URI matching, `at_hash`/`c_hash`) are here as pure functions, tested against the specs' vectors.

pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod form;
pub mod id_token;
pub mod pkce;
pub mod redirect;
pub mod scope;

use axum::Router;
use axum::routing::get;

use crate::app::App;

/// Routes relative to a tenant's issuer.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/jwks", get(discovery::jwks))
}
