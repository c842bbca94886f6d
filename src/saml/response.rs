//! The Response Sesame sends to an SP's consumer URL (SAML Core §3.2.2, Profiles §4.1.4.2): built
//! from escaped strings, signed with the tenant's SAML key through xmlsec (RSA-SHA256, exclusive
//! canonicalization, an enveloped signature referring to the signed element's ID).
//!
//! The assertion is signed as a document of its own and then placed in the Response: exclusive
//! canonicalization makes its signature independent of the Response around it, and the Response,
//! when it is signed too, covers the signed assertion.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::{Crypto, CryptoProvider};

use super::request::{STATUS_PREFIX, Status};
use super::xml::escape;
use crate::clock::UnixTime;
use crate::crypto::keys::SamlKey;
use crate::crypto::secret::random_hex;
use crate::store::service_providers::Encryption;

const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const ATTRNAME_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
const ATTRNAME_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";

/// An attribute's `NameFormat`: the registered one, else `uri` for a name that is a URI (the
/// `urn:oid:` names of the SAML attribute profiles) and `basic` for a plain one.
pub fn name_format<'a>(name: &str, registered: Option<&'a str>) -> &'a str {
    match registered {
        Some(f) => f,
        None if name.starts_with("urn:") || name.contains("://") => ATTRNAME_URI,
        None => ATTRNAME_BASIC,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("building the SAML message failed: {0}")]
pub struct SignError(String);

/// Everything an assertion states.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    pub idp_entity_id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs: &'a str,
    /// The AuthnRequest's ID; `None` for an unsolicited (IdP-initiated) Response.
    pub in_response_to: Option<&'a str>,
    pub name_id_format: &'a str,
    pub name_id: &'a str,
    pub session_index: &'a str,
    pub authn_instant: UnixTime,
    pub authn_class: &'a str,
    pub attributes: &'a [(String, Option<String>, Vec<String>)],
    pub now: UnixTime,
    pub lifetime: i64,
}

/// What carries a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signing {
    pub assertion: bool,
    pub response: bool,
}

/// xs:dateTime in UTC, as SAML requires (Core §1.3.3).
pub fn instant(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// A fresh ID: an NCName (starts with `_`) with 128 random bits.
pub fn new_id() -> String {
    format!("_{}", random_hex(16))
}

fn signature_template(id: &str, certificate: &[u8]) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##,
        STANDARD.encode(certificate)
    )
}

/// Signs the one signature template in `xml`.
fn sign(xml: &str, key: &SamlKey) -> Result<String, SignError> {
    let signed = Crypto::sign_xml(xml, &key.private_der).map_err(|e| SignError(e.to_string()))?;
    // The signed document comes back with an XML declaration; inside a Response it must go.
    Ok(match signed.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, body)| body.trim_start().to_string())
            .unwrap_or(signed),
        None => signed,
    })
}

