//! The AuthnRequest an SP sends (SAML Core §3.4.1) in either binding, decoded with hard limits
//! and checked against the SP's registration (SAML Profiles §4.1.4.1). Pure functions: the
//! handlers in `sso` do the lookups, the signature and the replay check.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use samael::schema::{AuthnContextComparison, AuthnRequest};

use super::registry::refuse_dtd;
use super::{BINDING_POST, NAMEID_UNSPECIFIED, PROTOCOL_NS};
use crate::clock::UnixTime;
use crate::store::service_providers::ServiceProvider;

/// A request's base64 text, and its XML once decoded or inflated, are refused beyond this.
pub const MAX_BYTES: usize = 64 * 1024;
/// SAML Bindings §3.4.3 and §3.5.3: RelayState MUST NOT exceed 80 bytes.
pub const MAX_RELAY_STATE: usize = 80;
/// How old a request's IssueInstant may be, and how far ahead of our clock.
pub const MAX_AGE: i64 = 300;
pub const CLOCK_SKEW: i64 = 60;

/// Why a request is refused. Until the SP and its consumer URL are established nothing can be
/// sent back, so these are shown to the user as a page; [`Status`] answers the SP instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the request is malformed: {0}")]
    Malformed(String),
    #[error("the request comes from an unknown service provider")]
    UnknownSp,
    #[error("the request names a consumer URL the service provider did not register")]
    UnregisteredAcs,
    #[error("the message's signature is missing or does not verify: {0}")]
    Signature(String),
    #[error("the message was already used")]
    Replayed,
    #[error("the message is too old or from the future (IssueInstant)")]
    Stale,
    #[error("the message has expired (NotOnOrAfter)")]
    Expired,
    #[error("RelayState is longer than 80 bytes")]
    RelayStateTooLong,
}

fn malformed(msg: impl Into<String>) -> RequestError {
    RequestError::Malformed(msg.into())
}

/// A refusal the SP is told of in a Response (SAML Core §3.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The second-level status code, under `top`.
    pub code: &'static str,
    pub top: Top,
    pub message: &'static str,
}

/// The top-level status code of a refusal (SAML Core §3.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Top {
    /// The request was at fault.
    Requester,
    /// Sesame could not answer it.
    Responder,
    /// The request's SAML version is not 2.0.
    VersionMismatch,
}

impl Top {
    pub fn as_str(self) -> &'static str {
        match self {
            Top::Requester => "Requester",
            Top::Responder => "Responder",
            Top::VersionMismatch => "VersionMismatch",
        }
    }
}

pub const STATUS_PREFIX: &str = "urn:oasis:names:tc:SAML:2.0:status:";

/// The one encoding of the Redirect binding (Bindings §3.4.4.1), which `SAMLEncoding` may name.
const DEFLATE_ENCODING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:URL-Encoding:DEFLATE";

/// The XML of a Redirect-binding message (already URL-decoded): base64 of raw DEFLATE. An
/// `encoding` (the `SAMLEncoding` parameter) other than DEFLATE is one Sesame does not know, and
/// the message is refused rather than guessed at (Bindings §3.4.4).
pub fn inflate(encoded: &str, encoding: Option<&str>) -> Result<String, RequestError> {
    if encoding.is_some_and(|e| e != DEFLATE_ENCODING) {
        return Err(malformed("the message's SAMLEncoding is not DEFLATE"));
    }
    let compressed = decode_base64(encoded)?;
    let mut xml = Vec::new();
    flate2::read::DeflateDecoder::new(compressed.as_slice())
        .take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut xml)
        .map_err(|_| malformed("the message is not DEFLATE-compressed"))?;
    if xml.len() > MAX_BYTES {
        return Err(malformed("the message is too large once inflated"));
    }
    String::from_utf8(xml).map_err(|_| malformed("the message is not UTF-8"))
}

