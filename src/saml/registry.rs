//! Registering a service provider, from its metadata (SAML Metadata §2.4.4, `SPSSODescriptor`) or
//! from fields, checked so that whatever is stored can be served: an entityID, at least one
//! HTTP-POST assertion consumer service at an https URL (http only on loopback), certificates
//! that parse.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::metadata::{EncryptionMethod, EntityDescriptor, SpSsoDescriptor};

use super::{BINDING_POST, BINDING_REDIRECT, NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT};
use crate::store::service_providers::{
    AttributeMapping, Encryption, Endpoint, NameIdSource, ServiceProvider, Signed, SpSettings,
};

/// The longest an SP's assertions may be registered to live, in seconds.
pub const MAX_ASSERTION_LIFETIME: i64 = 3600;

/// Metadata larger than this is refused before parsing; real SP metadata is a few kilobytes.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
const MAX_ENTITY_ID: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RegistryError(pub String);

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError(msg.into())
}

/// Refuses what no SAML message or metadata needs and every XML attack uses: a document type
/// declaration (external entities, entity expansion). Checked before any parser sees the text.
pub fn refuse_dtd(xml: &str) -> Result<(), RegistryError> {
    let upper = xml.to_ascii_uppercase();
    if upper.contains("<!DOCTYPE") || upper.contains("<!ENTITY") {
        return Err(invalid(
            "the XML has a document type declaration, which SAML documents never need: refused",
        ));
    }
    Ok(())
}

/// What an SP's metadata describes. `id` and `name` are the caller's.
#[derive(Debug, Clone)]
pub struct Described {
    pub entity_id: String,
    pub settings: SpSettings,
    /// `WantAssertionsSigned` (Metadata §2.4.4): the SP rejects an assertion without a
    /// signature of its own, so a registration must not sign only the Response.
    pub wants_signed_assertions: bool,
    /// The encryption key lists block ciphers, none of which Sesame offers: the registration
    /// must choose one (`encryption`), or assertions would go out that the SP cannot read.
    pub no_common_cipher: bool,
}