/// `xml` (a protocol message Sesame wrote, with an `ID` and a `saml:Issuer`) with an enveloped
/// signature placed right after the Issuer, where the schema wants it.
pub fn sign_after_issuer(xml: &str, key: &SamlKey) -> Result<String, SignError> {
    let id = xml
        .split(" ID=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| SignError("the message has no ID".into()))?;
    let template = signature_template(id, &key.certificate);
    let with_template = xml.replacen("</saml:Issuer>", &format!("</saml:Issuer>{template}"), 1);
    sign(&with_template, key)
}

/// The assertion, signed when `sign` is set.
pub fn assertion(s: &Statement<'_>, key: &SamlKey, sign_it: bool) -> Result<String, SignError> {
    let id = new_id();
    let now = instant(s.now);
    let until = instant(s.now.plus(s.lifetime));
    let mut x = String::with_capacity(2048);
    x.push_str(&format!(
        r#"<saml:Assertion xmlns:saml="{ASSERTION_NS}" ID="{id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{}</saml:Issuer>"#,
        escape(s.idp_entity_id)
    ));
    if sign_it {
        x.push_str(&signature_template(&id, &key.certificate));
    }
    x.push_str(&format!(
        r#"<saml:Subject><saml:NameID Format="{}" SPNameQualifier="{}">{}</saml:NameID><saml:SubjectConfirmation Method="{BEARER}"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{}""#,
        escape(s.name_id_format),
        escape(s.sp_entity_id),
        escape(s.name_id),
        escape(s.acs),
    ));
    if let Some(irt) = s.in_response_to {
        x.push_str(&format!(r#" InResponseTo="{}""#, escape(irt)));
    }
    x.push_str("/></saml:SubjectConfirmation></saml:Subject>");
    x.push_str(&format!(
        r#"<saml:Conditions NotBefore="{now}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
        escape(s.sp_entity_id)
    ));
    x.push_str(&format!(
        r#"<saml:AuthnStatement AuthnInstant="{}" SessionIndex="{}"><saml:AuthnContext><saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
        instant(s.authn_instant),
        escape(s.session_index),
        escape(s.authn_class)
    ));
    if !s.attributes.is_empty() {
        x.push_str("<saml:AttributeStatement>");
        for (name, format, values) in s.attributes {
            x.push_str(&format!(
                r#"<saml:Attribute Name="{}" NameFormat="{}">"#,
                escape(name),
                escape(name_format(name, format.as_deref()))
            ));
            for v in values {
                x.push_str(&format!(
                    "<saml:AttributeValue>{}</saml:AttributeValue>",
                    escape(v)
                ));
            }
            x.push_str("</saml:Attribute>");
        }
        x.push_str("</saml:AttributeStatement>");
    }
    x.push_str("</saml:Assertion>");
    if sign_it { sign(&x, key) } else { Ok(x) }
}

/// Who a Response is from and to.
struct Addressing<'a> {
    idp_entity_id: &'a str,
    acs: &'a str,
    in_response_to: Option<&'a str>,
    now: UnixTime,
}

/// A Response carrying `status` and `body` (a signed assertion, or nothing for a failure); signed
/// when `sign_it` is set.
fn envelope(
    to: &Addressing<'_>,
    status: &str,
    body: &str,
    key: &SamlKey,
    sign_it: bool,
) -> Result<String, SignError> {
    let Addressing {
        idp_entity_id,
        acs,
        in_response_to,
        now,
    } = *to;
    let id = new_id();
    let mut x = String::with_capacity(body.len() + 2048);
    x.push_str(&format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="{ASSERTION_NS}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}""#,
        instant(now),
        escape(acs)
    ));
    if let Some(irt) = in_response_to {
        x.push_str(&format!(r#" InResponseTo="{}""#, escape(irt)));
    }
    x.push_str(&format!(
        "><saml:Issuer>{}</saml:Issuer>",
        escape(idp_entity_id)
    ));
    if sign_it {
        x.push_str(&signature_template(&id, &key.certificate));
    }
    x.push_str(status);
    x.push_str(body);
    x.push_str("</samlp:Response>");
    if sign_it { sign(&x, key) } else { Ok(x) }
}

/// A successful Response: the assertion (signed as `signing` says, then encrypted for the SP when
/// `encrypt_for` holds its certificate) inside a Response.
pub fn success(
    s: &Statement<'_>,
    key: &SamlKey,
    signing: Signing,
    encrypt_for: Option<(&[u8], Encryption)>,
) -> Result<String, SignError> {
    let mut assertion = assertion(s, key, signing.assertion)?;
    if let Some((certificate, method)) = encrypt_for {
        assertion = super::encrypt::assertion(&assertion, certificate, method)
            .map_err(|e| SignError(e.to_string()))?;
    }
    let to = Addressing {
        idp_entity_id: s.idp_entity_id,
        acs: s.acs,
        in_response_to: s.in_response_to,
        now: s.now,
    };
    let status = format!(
        r#"<samlp:Status><samlp:StatusCode Value="{STATUS_PREFIX}Success"/></samlp:Status>"#
    );
    envelope(&to, &status, &assertion, key, signing.response)
}

/// A Response that refuses: no assertion, the status code and a message of ours (never the SP's
/// or the user's text). Signed, so the SP can trust the refusal too.
pub fn failure(
    idp_entity_id: &str,
    acs: &str,
    in_response_to: Option<&str>,
    status: &Status,
    key: &SamlKey,
    now: UnixTime,
) -> Result<String, SignError> {
    let top = if status.requester {
        "Requester"
    } else {
        "Responder"
    };
    let body = format!(
        r#"<samlp:Status><samlp:StatusCode Value="{STATUS_PREFIX}{top}"><samlp:StatusCode Value="{STATUS_PREFIX}{}"/></samlp:StatusCode><samlp:StatusMessage>{}</samlp:StatusMessage></samlp:Status>"#,
        status.code,
        escape(status.message)
    );
    let to = Addressing {
        idp_entity_id,
        acs,
        in_response_to,
        now,
    };
    envelope(&to, &body, "", key, true)
}
