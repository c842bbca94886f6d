//! SAML 2.0 Metadata (saml-metadata-2.0-os) for a tenant's IdP: its entityID, the certificates that
//! sign (the next one too, published before it signs, so SPs that refresh metadata roll over
//! without an outage), the SSO and SLO endpoints in both bindings, and the NameID formats.
//!
//! Written as a canonical element tree (`saml::c14n`) rather than through samael's metadata types,
//! which emit the IDPSSODescriptor's children out of schema order and drop
//! `WantAuthnRequestsSigned`; a tenant can have it signed (`saml_sign_metadata`).

use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use openssl::error::ErrorStack;

use super::c14n::El;
use super::response::{instant, new_id};
use super::{BINDING_POST, BINDING_REDIRECT, NAMEID_FORMATS};
use crate::app::{App, Document};
use crate::clock::UnixTime;
use crate::crypto::keys::SamlKey;
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;

/// How long an SP may keep the document before fetching it again (`cacheDuration`). A SAML key
/// rotation waits at least this long after publishing the next certificate.
pub const CACHE_DURATION_SECS: i64 = 86_400;
/// HTTP caching of the same document: short, so an SP that fetches on demand sees a new next
/// certificate the same day.
const MAX_AGE: &str = "public, max-age=300";

const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// The IdP's entityID: its metadata URL, so the identifier also says where to find the keys.
pub fn entity_id(issuer: &str) -> String {
    format!("{issuer}/saml/metadata")
}

/// The metadata document of the IdP at `issuer`, with `certificates` (DER) as signing keys.
pub fn document(issuer: &str, certificates: &[&[u8]], want_requests_signed: bool) -> El {
    let sso = format!("{issuer}/saml/sso");
    let slo = format!("{issuer}/saml/slo");
    let mut idp = El::new("md:IDPSSODescriptor", MD)
        .attr("protocolSupportEnumeration", PROTOCOL)
        .attr("WantAuthnRequestsSigned", want_requests_signed.to_string());
    for der in certificates {
        idp = idp.child(
            El::new("md:KeyDescriptor", MD)
                .attr("use", "signing")
                .child(
                    El::new("ds:KeyInfo", DS).child(
                        El::new("ds:X509Data", DS)
                            .child(El::new("ds:X509Certificate", DS).text(STANDARD.encode(der))),
                    ),
                ),
        );
    }
    for binding in [BINDING_REDIRECT, BINDING_POST] {
        idp = idp.child(
            El::new("md:SingleLogoutService", MD)
                .attr("Binding", binding)
                .attr("Location", slo.clone()),
        );
    }
    for format in NAMEID_FORMATS {
        idp = idp.child(El::new("md:NameIDFormat", MD).text(format));
    }
    for binding in [BINDING_REDIRECT, BINDING_POST] {
        idp = idp.child(
            El::new("md:SingleSignOnService", MD)
                .attr("Binding", binding)
                .attr("Location", sso.clone()),
        );
    }
    El::new("md:EntityDescriptor", MD)
        .attr("entityID", entity_id(issuer))
        .attr("cacheDuration", format!("PT{CACHE_DURATION_SECS}S"))
        .child(idp)
}

/// The document signed with the tenant's SAML key (enveloped, RSA-SHA256, exclusive c14n), for
/// SPs that verify metadata against a certificate they hold. A signed document also says until
/// when it may be trusted (`validUntil`), so an old copy cannot be replayed for ever.
pub fn signed(document: El, key: &SamlKey, now: UnixTime) -> Result<El, ErrorStack> {
    document
        .attr("ID", new_id())
        .attr("validUntil", instant(now.plus(SIGNED_VALIDITY_SECS)))
        .signed(key)
}

/// How long a signed document is valid: a week of the daily `cacheDuration`.
pub const SIGNED_VALIDITY_SECS: i64 = 7 * 86_400;

/// The tenant setting that has the metadata signed.
pub const SIGN_SETTING: &str = "saml_sign_metadata";

/// `GET /t/{tenant}/saml/metadata`: built from the cached keyring once per cache period, so a key
/// rotation shows within seconds and a request costs no query.
pub async fn metadata(State(app): State<App>, tenant: TenantCtx) -> Result<Response, PageError> {
    let issuer = tenant.issuer.clone();
    let sign = tenant
        .tenant
        .settings
        .get(SIGN_SETTING)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let now = app.now();
    let body = app
        .document(
            tenant.id(),
            &tenant.issuer,
            Document::SamlMetadata { signed: sign },
            |ring| {
                let certificates: Vec<&[u8]> = ring
                    .saml_certificates()
                    .iter()
                    .map(|c| c.der.as_slice())
                    .collect();
                let doc = document(&issuer, &certificates, false);
                let doc = match ring.saml_key().filter(|_| sign) {
                    Some(key) => signed(doc.clone(), key, now).unwrap_or_else(|e| {
                        tracing::error!(error = %e, "cannot sign the SAML metadata; serving it unsigned");
                        doc
                    }),
                    None => doc,
                };
                bytes::Bytes::from(format!("{XML_DECLARATION}{}", doc.canonical()))
            },
        )
        .await?;
    Ok(crate::web::public_document(
        body,
        "application/samlmetadata+xml",
        MAX_AGE,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;
    use samael::metadata::EntityDescriptor;

    #[test]
    fn the_document_parses_and_lists_what_the_idp_offers() {
        let xml = document(
            "https://id.example.com/t/acme",
            &[b"first".as_slice(), b"second".as_slice()],
            false,
        )
        .canonical();
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
        let xml = document("https://id.example.com/t/acme", &[b"k".as_slice()], true).canonical();
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

    #[test]
    fn a_signed_document_verifies_against_its_certificate_and_says_until_when() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let now = UnixTime(1_700_000_000);
        let certificate = crate::crypto::cert::self_signed(&key, "idp", now).unwrap();
        let saml_key = SamlKey::new("k".into(), key, certificate.clone());
        let doc = document("https://id.example.com/t/acme", &[&certificate], false);
        let xml = signed(doc, &saml_key, now).unwrap().canonical();
        // The signature is the descriptor's first child, before the IDPSSODescriptor.
        let (sig, idp) = (
            xml.find("<ds:Signature").unwrap(),
            xml.find("<md:IDPSSODescriptor").unwrap(),
        );
        assert!(sig < idp, "{xml}");
        assert!(
            xml.contains(r#"validUntil="2023-11-21T22:13:20Z""#),
            "{xml}"
        );
        let cert = STANDARD.encode(&certificate);
        let covered =
            crate::saml::signature::verify_post(&xml, std::slice::from_ref(&cert)).unwrap();
        assert!(covered.contains("md:IDPSSODescriptor"));
        let parsed: EntityDescriptor = xml.parse().unwrap();
        assert!(parsed.signature.is_some());
        // Any change breaks it.
        let tampered = xml.replace("/saml/sso", "/saml/evil");
        assert!(crate::saml::signature::verify_post(&tampered, &[cert]).is_err());
    }
}
