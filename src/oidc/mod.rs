//! The OpenID Connect provider surface of a tenant. So far: discovery and the JWKS.

pub mod discovery;
pub mod redirect;

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