/// The entityID and settings an SP's metadata describes.
pub fn from_metadata(xml: &str) -> Result<Described, RegistryError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(invalid(format!(
            "the metadata is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    refuse_dtd(xml)?;
    let entity: EntityDescriptor = xml
        .parse()
        .map_err(|e| invalid(format!("the metadata is not a SAML EntityDescriptor: {e}")))?;
    let entity_id = entity
        .entity_id
        .clone()
        .ok_or_else(|| invalid("the metadata has no entityID"))?;
    let sp = entity
        .sp_sso_descriptors
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|d| {
            d.protocol_support_enumeration
                .as_deref()
                .is_some_and(|p| p.split_whitespace().any(|p| p == super::PROTOCOL_NS))
        })
        .ok_or_else(|| invalid("the metadata has no SAML 2.0 SPSSODescriptor"))?;
    let (settings, no_common_cipher) = settings_of(sp)?;
    Ok(Described {
        entity_id,
        settings,
        wants_signed_assertions: sp.want_assertions_signed.unwrap_or(false),
        no_common_cipher,
    })
}

/// The settings `sp` describes, and whether its encryption key lists no block cipher Sesame
/// offers.
fn settings_of(sp: &SpSsoDescriptor) -> Result<(SpSettings, bool), RegistryError> {
    let acs = sp
        .assertion_consumer_services
        .iter()
        .filter(|e| e.binding == BINDING_POST)
        .map(|e| Endpoint {
            url: e.location.clone(),
            binding: e.binding.clone(),
            index: u32::try_from(e.index).ok(),
            is_default: e.is_default.unwrap_or(false),
            response_url: None,
        })
        .collect();
    let slos = sp.single_logout_services.as_deref().unwrap_or_default();
    let slo = [BINDING_REDIRECT, BINDING_POST].iter().find_map(|binding| {
        slos.iter()
            .find(|e| e.binding == *binding)
            .map(|e| Endpoint {
                url: e.location.clone(),
                binding: e.binding.clone(),
                index: None,
                is_default: false,
                response_url: e.response_location.clone().filter(|r| *r != e.location),
            })
    });
    let mut signing = Vec::new();
    let mut encryption = None;
    let mut methods: Option<&[EncryptionMethod]> = None;
    for key in sp.key_descriptors.as_deref().unwrap_or_default() {
        let Some(data) = &key.key_info.x509_data else {
            continue;
        };
        for cert in &data.certificates {
            let b64: String = cert.split_whitespace().collect();
            let for_encryption = match key.key_use.as_deref() {
                Some("signing") => {
                    signing.push(b64);
                    continue;
                }
                Some("encryption") => b64,
                // Without `use`, a key serves both (SAML Metadata §2.4.1.1).
                _ => {
                    signing.push(b64.clone());
                    b64
                }
            };
            if encryption.is_none() {
                encryption = Some(for_encryption);
                methods = key.encryption_methods.as_deref();
            }
        }
    }
    let name_id = sp
        .name_id_formats
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find_map(|f| match f.trim() {
            NAMEID_EMAIL => Some(NameIdSource::Email),
            NAMEID_PERSISTENT => Some(NameIdSource::Persistent),
            NAMEID_TRANSIENT => Some(NameIdSource::Transient),
            _ => None,
        })
        .unwrap_or_default();
    let cipher = block_cipher(methods.unwrap_or_default());
    let settings = SpSettings {
        acs,
        slo,
        signing_certificates: signing,
        encryption_certificate: encryption,
        encryption: cipher.unwrap_or_default(),
        name_id,
        want_requests_signed: sp.authn_requests_signed.unwrap_or(false),
        ..SpSettings::default()
    };
    Ok((settings, cipher.is_none()))
}

/// The block cipher for an SP whose encryption key lists `methods` (SAML Metadata §2.4.1.1: the
/// algorithms it supports): Sesame's most preferred one among them, `None` when it lists only
/// others. A list without block ciphers (key transport only) or no list at all leaves the
/// default. The key is always wrapped
/// with RSA-OAEP, whatever the list says: RSA PKCS#1 v1.5 key transport is open to padding
/// oracles (XML Encryption 1.1 §5.5.1), and SAML libraries that list only it decrypt OAEP too.
fn block_cipher(methods: &[EncryptionMethod]) -> Option<Encryption> {
    let listed: Vec<&str> = methods.iter().map(|m| m.algorithm.trim()).collect();
    let known_block =
        |a: &&str| a.contains("#aes") || a.contains("#tripledes") || a.contains("#camellia");
    if !listed.iter().any(known_block) {
        return Some(Encryption::default());
    }
    Encryption::ALL
        .into_iter()
        .find(|e| listed.contains(&e.algorithm()))
}

/// A registration as an administrator writes it (command line or import file): the SP's metadata
/// and/or fields, the fields overriding the metadata.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub metadata: Option<String>,
    pub entity_id: Option<String>,
    /// Consumer URLs (HTTP-POST); the first is the default.
    pub acs: Vec<String>,
    /// The single logout URL (HTTP-Redirect).
    pub slo: Option<String>,
    /// Certificates as PEM or DER.
    pub signing_certificate: Option<Vec<u8>>,
    pub encryption_certificate: Option<Vec<u8>>,
    pub name_id: Option<String>,
    /// `(attribute name, user field)`.
    pub attributes: Vec<(String, String)>,
    pub require_signed_requests: bool,
    pub idp_initiated: bool,
    pub sign: Option<String>,
    pub encryption: Option<String>,
    pub assertion_lifetime: Option<i64>,
}

