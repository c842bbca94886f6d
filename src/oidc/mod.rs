//! The OpenID Connect provider surface of a tenant: discovery and JWKS, the authorization
//! endpoint (with consent), the token endpoint (authorization code with PKCE, refresh with
//! rotation, client credentials), UserInfo, introspection and revocation. Protocol rules (PKCE,
//! scopes, redirect URI matching, request parsing, claims) are pure functions tested against the
//! specs' vectors; handlers only extract, decide and answer.

pub mod access_token;
pub mod assertion;
pub mod authorize;
pub mod backchannel;
pub mod claims;
pub mod client_auth;
pub mod code;
pub mod consent;
pub mod cors;
pub mod discovery;
pub mod error;
pub mod form;
pub mod grant;
pub mod id_token;
pub mod introspect;
pub mod logout;
pub mod pkce;
pub mod redirect;
pub mod reply;
pub mod request;
pub mod revoke;
pub mod scope;
pub mod token;
pub mod userinfo;

use axum::Router;
use axum::middleware::map_response;
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
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/consent", post(consent::submit))
        .route("/account/consents", get(consent::list))
        .route("/account/consents/revoke", post(consent::revoke))
        .route(
            "/logout",
            get(logout::end_session).post(logout::end_session),
        )
        .route("/logout/confirm", post(logout::confirm))
        .route(
            "/userinfo",
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .options(cors::preflight)
                .layer(map_response(cors::readable)),
        )
        .route(
            "/token",
            post(token::token)
                .options(cors::preflight_post)
                .layer(map_response(cors::readable)),
        )
        .route("/introspect", post(introspect::introspect))
        .route(
            "/revoke",
            post(revoke::revoke)
                .options(cors::preflight_post)
                .layer(map_response(cors::readable)),
        )
}

/// RFC 6749 §5.1 and RFC 7662 §2.2: token and introspection responses are never cached.
/// Whether the request carries more than one Authorization header. The header is not a list
/// (RFC 9110 §11.6.2): two of them are two credentials, and which one counts is not ours to pick.
pub(crate) fn repeats_authorization(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
}

pub(crate) fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