/// The XML of a POST-binding `SAMLRequest`: base64, possibly broken into lines.
pub fn decode_post(encoded: &str) -> Result<String, RequestError> {
    let xml = decode_base64(encoded)?;
    String::from_utf8(xml).map_err(|_| malformed("the message is not UTF-8"))
}

fn decode_base64(encoded: &str) -> Result<Vec<u8>, RequestError> {
    if encoded.len() > MAX_BYTES {
        return Err(malformed("the message is too large"));
    }
    let text: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(text)
        .map_err(|_| malformed("the message is not base64"))
}

/// Parses `xml` as an AuthnRequest: no DTD, and the root must be `samlp:AuthnRequest`, so no other
/// protocol message that happens to share its attributes is taken for one.
pub fn parse(xml: &str) -> Result<AuthnRequest, RequestError> {
    refuse_dtd(xml).map_err(|e| malformed(e.0))?;
    let root = root(xml)?;
    if root.ns.as_deref() != Some(PROTOCOL_NS) || root.local != "AuthnRequest" {
        return Err(malformed("the message is not a SAML 2.0 AuthnRequest"));
    }
    // The parser's own words name its internals (field names, serde's variants): they go to the
    // log, and the SP's administrator reads a plain reason.
    xml.parse::<AuthnRequest>().map_err(|e| {
        tracing::info!(error = %e, "an AuthnRequest does not parse");
        malformed(
            "the AuthnRequest does not follow the schema: an attribute or element is missing, \
             repeated or of the wrong type",
        )
    })
}

/// A document's root element: its namespace, local name and `ID` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub ns: Option<String>,
    pub local: String,
    pub id: Option<String>,
}

/// The root element of `xml`, which must be a well-formed document (XML 1.0 §2.1): one root
/// element, end tags matching, and nothing after it but comments, processing instructions and
/// white space. Parsers differ on what follows a root (quick-xml reads on, libxml2 stops), and a
/// message two parsers read differently is how signature wrapping begins.
pub fn root(xml: &str) -> Result<Root, RequestError> {
    let not_well_formed = || malformed("the message is not well-formed XML");
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut found: Option<Root> = None;
    let mut depth = 0usize;
    loop {
        let decoder = reader.decoder();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|_| not_well_formed())?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(_) | Event::Empty(_) if depth == 0 && found.is_some() => {
                return Err(malformed("the message has more than one root element"));
            }
            Event::Start(e) | Event::Empty(e) if depth == 0 => {
                let id = e
                    .try_get_attribute("ID")
                    .map_err(|_| not_well_formed())?
                    .map(|a| {
                        a.decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, decoder)
                            .map(|v| v.into_owned())
                    })
                    .transpose()
                    .map_err(|_| not_well_formed())?;
                found = Some(Root {
                    ns: match ns {
                        ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into()),
                        _ => None,
                    },
                    local: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    id,
                });
                depth = usize::from(!empty);
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.checked_sub(1).ok_or_else(not_well_formed)?,
            Event::Text(t) if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(not_well_formed());
            }
            Event::CData(_) if depth == 0 => return Err(not_well_formed()),
            Event::Eof if depth > 0 => return Err(not_well_formed()),
            Event::Eof => return found.ok_or_else(|| malformed("the message has no root element")),
            _ => {}
        }
    }
}

/// What an accepted request asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    pub sp_id: String,
    /// The AuthnRequest's ID; `None` for an IdP-initiated (unsolicited) sign-in.
    pub request_id: Option<String>,
    /// The consumer URL the Response goes to.
    pub acs: String,
    pub relay_state: Option<String>,
    pub force_authn: bool,
    pub is_passive: bool,
    /// The classes the sign-in must reach one of, from the request's `RequestedAuthnContext` with
    /// its comparison applied; empty when the SP leaves it to the IdP.
    pub requested_classes: Vec<String>,
    /// The NameID of the request's `<Subject>`: the assertion must be about this principal
    /// (SAML Core §3.4.1.4), whoever is signed in.
    #[serde(default)]
    pub requested_subject: Option<String>,
}