/// The registration `fields` describe, checked with [`check`].
pub fn build(
    id: &str,
    name: Option<&str>,
    app_id: Option<&str>,
    fields: &Fields,
) -> Result<ServiceProvider, RegistryError> {
    let (from_metadata, mut s, wants_signed_assertions, no_common_cipher) = match &fields.metadata {
        Some(xml) => {
            let d = from_metadata(xml)?;
            let signed = d.wants_signed_assertions;
            (Some(d.entity_id), d.settings, signed, d.no_common_cipher)
        }
        None => (None, SpSettings::default(), false, false),
    };
    let entity_id = fields
        .entity_id
        .clone()
        .or(from_metadata)
        .ok_or_else(|| invalid("give the SP's metadata, or its entity ID and consumer URL"))?;
    if !fields.acs.is_empty() {
        s.acs = fields
            .acs
            .iter()
            .enumerate()
            .map(|(i, url)| Endpoint {
                url: url.clone(),
                binding: BINDING_POST.into(),
                index: u32::try_from(i).ok(),
                is_default: i == 0,
                response_url: None,
            })
            .collect();
    }
    if let Some(url) = &fields.slo {
        s.slo = Some(Endpoint {
            url: url.clone(),
            binding: BINDING_REDIRECT.into(),
            index: None,
            is_default: false,
            response_url: None,
        });
    }
    if let Some(c) = &fields.signing_certificate {
        s.signing_certificates = vec![certificate(c)?];
    }
    if let Some(c) = &fields.encryption_certificate {
        s.encryption_certificate = Some(certificate(c)?);
    }
    if let Some(n) = &fields.name_id {
        s.name_id = NameIdSource::parse(n)
            .ok_or_else(|| invalid("name_id: use email, username, persistent or transient"))?;
    }
    if !fields.attributes.is_empty() {
        s.attributes = fields
            .attributes
            .iter()
            .map(|(name, source)| AttributeMapping {
                name: name.trim().to_string(),
                source: source.trim().to_string(),
                format: None,
            })
            .collect();
    }
    s.want_requests_signed |= fields.require_signed_requests;
    s.idp_initiated |= fields.idp_initiated;
    if let Some(sign) = &fields.sign {
        s.signed = match sign.as_str() {
            "assertion" => Signed::Assertion,
            "response" => Signed::Response,
            "both" => Signed::Both,
            _ => return Err(invalid("sign: use assertion, response or both")),
        };
    }
    if wants_signed_assertions && s.signed == Signed::Response {
        return Err(invalid(
            "sign: the SP's metadata asks for signed assertions (WantAssertionsSigned); \
             use assertion or both",
        ));
    }
    if let Some(e) = &fields.encryption {
        s.encryption = match e.as_str() {
            "aes256-gcm" => Encryption::Aes256Gcm,
            "aes128-gcm" => Encryption::Aes128Gcm,
            "aes128-cbc" => Encryption::Aes128Cbc,
            _ => {
                return Err(invalid(
                    "encryption: use aes256-gcm, aes128-gcm or aes128-cbc",
                ));
            }
        };
    } else if no_common_cipher && fields.encryption_certificate.is_none() {
        return Err(invalid(
            "the metadata's encryption key lists no block cipher Sesame offers: choose one with \
             encryption (aes256-gcm, aes128-gcm or aes128-cbc) if the SP can read it",
        ));
    }
    s.assertion_lifetime = fields.assertion_lifetime.or(s.assertion_lifetime);
    let sp = ServiceProvider {
        id: id.to_string(),
        entity_id,
        name: name.unwrap_or(id).to_string(),
        app_id: app_id.map(str::to_string),
        settings: s,
    };
    check(&sp)?;
    Ok(sp)
}

/// The user fields an attribute can carry.
pub const ATTRIBUTE_SOURCES: [&str; 8] = [
    "email",
    "username",
    "display_name",
    "phone",
    "employee_no",
    "department",
    "roles",
    "user_id",
];

/// A certificate given as PEM or DER, checked, as the base64 DER a registration keeps.
pub fn certificate(bytes: &[u8]) -> Result<String, RegistryError> {
    let cert = if bytes.starts_with(b"-----BEGIN") {
        openssl::x509::X509::from_pem(bytes)
    } else {
        openssl::x509::X509::from_der(bytes)
    }
    .map_err(|_| invalid("not an X.509 certificate (PEM or DER)"))?;
    let der = cert
        .to_der()
        .map_err(|e| invalid(format!("certificate: {e}")))?;
    Ok(STANDARD.encode(der))
}

