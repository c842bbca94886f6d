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
pub mod introspect;
pub mod pkce;
pub mod redirect;
pub mod revoke;
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
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
}

/// RFC 6749 §5.1 and RFC 7662 §2.2: token and introspection responses are never cached.
pub(crate) fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