/// Either a page for the user (nothing can be sent to the SP) or a status for the SP at `acs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Page(RequestError),
    Status { acs: String, status: Status },
}

impl From<RequestError> for Refusal {
    fn from(e: RequestError) -> Self {
        Refusal::Page(e)
    }
}

/// SAML Profiles §4.1.4.1 and Core §3.4.1: the consumer URL, the ID, freshness, the destination,
/// the binding, the version and the NameID policy, in that order, so that a refusal is sent to the
/// SP only once its consumer URL is known to be its own.
pub fn check(
    req: &AuthnRequest,
    sp: &ServiceProvider,
    sso_url: &str,
    relay_state: Option<&str>,
    now: UnixTime,
) -> Result<Accepted, Refusal> {
    let acs = consumer(req, sp)?;
    if !is_xml_id(&req.id) {
        return Err(malformed("the request's ID is not an XML ID").into());
    }
    let issued = req.issue_instant.timestamp();
    if issued < now.0 - MAX_AGE || issued > now.0 + CLOCK_SKEW {
        return Err(RequestError::Stale.into());
    }
    if req.destination.as_deref().is_some_and(|d| d != sso_url) {
        return Err(malformed("the request's Destination is not this endpoint").into());
    }
    if relay_state.is_some_and(|r| r.len() > MAX_RELAY_STATE) {
        return Err(RequestError::RelayStateTooLong.into());
    }
    let status_under = |top, code, message| Refusal::Status {
        acs: acs.clone(),
        status: Status { code, top, message },
    };
    let status = |code, message| status_under(Top::Requester, code, message);
    if req.version != "2.0" {
        // An earlier major version is deprecated; anything else is one Sesame does not know.
        let code = if req.version.starts_with("1.") {
            "RequestVersionDeprecated"
        } else {
            "RequestVersionTooHigh"
        };
        return Err(status_under(
            Top::VersionMismatch,
            code,
            "only SAML 2.0 requests are supported",
        ));
    }
    if req
        .protocol_binding
        .as_deref()
        .is_some_and(|b| b != BINDING_POST)
    {
        return Err(status(
            "UnsupportedBinding",
            "responses are sent with the HTTP-POST binding only",
        ));
    }
    let policy = req.name_id_policy.as_ref();
    let asked_format = policy
        .and_then(|p| p.format.as_deref())
        .filter(|f| *f != NAMEID_UNSPECIFIED);
    let format = super::nameid::format_of(sp.settings.name_id);
    if asked_format.is_some_and(|f| f != format) {
        return Err(status(
            "InvalidNameIDPolicy",
            "this service provider is registered for another NameID format",
        ));
    }
    // Core §3.4.1.1: identifiers are qualified by the SP itself; one shared with an affiliation
    // of SPs is not offered, and a policy that cannot be met is refused, not ignored.
    if policy
        .and_then(|p| p.sp_name_qualifier.as_deref())
        .is_some_and(|q| q != sp.entity_id)
    {
        return Err(status(
            "InvalidNameIDPolicy",
            "NameIDs are qualified by the service provider itself, not an affiliation",
        ));
    }
    // A Subject named otherwise (an EncryptedID, a BaseID) is one Sesame cannot match: refused,
    // not ignored, or any user would do.
    let requested_subject = match req.subject.as_ref().map(|s| s.name_id.as_ref()) {
        None => None,
        Some(None) => {
            return Err(status(
                "RequestUnsupported",
                "only a NameID can name the subject of a request",
            ));
        }
        Some(Some(id))
            if id
                .format
                .as_deref()
                .is_some_and(|f| f != format && f != NAMEID_UNSPECIFIED) =>
        {
            return Err(status(
                "InvalidNameIDPolicy",
                "the request's Subject is in another NameID format than this service provider's",
            ));
        }
        Some(Some(id)) => Some(id.value.trim().to_string()),
    };
    let requested_classes = requested_classes(req).map_err(|status| Refusal::Status {
        acs: acs.clone(),
        status,
    })?;
    Ok(Accepted {
        sp_id: sp.id.clone(),
        request_id: Some(req.id.clone()),
        acs,
        relay_state: relay_state.map(str::to_string),
        force_authn: req.force_authn.unwrap_or(false),
        is_passive: req.is_passive.unwrap_or(false),
        requested_classes,
        requested_subject,
    })
}