/// Checks a registration before it is stored; the messages name the field and the fix.
pub fn check(sp: &ServiceProvider) -> Result<(), RegistryError> {
    if sp.id.is_empty()
        || sp.id.len() > 64
        || !sp
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(format!(
            "SP id '{}': use 1-64 letters, digits, '-' or '_' (it appears in /saml/launch/{{id}})",
            sp.id
        )));
    }
    if sp.entity_id.trim().is_empty() || sp.entity_id.len() > MAX_ENTITY_ID {
        return Err(invalid(format!(
            "entityID: give the SP's entityID (1-{MAX_ENTITY_ID} characters)"
        )));
    }
    let s = &sp.settings;
    if s.acs.is_empty() {
        return Err(invalid(
            "no assertion consumer service with the HTTP-POST binding: Sesame sends Responses \
             by HTTP-POST, so the SP must offer one",
        ));
    }
    let response_urls = s.slo.iter().filter_map(|e| e.response_url.as_ref());
    let urls = s.acs.iter().chain(s.slo.iter()).map(|e| &e.url);
    for url in urls.chain(response_urls) {
        crate::oidc::redirect::check_registrable(url)
            .and_then(|()| {
                if url.starts_with("https://") || url.starts_with("http://") {
                    Ok(())
                } else {
                    Err(format!("'{url}' is not an http(s) URL"))
                }
            })
            .map_err(|e| invalid(format!("SP endpoint: {e}")))?;
    }
    for (what, b64) in s
        .signing_certificates
        .iter()
        .map(|c| ("signing", c))
        .chain(s.encryption_certificate.iter().map(|c| ("encryption", c)))
    {
        let der = STANDARD
            .decode(b64)
            .map_err(|_| invalid(format!("the {what} certificate is not base64")))?;
        openssl::x509::X509::from_der(&der).map_err(|_| {
            invalid(format!(
                "the {what} certificate is not an X.509 certificate"
            ))
        })?;
    }
    for a in &s.attributes {
        if a.name.is_empty() || !ATTRIBUTE_SOURCES.contains(&a.source.as_str()) {
            return Err(invalid(format!(
                "attribute '{}={}': give a name and one of {}",
                a.name,
                a.source,
                ATTRIBUTE_SOURCES.join(", ")
            )));
        }
    }
    if s.want_requests_signed && s.signing_certificates.is_empty() {
        return Err(invalid(
            "signed AuthnRequests are required but the SP has no signing certificate",
        ));
    }
    if let Some(l) = s.assertion_lifetime
        && !(30..=MAX_ASSERTION_LIFETIME).contains(&l)
    {
        return Err(invalid(
            "assertion_lifetime: give 30 to 3600 seconds (the default is 300)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SP: &str = r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://marketing.example.com/saml">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false" WantAssertionsSigned="true">
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://marketing.example.com/saml/slo-post"/>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://marketing.example.com/saml/slo" ResponseLocation="https://marketing.example.com/saml/slo/done"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://marketing.example.com/saml/art" index="0"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://marketing.example.com/saml/acs" index="1" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#;

    #[test]
    fn metadata_gives_the_entity_id_the_post_acs_and_the_slo() {
        let d = from_metadata(SP).unwrap();
        assert_eq!(d.entity_id, "https://marketing.example.com/saml");
        assert!(d.wants_signed_assertions);
        let s = d.settings;
        assert_eq!(
            s.acs,
            [Endpoint {
                url: "https://marketing.example.com/saml/acs".into(),
                binding: BINDING_POST.into(),
                index: Some(1),
                is_default: true,
                response_url: None,
            }],
            "only HTTP-POST consumers: Sesame answers by POST"
        );
        let slo = s.slo.unwrap();
        assert_eq!(
            slo.url, "https://marketing.example.com/saml/slo",
            "Redirect preferred for logout"
        );
        assert_eq!(
            slo.for_responses().url,
            "https://marketing.example.com/saml/slo/done",
            "LogoutResponses go to the ResponseLocation"
        );
        assert_eq!(s.name_id, NameIdSource::Persistent);
        assert!(!s.want_requests_signed);
    }

    #[test]
    fn hostile_or_useless_metadata_is_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&e;"/>"#;
        assert!(from_metadata(xxe).unwrap_err().0.contains("document type"));
        let laughs =
            r#"<!doctype lolz [<!entity lol "lol"><!entity lol2 "&lol;&lol;">]><x>&lol2;</x>"#;
        assert!(
            from_metadata(laughs)
                .unwrap_err()
                .0
                .contains("document type")
        );
        assert!(
            from_metadata("not xml")
                .unwrap_err()
                .0
                .contains("EntityDescriptor")
        );
        let big = format!("{SP}{}", " ".repeat(MAX_METADATA_BYTES));
        assert!(from_metadata(&big).unwrap_err().0.contains("larger"));
        let idp_only = SP.replace("SPSSODescriptor", "IDPSSODescriptor");
        assert!(from_metadata(&idp_only).is_err());
    }

    fn sp(settings: SpSettings) -> ServiceProvider {
        ServiceProvider {
            id: "marketing".into(),
            entity_id: "https://marketing.example.com/saml".into(),
            name: "Marketing".into(),
            app_id: None,
            settings,
        }
    }

    #[test]
    fn a_registration_must_be_servable() {
        let settings = from_metadata(SP).unwrap().settings;
        check(&sp(settings.clone())).unwrap();
        let mut bad = sp(settings.clone());
        bad.id = "has space".into();
        assert!(check(&bad).unwrap_err().0.contains("SP id"));
        let mut bad = sp(settings.clone());
        bad.settings.acs.clear();
        assert!(check(&bad).unwrap_err().0.contains("HTTP-POST"));
        for url in [
            "http://marketing.example.com/acs",
            "javascript:alert(1)",
            "https://x.example.com/acs#frag",
            "com.example.app:/acs",
        ] {
            let mut bad = sp(settings.clone());
            bad.settings.acs[0].url = url.into();
            assert!(check(&bad).is_err(), "{url}");
        }
        let mut bad = sp(settings.clone());
        bad.settings.signing_certificates = vec!["bm90IGEgY2VydA==".into()];
        assert!(check(&bad).unwrap_err().0.contains("X.509"));
        let mut bad = sp(settings);
        bad.settings.want_requests_signed = true;
        assert!(
            check(&bad)
                .unwrap_err()
                .0
                .contains("no signing certificate")
        );
    }

    #[test]
    fn an_sp_that_wants_signed_assertions_is_not_given_only_a_signed_response() {
        let fields = |sign: &str, metadata: &str| Fields {
            metadata: Some(metadata.to_string()),
            sign: Some(sign.into()),
            ..Fields::default()
        };
        let refused = build("marketing", None, None, &fields("response", SP)).unwrap_err();
        assert!(refused.0.contains("WantAssertionsSigned"), "{}", refused.0);
        for sign in ["assertion", "both"] {
            build("marketing", None, None, &fields(sign, SP)).unwrap();
        }
        let indifferent = SP.replace(r#"WantAssertionsSigned="true""#, "");
        let sp = build("marketing", None, None, &fields("response", &indifferent)).unwrap();
        assert_eq!(sp.settings.signed, Signed::Response);
    }

    /// SP metadata whose encryption key lists `methods` (`EncryptionMethod` elements).
    fn metadata(methods: &str) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>MIIB</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{methods}</md:KeyDescriptor>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example.com/acs" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#
        )
    }

    fn method(uri: &str) -> String {
        format!(r#"<md:EncryptionMethod Algorithm="{uri}"/>"#)
    }

    #[test]
    fn the_block_cipher_is_one_the_sp_lists() {
        let cbc = method("http://www.w3.org/2001/04/xmlenc#aes128-cbc");
        let v15 = method("http://www.w3.org/2001/04/xmlenc#rsa-1_5");
        let gcm128 = method("http://www.w3.org/2009/xmlenc11#aes128-gcm");
        let gcm256 = method("http://www.w3.org/2009/xmlenc11#aes256-gcm");
        let described = |methods: &str| from_metadata(&metadata(methods)).unwrap();
        let chosen = |methods: String| {
            let d = described(&methods);
            assert!(!d.no_common_cipher, "{methods}");
            d.settings.encryption
        };
        assert_eq!(chosen(format!("{cbc}{v15}")), Encryption::Aes128Cbc);
        assert_eq!(chosen(format!("{cbc}{gcm128}")), Encryption::Aes128Gcm);
        assert_eq!(chosen(format!("{gcm256}{cbc}")), Encryption::Aes256Gcm);
        // No list, or key transport only: the default.
        assert_eq!(chosen(String::new()), Encryption::Aes256Gcm);
        assert_eq!(chosen(v15.clone()), Encryption::Aes256Gcm);
        // Only ciphers Sesame does not offer: the registration must choose, rather than send
        // assertions the SP cannot read.
        let des = method("http://www.w3.org/2001/04/xmlenc#tripledes-cbc");
        assert!(described(&des).no_common_cipher);
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let der =
            crate::crypto::cert::self_signed(&key, "sp", crate::clock::UnixTime(1_700_000_000))
                .unwrap();
        let xml = metadata(&des).replace("MIIB", &STANDARD.encode(der));
        let fields = |encryption: Option<&str>| Fields {
            metadata: Some(xml.clone()),
            encryption: encryption.map(str::to_string),
            ..Fields::default()
        };
        let err = build("sp", None, None, &fields(None)).unwrap_err();
        assert!(
            err.0.contains("no block cipher Sesame offers: choose"),
            "{err}"
        );
        let sp = build("sp", None, None, &fields(Some("aes128-cbc"))).unwrap();
        assert_eq!(sp.settings.encryption, Encryption::Aes128Cbc);
    }
}
