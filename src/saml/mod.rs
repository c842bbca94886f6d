//! SAML 2.0 identity provider: the IdP metadata per tenant, the SP registry, Web Browser SSO (SP-
//! and IdP-initiated) and Single Logout. XML signatures go through samael's
//! xmlsec binding; documents Sesame writes itself are built from escaped strings, never by
//! echoing a fragment of an incoming message.

pub mod c14n;
pub mod encrypt;
pub mod logout;
pub mod metadata;
pub mod nameid;
pub mod registry;
pub mod request;
pub mod response;
pub mod signature;
pub mod slo;
pub mod sso;
pub mod xml;

use axum::Router;
use axum::routing::get;

use crate::app::App;

pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
/// The format of an entity's own identifier, as in an `Issuer`.
pub const NAMEID_ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";

/// The NameID formats an SP may ask for, as the metadata lists them.
pub const NAMEID_FORMATS: [&str; 4] = [
    NAMEID_EMAIL,
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    NAMEID_UNSPECIFIED,
];

pub fn routes() -> Router<App> {
    Router::new()
        .route("/saml/metadata", get(metadata::metadata))
        .route("/saml/sso", get(sso::redirect).post(sso::post))
        .route("/saml/launch/{sp}", get(sso::launch))
        .route("/saml/slo", get(slo::redirect).post(slo::post))
}
