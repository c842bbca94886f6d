//! Single Logout messages (SAML Core §3.7): reading the LogoutRequests and LogoutResponses SPs
//! send, and writing Sesame's own (canonical element trees, see `c14n`), with the Redirect
//! binding's signed query string (Bindings §3.4.4.1). Pure functions; `slo` holds the endpoint and the propagation through a session's
//! SPs.
//!
//! Read with a small pull parser rather than samael's types, which take `SessionIndex` for an
//! attribute where the schema has an element.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::c14n::El;
use super::request::{RequestError, STATUS_PREFIX, root};
use super::response::{instant, new_id};
use super::{PROTOCOL_NS, registry::refuse_dtd};
use crate::clock::UnixTime;
use crate::crypto::keys::SamlKey;

const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// A LogoutRequest or LogoutResponse as read: the root's attributes, the Issuer, and for a
/// request the NameID and SessionIndexes, for a response the top-level status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub version: Option<String>,
    pub issue_instant: Option<i64>,
    pub destination: Option<String>,
    pub not_on_or_after: Option<i64>,
    pub in_response_to: Option<String>,
    pub issuer: Option<String>,
    pub name_id: Option<String>,
    pub session_indexes: Vec<String>,
    pub status: Option<String>,
}

fn malformed(msg: impl Into<String>) -> RequestError {
    RequestError::Malformed(msg.into())
}

fn timestamp(value: &str) -> Result<i64, RequestError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp())
        .map_err(|_| malformed(format!("'{value}' is not an xs:dateTime")))
}

