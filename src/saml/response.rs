//! The Response Sesame sends to an SP's consumer URL (SAML Core §3.2.2, Profiles §4.1.4.2): an
//! element tree written in exclusive canonical form and signed with the tenant's parsed SAML key
//! (RSA-SHA256, an enveloped signature referring to the signed element's ID; see `c14n`).
//!
//! The assertion is signed as a document of its own and then placed in the Response: exclusive
//! canonicalization makes its signature independent of the Response around it, and the Response,
//! when it is signed too, covers the signed assertion.

use super::PROTOCOL_NS;
use super::c14n::El;
use super::request::{STATUS_PREFIX, Status};
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
    /// When the IdP session ends at the latest (its absolute expiry): the SP's session should
    /// not outlive it (Core §2.7.2 `SessionNotOnOrAfter`).
    pub session_not_on_or_after: UnixTime,
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

/// The assertion, unsigned.
fn assertion(s: &Statement<'_>) -> El {
    let now = instant(s.now);
    let until = instant(s.now.plus(s.lifetime));
    let a = |name| El::new(name, ASSERTION_NS);
    let mut confirmation = a("saml:SubjectConfirmationData")
        .attr("NotOnOrAfter", until.clone())
        .attr("Recipient", s.acs);
    if let Some(irt) = s.in_response_to {
        confirmation = confirmation.attr("InResponseTo", irt);
    }
    let mut assertion = a("saml:Assertion")
        .attr("ID", new_id())
        .attr("Version", "2.0")
        .attr("IssueInstant", now.clone())
        .child(a("saml:Issuer").text(s.idp_entity_id))
        .child(
            a("saml:Subject")
                .child(
                    a("saml:NameID")
                        .attr("Format", s.name_id_format)
                        .attr("SPNameQualifier", s.sp_entity_id)
                        .text(s.name_id),
                )
                .child(
                    a("saml:SubjectConfirmation")
                        .attr("Method", BEARER)
                        .child(confirmation),
                ),
        )
        .child(
            a("saml:Conditions")
                .attr("NotBefore", now)
                .attr("NotOnOrAfter", until)
                .child(
                    a("saml:AudienceRestriction").child(a("saml:Audience").text(s.sp_entity_id)),
                ),
        )
        .child(
            a("saml:AuthnStatement")
                .attr("AuthnInstant", instant(s.authn_instant))
                .attr("SessionIndex", s.session_index)
                .attr("SessionNotOnOrAfter", instant(s.session_not_on_or_after))
                .child(
                    a("saml:AuthnContext")
                        .child(a("saml:AuthnContextClassRef").text(s.authn_class)),
                ),
        );
    if !s.attributes.is_empty() {
        let mut statement = a("saml:AttributeStatement");
        for (name, format, values) in s.attributes {
            let mut attribute = a("saml:Attribute")
                .attr("Name", name.as_str())
                .attr("NameFormat", name_format(name, format.as_deref()));
            for v in values {
                attribute = attribute.child(a("saml:AttributeValue").text(v.as_str()));
            }
            statement = statement.child(attribute);
        }
        assertion = assertion.child(statement);
    }
    assertion
}

/// A Response carrying `status` and `body` (the assertion, or nothing for a failure).
fn envelope(s: &Addressing<'_>, status: El, body: Option<El>) -> El {
    let mut response = El::new("samlp:Response", PROTOCOL_NS)
        .ns("saml", ASSERTION_NS)
        .attr("ID", new_id())
        .attr("Version", "2.0")
        .attr("IssueInstant", instant(s.now))
        .attr("Destination", s.acs);
    if let Some(irt) = s.in_response_to {
        response = response.attr("InResponseTo", irt);
    }
    response = response
        .child(El::new("saml:Issuer", ASSERTION_NS).text(s.idp_entity_id))
        .child(status);
    match body {
        Some(b) => response.child(b),
        None => response,
    }
}

/// Who a Response is from and to.
struct Addressing<'a> {
    idp_entity_id: &'a str,
    acs: &'a str,
    in_response_to: Option<&'a str>,
    now: UnixTime,
}

fn status_code(value: String) -> El {
    El::new("samlp:StatusCode", PROTOCOL_NS).attr("Value", value)
}

/// A successful Response: the assertion (signed as `signing` says, then encrypted for the SP when
/// `encrypt_for` holds its certificate) inside a Response.
pub fn success(
    s: &Statement<'_>,
    key: &SamlKey,
    signing: Signing,
    encrypt_for: Option<(&[u8], Encryption)>,
) -> Result<String, SignError> {
    let failed = |e: openssl::error::ErrorStack| SignError(e.to_string());
    let mut assertion = assertion(s);
    if signing.assertion {
        assertion = assertion.signed(key).map_err(failed)?;
    }
    let body = match encrypt_for {
        Some((certificate, method)) => {
            super::encrypt::assertion(&assertion.canonical(), certificate, method)
                .map_err(|e| SignError(e.to_string()))?
        }
        None => assertion,
    };
    let to = Addressing {
        idp_entity_id: s.idp_entity_id,
        acs: s.acs,
        in_response_to: s.in_response_to,
        now: s.now,
    };
    let status =
        El::new("samlp:Status", PROTOCOL_NS).child(status_code(format!("{STATUS_PREFIX}Success")));
    let mut response = envelope(&to, status, Some(body));
    if signing.response {
        response = response.signed(key).map_err(failed)?;
    }
    Ok(response.canonical())
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
    let top = status.top.as_str();
    let to = Addressing {
        idp_entity_id,
        acs,
        in_response_to,
        now,
    };
    let status = El::new("samlp:Status", PROTOCOL_NS)
        .child(
            status_code(format!("{STATUS_PREFIX}{top}"))
                .child(status_code(format!("{STATUS_PREFIX}{}", status.code))),
        )
        .child(El::new("samlp:StatusMessage", PROTOCOL_NS).text(status.message));
    let response = envelope(&to, status, None)
        .signed(key)
        .map_err(|e| SignError(e.to_string()))?;
    Ok(response.canonical())
}