/// The plain password class (SAML Authn Context §3.4.17): weaker than any sign-in Sesame offers,
/// which are over TLS at least.
const CLASS_PLAIN_PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password";

/// The classes a sign-in must reach one of for `req`'s `RequestedAuthnContext` (SAML Core
/// §3.3.2.2.1). Sesame's classes (a password, a one-time code) are each one factor and rank
/// alike, so `minimum` and `maximum` of a class Sesame knows are met by any of them, `minimum`
/// of a plain password too, `exact` by the listed ones, and `better` by none. Sesame has no
/// authentication context declarations, so a request for one cannot be met.
fn requested_classes(req: &AuthnRequest) -> Result<Vec<String>, Status> {
    let Some(requested) = req.requested_authn_context.as_ref() else {
        return Ok(Vec::new());
    };
    if requested
        .authn_context_decl_refs
        .as_ref()
        .is_some_and(|d| !d.is_empty())
    {
        return Err(Status {
            code: "NoAuthnContext",
            top: Top::Responder,
            message: "authentication context declarations are not supported",
        });
    }
    let listed: Vec<String> = requested
        .authn_context_class_refs
        .iter()
        .flatten()
        .filter_map(|r| r.value.clone())
        .collect();
    match requested.comparison {
        Some(AuthnContextComparison::Better) if !listed.is_empty() => Err(Status {
            code: "NoAuthnContext",
            top: Top::Responder,
            message: "no authentication context stronger than those requested is offered",
        }),
        Some(AuthnContextComparison::Minimum | AuthnContextComparison::Maximum)
            if crate::flow::session::reachable(&listed) =>
        {
            Ok(Vec::new())
        }
        Some(AuthnContextComparison::Minimum)
            if listed.iter().any(|c| c == CLASS_PLAIN_PASSWORD) =>
        {
            Ok(Vec::new())
        }
        _ => Ok(listed),
    }
}

/// The registered consumer the request names by URL or index, or the SP's default one. A URL must
/// match a registered one exactly (SAML Profiles §4.1.4.1).
fn consumer(req: &AuthnRequest, sp: &ServiceProvider) -> Result<String, RequestError> {
    let registered = &sp.settings.acs;
    let found = match (
        &req.assertion_consumer_service_url,
        req.assertion_consumer_service_index,
    ) {
        // Core §3.4.1 makes the two exclusive; an SP that sends both is taken at its word only
        // when they name the same endpoint.
        (Some(url), Some(index)) => {
            let by_index = registered.iter().find(|e| {
                e.index
                    .is_some_and(|i| usize::try_from(i).ok() == Some(index))
            });
            if by_index.is_some_and(|e| e.url != *url) {
                return Err(RequestError::Malformed(
                    "AssertionConsumerServiceURL and AssertionConsumerServiceIndex name different \
                     endpoints"
                        .into(),
                ));
            }
            registered.iter().find(|e| e.url == *url)
        }
        (Some(url), None) => registered.iter().find(|e| e.url == *url),
        (None, Some(index)) => registered.iter().find(|e| {
            e.index
                .is_some_and(|i| usize::try_from(i).ok() == Some(index))
        }),
        (None, None) => registered
            .iter()
            .find(|e| e.is_default)
            .or(registered.first()),
    };
    found
        .map(|e| e.url.clone())
        .ok_or(RequestError::UnregisteredAcs)
}

/// An `xs:ID` as SPs write them: an NCName of reasonable length. Anything else is refused rather
/// than echoed into the Response's `InResponseTo`.
pub fn is_xml_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 256
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