/// Reads `xml` as a `samlp:{expected}` (LogoutRequest or LogoutResponse).
pub fn parse(xml: &str, expected: &str) -> Result<Message, RequestError> {
    refuse_dtd(xml).map_err(|e| malformed(e.0))?;
    let root = root(xml)?;
    if root.ns.as_deref() != Some(PROTOCOL_NS) || root.local != expected {
        return Err(malformed(format!(
            "the message is not a SAML 2.0 {expected}"
        )));
    }
    let mut m = Message::default();
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut depth = 0usize;
    let mut reading: Option<Field> = None;
    let mut text = String::new();
    loop {
        let decoder = reader.decoder();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|_| malformed("the message is not well-formed XML"))?;
        let ns = match ns {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(e) => {
                reading = element(&mut m, depth, &ns, &e, decoder)?;
                text.clear();
                depth += 1;
            }
            Event::Empty(e) => {
                element(&mut m, depth, &ns, &e, decoder)?;
            }
            Event::Text(t) if reading.is_some() => {
                text.push_str(&t.decode().map_err(|_| malformed("malformed text"))?);
            }
            // quick-xml hands entity references over separately: only XML's own are known.
            Event::GeneralRef(r) if reading.is_some() => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => r
                        .decode()
                        .ok()
                        .and_then(|name| quick_xml::escape::resolve_xml_entity(&name))
                        .map(str::to_string),
                };
                text.push_str(&resolved.ok_or_else(|| malformed("an unknown entity"))?);
            }
            Event::End(_) => {
                if let Some(field) = reading.take() {
                    let value = text.trim().to_string();
                    match field {
                        Field::Issuer => m.issuer = Some(value),
                        Field::NameId => m.name_id = Some(value),
                        Field::SessionIndex => m.session_indexes.push(value),
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !super::request::is_xml_id(&m.id) {
        return Err(malformed("the message's ID is not an XML ID"));
    }
    Ok(m)
}

/// An element whose text is read.
#[derive(Debug, Clone, Copy)]
enum Field {
    Issuer,
    NameId,
    SessionIndex,
}

/// Takes what `m` needs from the element `e` at `depth` (0: the root); returns which text to read.
fn element(
    m: &mut Message,
    depth: usize,
    ns: &str,
    e: &quick_xml::events::BytesStart<'_>,
    decoder: quick_xml::encoding::Decoder,
) -> Result<Option<Field>, RequestError> {
    let name = e.local_name();
    let local = name.as_ref();
    let attribute = |key: &[u8]| -> Result<Option<String>, RequestError> {
        for a in e.attributes() {
            let a = a.map_err(|_| malformed("a malformed attribute"))?;
            if a.key.as_ref() == key {
                let v = a
                    .decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, decoder)
                    .map_err(|_| malformed("a malformed attribute value"))?;
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    };
    match (depth, ns, local) {
        (0, _, _) => {
            m.id = attribute(b"ID")?.unwrap_or_default();
            m.version = attribute(b"Version")?;
            m.issue_instant = attribute(b"IssueInstant")?
                .map(|v| timestamp(&v))
                .transpose()?;
            m.not_on_or_after = attribute(b"NotOnOrAfter")?
                .map(|v| timestamp(&v))
                .transpose()?;
            m.destination = attribute(b"Destination")?;
            m.in_response_to = attribute(b"InResponseTo")?;
            Ok(None)
        }
        (1, ASSERTION_NS, b"Issuer") => Ok(Some(Field::Issuer)),
        (1, ASSERTION_NS, b"NameID") => Ok(Some(Field::NameId)),
        (1, PROTOCOL_NS, b"SessionIndex") => Ok(Some(Field::SessionIndex)),
        (2, PROTOCOL_NS, b"StatusCode") if m.status.is_none() => {
            m.status = attribute(b"Value")?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Whether a LogoutResponse reports success.
pub fn succeeded(m: &Message) -> bool {
    m.status.as_deref() == Some(&format!("{STATUS_PREFIX}Success"))
}

/// A LogoutRequest from the IdP to the SP `sp_entity_id` for the user it knows as `name_id` in
/// session `session_index`; returns its ID and the element (signed or not by the sender's
/// binding). The NameID is the assertion's, qualifier included: Profiles §4.4.4.1 asks for one
/// that strongly matches, and SPs look sessions up by all of it.
pub fn request(
    idp_entity_id: &str,
    destination: &str,
    name_id: &str,
    name_id_format: &str,
    sp_entity_id: &str,
    session_index: &str,
    now: UnixTime,
) -> (String, El) {
    let id = new_id();
    let el = El::new("samlp:LogoutRequest", PROTOCOL_NS)
        .ns("saml", ASSERTION_NS)
        .attr("ID", id.clone())
        .attr("Version", "2.0")
        .attr("IssueInstant", instant(now))
        .attr("Destination", destination)
        .attr("NotOnOrAfter", instant(now.plus(super::request::MAX_AGE)))
        .child(El::new("saml:Issuer", ASSERTION_NS).text(idp_entity_id))
        .child(
            El::new("saml:NameID", ASSERTION_NS)
                .attr("Format", name_id_format)
                .attr("SPNameQualifier", sp_entity_id)
                .text(name_id),
        )
        .child(El::new("samlp:SessionIndex", PROTOCOL_NS).text(session_index));
    (id, el)
}

/// The LogoutResponse to `in_response_to`, with `status` (a second-level code under `Responder`
/// or `Requester`, or `None` for success).
pub fn response(
    idp_entity_id: &str,
    destination: &str,
    in_response_to: &str,
    status: Option<(&str, &str)>,
    now: UnixTime,
) -> El {
    let code = |value: String| El::new("samlp:StatusCode", PROTOCOL_NS).attr("Value", value);
    let status = match status {
        None => code(format!("{STATUS_PREFIX}Success")),
        Some((top, second)) => {
            code(format!("{STATUS_PREFIX}{top}")).child(code(format!("{STATUS_PREFIX}{second}")))
        }
    };
    El::new("samlp:LogoutResponse", PROTOCOL_NS)
        .ns("saml", ASSERTION_NS)
        .attr("ID", new_id())
        .attr("Version", "2.0")
        .attr("IssueInstant", instant(now))
        .attr("Destination", destination)
        .attr("InResponseTo", in_response_to)
        .child(El::new("saml:Issuer", ASSERTION_NS).text(idp_entity_id))
        .child(El::new("samlp:Status", PROTOCOL_NS).child(status))
}

/// `url` with `field` (SAMLRequest or SAMLResponse) carrying `xml` in the Redirect binding:
/// DEFLATE, base64, RelayState, and an RSA-SHA256 signature over the query string.
pub fn redirect_url(
    url: &str,
    field: &str,
    xml: &str,
    relay_state: Option<&str>,
    key: &SamlKey,
) -> Result<String, RequestError> {
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate
        .write_all(xml.as_bytes())
        .map_err(|e| malformed(e.to_string()))?;
    let compressed = deflate.finish().map_err(|e| malformed(e.to_string()))?;
    let enc = |v: &str| -> String { url::form_urlencoded::byte_serialize(v.as_bytes()).collect() };
    let mut query = format!("{field}={}", enc(&STANDARD.encode(compressed)));
    if let Some(r) = relay_state {
        query.push_str(&format!("&RelayState={}", enc(r)));
    }
    query.push_str(&format!("&SigAlg={}", enc(RSA_SHA256)));
    let signature = key
        .sign_rsa_sha256(query.as_bytes())
        .map_err(|e| malformed(e.to_string()))?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{url}{sep}{query}&Signature={}",
        enc(&STANDARD.encode(signature))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_what_was_written() {
        let now = UnixTime(1_800_000_000);
        let (id, el) = request(
            "https://id/t/acme/saml/metadata",
            "https://sp/slo",
            "alice@acme.test",
            super::super::NAMEID_EMAIL,
            "https://sp/metadata",
            "sid-1",
            now,
        );
        let xml = el.canonical();
        let m = parse(&xml, "LogoutRequest").unwrap();
        assert_eq!(m.id, id);
        assert_eq!(m.issuer.as_deref(), Some("https://id/t/acme/saml/metadata"));
        assert_eq!(m.name_id.as_deref(), Some("alice@acme.test"));
        assert_eq!(m.session_indexes, ["sid-1"]);
        assert_eq!(m.issue_instant, Some(now.0));
        assert_eq!(m.destination.as_deref(), Some("https://sp/slo"));
        assert!(
            parse(&xml, "LogoutResponse").is_err(),
            "the root is checked"
        );
        let ok = response("idp", "https://sp/slo", &id, None, now).canonical();
        let r = parse(&ok, "LogoutResponse").unwrap();
        assert!(succeeded(&r));
        assert_eq!(r.in_response_to.as_deref(), Some(id.as_str()));
        let no = response(
            "idp",
            "https://sp/slo",
            &id,
            Some(("Requester", "RequestDenied")),
            now,
        );
        assert!(!succeeded(
            &parse(&no.canonical(), "LogoutResponse").unwrap()
        ));
    }

    #[test]
    fn hostile_messages_are_refused() {
        for xml in [
            r#"<!DOCTYPE x [<!ENTITY e "e">]><samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1"/>"#,
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="1 bad"/>"#,
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1" IssueInstant="yesterday"/>"#,
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1"/>"#,
            "<unclosed",
        ] {
            assert!(parse(xml, "LogoutRequest").is_err(), "{xml}");
        }
    }
}
