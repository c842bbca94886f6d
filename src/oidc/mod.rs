//! The OpenID Connect provider surface of a tenant. Served so far: discovery, the JWKS and the
//! token endpoint's `client_credentials` grant. The
//! protocol rules the authorization and token endpoints will use (PKCE, scopes, exact redirect
//! URI matching, `at_hash`/`c_hash`) are here as pure functions, tested against the specs' vectors.

pub mod access_token;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod form;
pub mod id_token;
pub mod pkce;
pub mod redirect;
pub mod scope;
pub mod token;

use axum::Router;
use axum::routing::{get, post};

use crate::app::App;

/// Routes relative to a tenant's issuer.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/jwks", get(discovery::jwks))
        .route("/token", post(token::token))
}
