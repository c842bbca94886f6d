//! SAML 2.0 Metadata (saml-metadata-2.0-os) for a tenant's IdP: its entityID, the certificates that
//! sign (the next one too, published before it signs, so SPs that refresh metadata roll over
//! without an outage), the SSO and SLO endpoints in both bindings, and the NameID formats.
//!
//! Written by hand rather than through samael's metadata types, which emit the IDPSSODescriptor's
//! children out of schema order and drop `WantAuthnRequestsSigned`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::xml::escape;
use super::{BINDING_POST, BINDING_REDIRECT, NAMEID_FORMATS};
use crate::app::{App, Document};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;

/// How long an SP may keep the document before fetching it again (`cacheDuration`). A SAML key
/// rotation waits at least this long after publishing the next certificate.
pub const CACHE_DURATION_SECS: i64 = 86_400;
/// HTTP caching of the same document: short, so an SP that fetches on demand sees a new next
/// certificate the same day.
const MAX_AGE: &str = "public, max-age=300";

/// The IdP's entityID: its metadata URL, so the identifier also says where to find the keys.
pub fn entity_id(issuer: &str) -> String {
    format!("{issuer}/saml/metadata")
}

/// The metadata document of the IdP at `issuer`, with `certificates` (DER) as signing keys.
pub fn document(issuer: &str, certificates: &[&[u8]], want_requests_signed: bool) -> String {
    let sso = format!("{issuer}/saml/sso");
    let slo = format!("{issuer}/saml/slo");
    let mut out = String::with_capacity(4096);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(&format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{}" cacheDuration="PT{CACHE_DURATION_SECS}S">"#,
        escape(&entity_id(issuer))
    ));
    out.push_str(&format!(
        r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="{want_requests_signed}">"#
    ));
    for der in certificates {
        out.push_str(&format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            STANDARD.encode(der)
        ));
    }
    for binding in [BINDING_REDIRECT, BINDING_POST] {
        out.push_str(&format!(
            r#"<md:SingleLogoutService Binding="{binding}" Location="{}"/>"#,
            escape(&slo)
        ));
    }
    for format in NAMEID_FORMATS {
        out.push_str(&format!("<md:NameIDFormat>{format}</md:NameIDFormat>"));
    }
    for binding in [BINDING_REDIRECT, BINDING_POST] {
        out.push_str(&format!(
            r#"<md:SingleSignOnService Binding="{binding}" Location="{}"/>"#,
            escape(&sso)
        ));
    }
    out.push_str("</md:IDPSSODescriptor></md:EntityDescriptor>");
    out
}

/// `GET /t/{tenant}/saml/metadata`: built from the cached keyring once per cache period, so a key
/// rotation shows within seconds and a request costs no query.
pub async fn metadata(State(app): State<App>, tenant: TenantCtx) -> Result<Response, PageError> {
    let issuer = tenant.issuer.clone();
    let body = app
        .document(
            tenant.id(),
            &tenant.issuer,
            Document::SamlMetadata,
            |ring| {
                let certificates: Vec<&[u8]> = ring
                    .saml_certificates()
                    .iter()
                    .map(|c| c.der.as_slice())
                    .collect();
                bytes::Bytes::from(document(&issuer, &certificates, false))
            },
        )
        .await?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/samlmetadata+xml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(MAX_AGE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use samael::metadata::EntityDescriptor;

    #[test]
    fn the_document_parses_and_lists_what_the_idp_offers() {
        let xml = document(
            "https://id.example.com/t/acme",
            &[b"first".as_slice(), b"second".as_slice()],
            false,
        );
        let parsed: EntityDescriptor = xml.parse().unwrap();
        assert_eq!(
            parsed.entity_id.as_deref(),
            Some("https://id.example.com/t/acme/saml/metadata")
        );
        let idp = &parsed.idp_sso_descriptors.unwrap()[0];
        let certs: Vec<String> = idp
            .key_descriptors
            .iter()
            .map(|k| k.key_info.x509_data.as_ref().unwrap().certificates[0].clone())
            .collect();
        assert_eq!(certs, [STANDARD.encode("first"), STANDARD.encode("second")]);
        let sso: Vec<(&str, &str)> = idp
            .single_sign_on_services
            .iter()
            .map(|e| (e.binding.as_str(), e.location.as_str()))
            .collect();
        assert_eq!(
            sso,
            [
                (BINDING_REDIRECT, "https://id.example.com/t/acme/saml/sso"),
                (BINDING_POST, "https://id.example.com/t/acme/saml/sso"),
            ]
        );
        assert_eq!(idp.single_logout_services.len(), 2);
        assert_eq!(idp.name_id_formats, NAMEID_FORMATS);
    }

    #[test]
    fn children_follow_the_schema_order() {
        let xml = document("https://id.example.com/t/acme", &[b"k".as_slice()], true);
        let order = [
            "<md:KeyDescriptor",
            "<md:SingleLogoutService",
            "<md:NameIDFormat",
            "<md:SingleSignOnService",
        ];
        let positions: Vec<usize> = order.iter().map(|t| xml.find(t).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{xml}");
        assert!(xml.contains(r#"WantAuthnRequestsSigned="true""#));
    }
}
