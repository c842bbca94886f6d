//! OpenID Connect Discovery 1.0 §4 and the JWK Set (RFC 7517 §5). Both are served from the
//! tenant's cached keyring, so they cost no query after the first request.
//!
//! The document lists only what this server does; a capability joins it with its code.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::reply::ResponseMode;
use super::request::USER_SCOPES;
use crate::app::{App, Document};
use crate::crypto::keys::Alg;
use crate::tenant::resolve::TenantCtx;
use crate::web;
use crate::web::error::PageError;

/// Relying parties re-fetch at most this often. A rotation publishes the next key a full
/// rotation ahead, so a cached JWKS always holds the key that signs.
pub const JWKS_MAX_AGE_SECS: i64 = 300;
const JWKS_MAX_AGE: &str = "public, max-age=300";
const DISCOVERY_MAX_AGE: &str = "public, max-age=300";

/// Discovery metadata for `issuer`; pure so it can be checked without HTTP.
pub fn metadata(issuer: &str, algorithms: &[Alg]) -> Value {
    let mut algs: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
    // OIDC Core §15.1: RS256 comes first as the algorithm every client can use.
    algs.sort_by_key(|a| *a != "RS256");
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "response_types_supported": ["code", "none"],
        "response_modes_supported": ResponseMode::SUPPORTED,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": USER_SCOPES,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp",
            "name", "preferred_username", "locale", "updated_at", "email", "email_verified",
            "phone_number", "phone_number_verified", "tenant", "department", "employee_no", "roles"
        ],
        "acr_values_supported": crate::flow::session::CLASSES,
        "claims_parameter_supported": true,
        "ui_locales_supported": crate::i18n::Locale::ALL.map(crate::i18n::Locale::tag),
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "introspection_endpoint": format!("{issuer}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        // RFC 8414 §2: required wherever private_key_jwt is listed.
        "introspection_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
    })
}

/// `GET /t/{tenant}/.well-known/openid-configuration`
pub async fn configuration(
    State(app): State<App>,
    tenant: TenantCtx,
) -> Result<Response, PageError> {
    let issuer = tenant.issuer.clone();
    let body = app
        .document(tenant.id(), &tenant.issuer, Document::Discovery, |ring| {
            bytes::Bytes::from(metadata(&issuer, &ring.algorithms()).to_string())
        })
        .await?;
    Ok(web::public_document(
        body,
        "application/json",
        DISCOVERY_MAX_AGE,
    ))
}

/// `GET /t/{tenant}/jwks`
pub async fn jwks(State(app): State<App>, tenant: TenantCtx) -> Result<Response, PageError> {
    let ring = app.keyring(tenant.id()).await?;
    Ok(web::public_document(
        ring.jwks_json(),
        "application/jwk-set+json",
        JWKS_MAX_AGE,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_truthful_and_rs256_first() {
        let m = metadata(
            "https://id.example.com/t/acme",
            &[Alg::ES256, Alg::RS256, Alg::EdDSA],
        );
        assert_eq!(m["issuer"], "https://id.example.com/t/acme");
        assert_eq!(m["jwks_uri"], "https://id.example.com/t/acme/jwks");
        assert_eq!(m["id_token_signing_alg_values_supported"][0], "RS256");
        assert_eq!(m["token_endpoint"], "https://id.example.com/t/acme/token");
        assert_eq!(
            m["authorization_endpoint"],
            "https://id.example.com/t/acme/authorize"
        );
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["ui_locales_supported"], json!(["zh-CN", "en", "zh-TW"]));
        assert!(
            m.get("registration_endpoint").is_none(),
            "no endpoint is advertised before it exists"
        );
    }
}
