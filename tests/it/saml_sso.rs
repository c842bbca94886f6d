//! SP-initiated Web Browser SSO against a live server, driven by samael's service-provider side
//! (its own request builder and its own strict Response validation), and the bad requests an SP
//! or an attacker can send.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use samael::metadata::EntityDescriptor;
use samael::schema::AuthnRequest;
use samael::service_provider::{ServiceProvider as Sp, ServiceProviderBuilder};
use samael::traits::ToXml;
use sesame::store::service_providers::{
    self as sps, AttributeMapping, Encryption, Endpoint, NameIdSource, ServiceProvider, SpSettings,
};
use sesame::tenant::TenantId;

use crate::browser::{Browser, PASSWORD, enc, hidden};
use crate::support::{TestDb, both_backends};

pub(crate) const SP_ENTITY: &str = "https://marketing.acme.test/saml";
pub(crate) const ACS: &str = "https://marketing.acme.test/acs";
pub(crate) const SSO: &str = "/t/acme/saml/sso";

/// The marketing app's SP: registered in the tenant, and samael's SP set up with our metadata.
pub(crate) struct Marketing {
    pub(crate) sp: Sp,
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    cert: samael::crypto::CertificateDer,
    sso_url: String,
}

/// `tweak` adjusts the registration; it is given the SP's own certificate (base64 DER).
pub(crate) async fn marketing(b: &Browser, tweak: impl FnOnce(&mut SpSettings, &str)) -> Marketing {
    // samael validates with the wall clock: run the server on it too.
    b.t.clock
        .set(sesame::clock::Clock::now(&sesame::clock::SystemClock));
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let cert = sesame::crypto::cert::self_signed(&key, "marketing", b.t.app.now()).unwrap();
    let mut settings = SpSettings {
        acs: vec![Endpoint {
            url: ACS.into(),
            binding: sesame::saml::BINDING_POST.into(),
            index: Some(0),
            is_default: true,
            response_url: None,
        }],
        signing_certificates: vec![STANDARD.encode(&cert)],
        name_id: NameIdSource::Email,
        attributes: vec![
            AttributeMapping {
                name: "mail".into(),
                source: "email".into(),
                format: None,
            },
            AttributeMapping {
                name: "groups".into(),
                source: "roles".into(),
                format: None,
            },
        ],
        ..SpSettings::default()
    };
    tweak(&mut settings, &STANDARD.encode(&cert));
    let registered = ServiceProvider {
        id: "marketing".into(),
        entity_id: SP_ENTITY.into(),
        name: "Marketing".into(),
        app_id: Some("crm".into()),
        settings,
    };
    let acme = TenantId::parse("acme").unwrap();
    let now = b.t.app.now();
    b.t.app
        .store
        .run(move |c| sps::save(c, &acme, &registered, now))
        .await
        .unwrap();
    let metadata = b.get("/t/acme/saml/metadata").await.text().await.unwrap();
    let idp: EntityDescriptor = metadata.parse().unwrap();
    let sso_url = idp.idp_sso_descriptors.as_ref().unwrap()[0].single_sign_on_services[0]
        .location
        .clone();
    let sp = ServiceProviderBuilder::default()
        .entity_id(SP_ENTITY.to_string())
        .acs_url(ACS.to_string())
        .idp_metadata(idp)
        .key(key.clone())
        .certificate(samael::crypto::CertificateDer::from(cert.clone()))
        .build()
        .unwrap();
    Marketing {
        sp,
        key,
        cert: cert.into(),
        sso_url,
    }
}

impl Marketing {
    pub(crate) fn request(&self) -> AuthnRequest {
        self.sp.make_authentication_request(&self.sso_url).unwrap()
    }

    /// The request's Redirect-binding query (unsigned).
    pub(crate) fn redirect_query(req: &AuthnRequest, relay: &str) -> String {
        let url = req.redirect(relay).unwrap().unwrap();
        url.query().unwrap().to_string()
    }

    fn signed_redirect_query(&self, req: &AuthnRequest, relay: &str) -> String {
        let url = req.signed_redirect(relay, &self.key).unwrap().unwrap();
        url.query().unwrap().to_string()
    }
}

/// The SAMLResponse and RelayState an auto-posting page carries, after checking it posts to the
/// registered consumer.
pub(crate) fn posted(html: &str) -> (String, Option<String>) {
    assert!(
        html.contains(&format!("action=\"{}\"", ACS.replace('/', "&#x2f;"))),
        "{html}"
    );
    let relay = html
        .contains("name=\"RelayState\"")
        .then(|| hidden(html, "RelayState"));
    (hidden(html, "SAMLResponse"), relay)
}

pub(crate) async fn sign_in(b: &Browser, login: &str, account: &str) -> String {
    let r = b.submit(login, account, PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

both_backends!(
    a_redirect_request_signs_in_and_the_sp_accepts_the_response,
    |db| {
        let b = Browser::new(db).await;
        let m = marketing(&b, |_, _| {}).await;
        let req = m.request();
        let r = b
            .get(&format!(
                "{SSO}?{}",
                Marketing::redirect_query(&req, "rs-1")
            ))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let login = r.headers()["location"].to_str().unwrap().to_string();
        assert!(login.starts_with("/t/acme/login?flow="), "{login}");
        let page = b.get(&login).await.text().await.unwrap();
        assert!(page.contains("Marketing"), "the page names the app");
        let html = sign_in(&b, &login, "alice").await;
        let (response, relay) = posted(&html);
        assert_eq!(relay.as_deref(), Some("rs-1"));
        let assertion =
            m.sp.parse_base64_response(&response, Some(&[req.id.as_str()]))
                .unwrap();
        let subject = assertion.subject.unwrap();
        assert_eq!(subject.name_id.unwrap().value, "alice@acme.test");
        let attrs = &assertion.attribute_statements.unwrap()[0].attributes;
        let values = |name: &str| -> Vec<String> {
            attrs
                .iter()
                .find(|a| a.name.as_deref() == Some(name))
                .map(|a| a.values.iter().filter_map(|v| v.value.clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(values("mail"), ["alice@acme.test"]);
        assert_eq!(values("groups"), ["crm:rep"]);
        let statement = &assertion.authn_statements.unwrap()[0];
        assert_eq!(
            statement
                .authn_context
                .as_ref()
                .unwrap()
                .value
                .as_ref()
                .unwrap()
                .value
                .as_deref(),
            Some(sesame::saml::sso::CLASS_PASSWORD)
        );
        assert!(statement.session_index.is_some());

        // Single sign-on: a second request of the same browser is answered without the page.
        let again = m.request();
        let r = b
            .get(&format!("{SSO}?{}", Marketing::redirect_query(&again, "")))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let (response, _) = posted(&r.text().await.unwrap());
        m.sp.parse_base64_response(&response, Some(&[again.id.as_str()]))
            .unwrap();
        // ForceAuthn asks again.
        let mut forced = m.request();
        forced.force_authn = Some(true);
        let r = b
            .get(&format!("{SSO}?{}", Marketing::redirect_query(&forced, "")))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
);

#[tokio::test]
async fn a_post_request_and_a_signed_redirect_are_answered() {
    let b = Browser::new(TestDb::sqlite()).await;
    let m = marketing(&b, |s, _| s.want_requests_signed = true).await;
    // Unsigned, while the SP must sign: refused with a page, not sent anywhere.
    let req = m.request();
    let r = b
        .get(&format!("{SSO}?{}", Marketing::redirect_query(&req, "")))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("signature"));
    // Signed, without saying where it was sent (Bindings §3.4.5.2): refused.
    let mut req = m.request();
    req.destination = None;
    let q = signed_redirect("SAMLRequest", &req.to_string().unwrap(), "", &m.key);
    let r = b.get(&format!("{SSO}?{q}")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Destination"));
    // Signed Redirect.
    let req = m.request();
    let r = b
        .get(&format!("{SSO}?{}", m.signed_redirect_query(&req, "rs-2")))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let (response, relay) = posted(&sign_in(&b, &login, "alice").await);
    assert_eq!(relay.as_deref(), Some("rs-2"));
    m.sp.parse_base64_response(&response, Some(&[req.id.as_str()]))
        .unwrap();
    // A signed POST (enveloped XML signature), riding on the session.
    let mut req = m.request();
    let sign = |req: &mut AuthnRequest, digest| {
        let mut template = samael::signature::Signature::template(&req.id, &m.cert);
        template.signed_info.reference[0].digest_method.algorithm = digest;
        req.signature = Some(template);
        req.to_signed_xml(&m.key.private_key_to_der().unwrap())
            .unwrap()
    };
    // A SHA-1 digest is refused.
    let sha1 = sign(&mut req, samael::signature::DigestAlgorithm::Sha1);
    let body = format!("SAMLRequest={}", enc(&STANDARD.encode(sha1)));
    assert_eq!(
        b.post_form(SSO, &body).await.status(),
        StatusCode::BAD_REQUEST
    );
    let mut req = m.request();
    let signed = sign(&mut req, samael::signature::DigestAlgorithm::Sha256);
    let body = format!(
        "SAMLRequest={}&RelayState=rs-3",
        enc(&STANDARD.encode(signed))
    );
    let r = b.post_form(SSO, &body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        text.split("<main")
            .nth(1)
            .unwrap_or(&text)
            .chars()
            .take(700)
            .collect::<String>()
    );
    let (response, relay) = posted(&text);
    assert_eq!(relay.as_deref(), Some("rs-3"));
    m.sp.parse_base64_response(&response, Some(&[req.id.as_str()]))
        .unwrap();
    // The same signed request again (SAML Profiles §4.1.4.5: an ID is answered once): a page,
    // no Response.
    let r = b.post_form(SSO, &body).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!r.text().await.unwrap().contains("SAMLResponse"));
    // Signature wrapping (SAML Core §5.4.2: the signature is over the message's root): a signed
    // request carried inside an unsigned one, and a signed request with a second root after it.
    let signed_body = |xml: String| format!("SAMLRequest={}", enc(&STANDARD.encode(xml)));
    let inner = sign(&mut m.request(), samael::signature::DigestAlgorithm::Sha256);
    let inner = match inner.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").unwrap().1.to_string(),
        None => inner,
    };
    let outer = m.request().to_string().unwrap();
    let close = outer.rfind("</").unwrap();
    let wrapped = format!(
        "{}<samlp:Extensions xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{inner}\
         </samlp:Extensions>{}",
        &outer[..close],
        &outer[close..]
    );
    let trailing = format!("{inner}<x/>");
    for attack in [wrapped, trailing] {
        let r = b.post_form(SSO, &signed_body(attack)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(!r.text().await.unwrap().contains("SAMLResponse"));
    }
    // An unsigned POST is refused as well.
    let unsigned = m.request().to_string().unwrap();
    let body = format!("SAMLRequest={}", enc(&STANDARD.encode(unsigned)));
    assert_eq!(
        b.post_form(SSO, &body).await.status(),
        StatusCode::BAD_REQUEST
    );
}

fn deflated(xml: &str) -> String {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes()).unwrap();
    STANDARD.encode(e.finish().unwrap())
}

#[tokio::test]
async fn bad_requests_get_a_page_and_never_a_response() {
    let b = Browser::new(TestDb::sqlite()).await;
    // A second consumer, at index 1.
    let m = marketing(&b, |s, _| {
        s.acs.push(Endpoint {
            url: "https://marketing.acme.test/acs2".into(),
            binding: sesame::saml::BINDING_POST.into(),
            index: Some(1),
            is_default: false,
            response_url: None,
        })
    })
    .await;
    let bad = |q: String| {
        let b = &b;
        async move {
            let r = b.get(&format!("{SSO}?{q}")).await;
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(!text.contains("SAMLResponse"), "{text}");
            (status, text)
        }
    };
    let xml = |req: &AuthnRequest| req.to_string().unwrap();

    // Replayed: the same request twice.
    let req = m.request();
    let once = Marketing::redirect_query(&req, "");
    assert_eq!(
        b.get(&format!("{SSO}?{once}")).await.status(),
        StatusCode::SEE_OTHER
    );
    let (s, text) = bad(once).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(text.contains("already used"), "{text}");

    // Unknown issuer.
    let mut req = m.request();
    req.issuer.as_mut().unwrap().value = Some("https://evil.example.com".into());
    let (s, text) = bad(format!("SAMLRequest={}", enc(&deflated(&xml(&req))))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(text.contains("unknown service provider"), "{text}");

    // An ACS URL the SP did not register.
    let mut req = m.request();
    req.assertion_consumer_service_url = Some("https://evil.example.com/acs".into());
    let (s, text) = bad(format!("SAMLRequest={}", enc(&deflated(&xml(&req))))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(text.contains("consumer URL"), "{text}");
    // A registered URL with the index of another registered endpoint (Core §3.4.1: the two are
    // exclusive): which one was meant is unknown, so neither is answered.
    let mut req = m.request();
    req.assertion_consumer_service_url = Some("https://marketing.acme.test/acs2".into());
    req.assertion_consumer_service_index = Some(0);
    let (s, text) = bad(format!("SAMLRequest={}", enc(&deflated(&xml(&req))))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(text.contains("different"), "{text}");

    // Expired and future IssueInstant.
    for shift in [-600, 600] {
        let mut req = m.request();
        req.issue_instant += chrono::Duration::seconds(shift);
        let (s, text) = bad(format!("SAMLRequest={}", enc(&deflated(&xml(&req))))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(text.contains("too old"), "{text}");
    }

    // RelayState over 80 bytes.
    let req = m.request();
    let long = "r".repeat(81);
    let (s, text) = bad(Marketing::redirect_query(&req, &long)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(text.contains("80 bytes"), "{text}");

    // Malformed: not base64, not deflated, not XML, not an AuthnRequest, a DTD, too large.
    let dtd = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&e;</samlp:AuthnRequest>"#;
    let laughs = r#"<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&c;</samlp:AuthnRequest>"#;
    let logout = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"/>"#;
    let no_id = xml(&m.request()).replacen(" ID=\"", " Other=\"", 1);
    let email_issuer = {
        let mut req = m.request();
        req.issuer.as_mut().unwrap().format =
            Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into());
        xml(&req)
    };
    let huge = "A".repeat(request_max() + 10);
    let bomb = {
        // Deflates to a few kilobytes, inflates past the limit.
        let body = format!("<x>{}</x>", " ".repeat(request_max() * 4));
        deflated(&body)
    };
    for (what, q) in [
        ("missing", String::new()),
        ("base64", "SAMLRequest=%%%".to_string()),
        (
            "DEFLATE",
            format!("SAMLRequest={}", enc(&STANDARD.encode("plain"))),
        ),
        (
            "well-formed",
            format!("SAMLRequest={}", enc(&deflated("<unclosed"))),
        ),
        (
            "not a SAML 2.0 AuthnRequest",
            format!("SAMLRequest={}", enc(&deflated(logout))),
        ),
        (
            "document type",
            format!("SAMLRequest={}", enc(&deflated(dtd))),
        ),
        (
            "document type",
            format!("SAMLRequest={}", enc(&deflated(laughs))),
        ),
        ("too large", format!("SAMLRequest={}", enc(&bomb))),
        (
            "more than one root",
            format!(
                "SAMLRequest={}",
                enc(&deflated(&format!("{}<x/>", xml(&m.request()))))
            ),
        ),
        (
            "well-formed",
            format!(
                "SAMLRequest={}",
                enc(&deflated(&format!("{}text", xml(&m.request()))))
            ),
        ),
        (
            // The parser's own words (serde's, its field names) stay in the log.
            "does not follow the schema",
            format!("SAMLRequest={}", enc(&deflated(&no_id))),
        ),
        (
            "repeated",
            format!(
                "{}&SAMLRequest=x",
                Marketing::redirect_query(&m.request(), "")
            ),
        ),
        (
            // Bindings §3.4.4: an encoding Sesame does not know is not guessed at.
            "SAMLEncoding",
            format!(
                "{}&SAMLEncoding=urn%3Abogus%3Aencoding",
                Marketing::redirect_query(&m.request(), "")
            ),
        ),
        (
            // Profiles §4.1.4.1: an SP's Issuer is its entity ID.
            "Format must be omitted",
            format!("SAMLRequest={}", enc(&deflated(&email_issuer))),
        ),
    ] {
        let (s, text) = bad(q).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}");
        assert!(
            !text.contains("Custom(") && !text.contains("missing field"),
            "{text}"
        );
        assert!(
            text.contains(what),
            "{what}: {}",
            text.split("<main").nth(1).unwrap_or(&text)
        );
    }
    // Too large for a URL: over the POST binding, where the body limit refuses it first.
    let r = b.post_form(SSO, &format!("SAMLRequest={huge}")).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!r.text().await.unwrap().contains("SAMLResponse"));
    assert!(matches!(
        sesame::saml::request::decode_post(&huge),
        Err(sesame::saml::request::RequestError::Malformed(m)) if m.contains("too large")
    ));
}

fn request_max() -> usize {
    sesame::saml::request::MAX_BYTES
}

#[tokio::test]
async fn a_user_outside_the_app_is_refused_and_passive_requests_do_not_prompt() {
    let b = Browser::new(TestDb::sqlite()).await;
    let m = marketing(&b, |_, _| {}).await;
    // IsPassive without a session: a NoPassive status to the SP.
    let mut req = m.request();
    req.is_passive = Some(true);
    let r = b
        .get(&format!("{SSO}?{}", Marketing::redirect_query(&req, "")))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (response, _) = posted(&r.text().await.unwrap());
    let xml = String::from_utf8(STANDARD.decode(response).unwrap()).unwrap();
    assert!(xml.contains("status:NoPassive"), "{xml}");
    assert!(!xml.contains("Assertion"), "{xml}");
    // Another SAML version: VersionMismatch, with why (Core §3.2.2.2).
    for (version, why) in [
        ("1.1", "RequestVersionDeprecated"),
        ("3.0", "RequestVersionTooHigh"),
    ] {
        let mut other = m.request();
        other.version = version.into();
        let r = b
            .get(&format!("{SSO}?{}", Marketing::redirect_query(&other, "")))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{version}");
        let (response, _) = posted(&r.text().await.unwrap());
        let answer = String::from_utf8(STANDARD.decode(response).unwrap()).unwrap();
        assert!(answer.contains("status:VersionMismatch"), "{answer}");
        assert!(answer.contains(&format!("status:{why}")), "{answer}");
        assert!(!answer.contains("Assertion"), "{answer}");
    }
    assert!(
        m.sp.parse_base64_response(&STANDARD.encode(&xml), Some(&[req.id.as_str()]))
            .is_err()
    );
    // Olga works in operations: the CRM app's web scope is sales.
    let req = m.request();
    let r = b
        .get(&format!("{SSO}?{}", Marketing::redirect_query(&req, "")))
        .await;
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let r = b.submit(&login, "olga", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("does not have access") && !text.contains("SAMLResponse"),
        "{text}"
    );
    // Signed in, Olga's passive request is answered to the SP: a passive request never stops
    // the browser at a page of Sesame's (Core §3.4.1).
    let mut req = m.request();
    req.is_passive = Some(true);
    let r = b
        .get(&format!("{SSO}?{}", Marketing::redirect_query(&req, "")))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (response, _) = posted(&r.text().await.unwrap());
    let xml = String::from_utf8(STANDARD.decode(response).unwrap()).unwrap();
    assert!(xml.contains("status:RequestDenied"), "{xml}");
    assert!(!xml.contains("Assertion"), "{xml}");
    let acme = sesame::tenant::TenantId::parse("acme").unwrap();
    let events =
        b.t.app
            .store
            .run_blocking(|c| sesame::store::audit::list(c, &acme, 100))
            .unwrap();
    let denials = events
        .iter()
        .filter(|e| e.action == "saml.access_denied")
        .count();
    assert_eq!(denials, 2, "each refusal is audited");
}

#[tokio::test]
async fn an_idp_initiated_launch_reaches_only_an_sp_that_allows_it() {
    let b = Browser::new(TestDb::sqlite()).await;
    let _ = marketing(&b, |_, _| {}).await;
    // Not allowed: the launch URL does not exist for this SP, nor for an unknown one.
    assert_eq!(
        b.get("/t/acme/saml/launch/marketing").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get("/t/acme/saml/launch/nosuch").await.status(),
        StatusCode::NOT_FOUND
    );
    let m = marketing(&b, |s, _| s.idp_initiated = true).await;
    let long = "r".repeat(81);
    assert_eq!(
        b.get(&format!("/t/acme/saml/launch/marketing?RelayState={long}"))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let r = b
        .get("/t/acme/saml/launch/marketing?RelayState=%2Fhome")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let (response, relay) = posted(&sign_in(&b, &login, "alice").await);
    assert_eq!(relay.as_deref(), Some("/home"));
    let xml = String::from_utf8(STANDARD.decode(&response).unwrap()).unwrap();
    assert!(!xml.contains("InResponseTo"), "unsolicited: {xml}");
    // An SP that expects only answers to its own requests refuses it; one that allows
    // IdP-initiated sign-in accepts it.
    assert!(
        m.sp.parse_base64_response(&response, Some(&["id-1"]))
            .is_err()
    );
    let mut open = m.sp.clone();
    open.allow_idp_initiated = true;
    let assertion = open.parse_base64_response(&response, None).unwrap();
    assert_eq!(
        assertion.subject.unwrap().name_id.unwrap().value,
        "alice@acme.test"
    );
    // With the session, the tile answers at once.
    let r = b.get("/t/acme/saml/launch/marketing").await;
    assert_eq!(r.status(), StatusCode::OK);
    posted(&r.text().await.unwrap());
}

#[tokio::test]
async fn an_sp_with_an_encryption_certificate_gets_the_assertion_encrypted() {
    let b = Browser::new(TestDb::sqlite()).await;
    // samael decrypts AES-128 (GCM or CBC) only: the registration says which.
    let m = marketing(&b, |s, own| {
        s.encryption_certificate = Some(own.into());
        s.encryption = Encryption::Aes128Gcm;
    })
    .await;
    let req = m.request();
    let r = b
        .get(&format!("{SSO}?{}", Marketing::redirect_query(&req, "")))
        .await;
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let (response, _) = posted(&sign_in(&b, &login, "alice").await);
    let xml = String::from_utf8(STANDARD.decode(&response).unwrap()).unwrap();
    assert!(
        xml.contains("<saml:EncryptedAssertion")
            && xml.contains("xmlenc11#aes128-gcm")
            && !xml.contains("alice@acme.test"),
        "{xml}"
    );
    // samael decrypts it with the SP's key and validates the signed assertion inside.
    let assertion =
        m.sp.parse_base64_response(&response, Some(&[req.id.as_str()]))
            .unwrap();
    assert_eq!(
        assertion.subject.unwrap().name_id.unwrap().value,
        "alice@acme.test"
    );
}

/// Signs `alice` in to the marketing SP; returns the NameID and SessionIndex it was given.
async fn signed_in(b: &Browser, m: &Marketing) -> (String, String) {
    let req = m.request();
    let r = b
        .get(&format!("{SSO}?{}", Marketing::redirect_query(&req, "")))
        .await;
    let html = match r.status() {
        StatusCode::SEE_OTHER => {
            let login = r.headers()["location"].to_str().unwrap().to_string();
            sign_in(b, &login, "alice").await
        }
        _ => r.text().await.unwrap(),
    };
    let (response, _) = posted(&html);
    let assertion =
        m.sp.parse_base64_response(&response, Some(&[req.id.as_str()]))
            .unwrap();
    let name_id = assertion.subject.unwrap().name_id.unwrap().value;
    let statement = &assertion.authn_statements.unwrap()[0];
    // The SP's session may last as long as Sesame's, not longer.
    let session_end = statement.session_not_on_or_after.unwrap();
    assert!(session_end > chrono::Utc::now(), "{session_end}");
    let index = statement.session_index.clone().unwrap();
    (name_id, index)
}

/// Whether the browser's session still answers a fresh AuthnRequest from `m` without asking the
/// user to sign in.
async fn still_signed_in(b: &Browser, m: &Marketing) -> bool {
    let r = b
        .get(&format!(
            "{SSO}?{}",
            Marketing::redirect_query(&m.request(), "")
        ))
        .await;
    match r.status() {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => false,
        other => panic!("neither an answer nor a sign-in page: {other}"),
    }
}

/// A LogoutRequest from the SP registered as `entity`, in the Redirect binding, signed with `key`.
fn logout_query(
    entity: &str,
    name_id: &str,
    index: &str,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    relay: &str,
) -> String {
    let now = sesame::clock::Clock::now(&sesame::clock::SystemClock);
    let id = format!("_lo{}", sesame::crypto::secret::random_hex(8));
    let xml = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="http://127.0.0.1:8080/t/acme/saml/slo"><saml:Issuer>{entity}</saml:Issuer><saml:NameID>{name_id}</saml:NameID><samlp:SessionIndex>{index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        sesame::saml::response::instant(now)
    );
    signed_redirect("SAMLRequest", &xml, relay, key)
}

/// `xml` as `field` of a Redirect-binding query, signed with `key` (SAML Bindings §3.4.4.1).
fn signed_redirect(
    field: &str,
    xml: &str,
    relay: &str,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> String {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes()).unwrap();
    let mut q = format!(
        "{field}={}&RelayState={}&SigAlg={}",
        enc(&STANDARD.encode(e.finish().unwrap())),
        enc(relay),
        enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    );
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key).unwrap();
    let sig = signer.sign_oneshot_to_vec(q.as_bytes()).unwrap();
    q.push_str(&format!("&Signature={}", enc(&STANDARD.encode(sig))));
    q
}

/// The message carried by a Redirect-binding URL, inflated.
fn redirected(location: &str, field: &str) -> (String, std::collections::HashMap<String, String>) {
    let params: std::collections::HashMap<String, String> = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let xml = sesame::saml::request::inflate(&params[field], None).unwrap();
    (xml, params)
}

#[tokio::test]
async fn sp_initiated_logout_ends_the_session_and_reaches_the_other_sps() {
    let b = Browser::new(TestDb::sqlite()).await;
    // Marketing takes LogoutResponses at an endpoint of their own (ResponseLocation).
    let slo = |s: &mut SpSettings| {
        s.slo = Some(Endpoint {
            url: "https://marketing.acme.test/slo".into(),
            binding: sesame::saml::BINDING_REDIRECT.into(),
            index: None,
            is_default: false,
            response_url: Some("https://marketing.acme.test/slo/done".into()),
        });
    };
    let mut marketing_cert = String::new();
    let m = marketing(&b, |s, cert| {
        slo(s);
        marketing_cert = cert.to_string();
    })
    .await;
    let (name_id, index) = signed_in(&b, &m).await;
    let acme = TenantId::parse("acme").unwrap();
    // Unsigned, the right user's request is refused (Profiles §4.4.4.1): any page could send
    // it. The session lives on.
    let q = logout_query(SP_ENTITY, &name_id, &index, &m.key, "rs");
    let unsigned = q.split("&SigAlg=").next().unwrap();
    let r = b.get(&format!("/t/acme/saml/slo?{unsigned}")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("signature"));
    // Signed, but not naming where it was sent (Bindings §3.4.5.2): refused.
    let xml = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_nodest" Version="2.0" IssueInstant="{}"><saml:Issuer>{SP_ENTITY}</saml:Issuer><saml:NameID>{name_id}</saml:NameID><samlp:SessionIndex>{index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        sesame::saml::response::instant(b.t.app.now())
    );
    let q = signed_redirect("SAMLRequest", &xml, "rs", &m.key);
    let r = b.get(&format!("/t/acme/saml/slo?{q}")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Destination"));
    // Another SAML version (Core §4.1.2): VersionMismatch, and the session lives on. Expired
    // (NotOnOrAfter): refused as such.
    let now = sesame::saml::response::instant(b.t.app.now());
    let past = sesame::saml::response::instant(b.t.app.now().plus(-10));
    let soon = sesame::saml::response::instant(b.t.app.now().plus(60));
    let cases = [
        ("3.0", soon.as_str(), "_v3"),
        ("2.0", past.as_str(), "_late"),
        ("", soon.as_str(), "_noversion"),
    ];
    for (version, until, id) in cases {
        let version_attr = match version {
            "" => String::new(),
            v => format!(r#" Version="{v}""#),
        };
        let xml = format!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}"{version_attr} IssueInstant="{now}" NotOnOrAfter="{until}" Destination="http://127.0.0.1:8080/t/acme/saml/slo"><saml:Issuer>{SP_ENTITY}</saml:Issuer><saml:NameID>{name_id}</saml:NameID><samlp:SessionIndex>{index}</samlp:SessionIndex></samlp:LogoutRequest>"#
        );
        let q = signed_redirect("SAMLRequest", &xml, "rs", &m.key);
        let r = b.get(&format!("/t/acme/saml/slo?{q}")).await;
        match version {
            "3.0" => {
                assert_eq!(r.status(), StatusCode::SEE_OTHER);
                let location = r.headers()["location"].to_str().unwrap();
                let (xml, _) = redirected(location, "SAMLResponse");
                assert!(xml.contains("status:VersionMismatch"), "{xml}");
                assert!(xml.contains("status:RequestVersionTooHigh"), "{xml}");
            }
            "" => {
                assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                assert!(r.text().await.unwrap().contains("has no Version"));
            }
            _ => {
                assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                assert!(r.text().await.unwrap().contains("expired (NotOnOrAfter)"));
            }
        }
    }
    assert!(still_signed_in(&b, &m).await);
    // Another user's session: refused, and the session lives on.
    let q = logout_query(SP_ENTITY, "bob@acme.test", &index, &m.key, "rs");
    let r = b.get(&format!("/t/acme/saml/slo?{q}")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("https://marketing.acme.test/slo/done?SAMLResponse="));
    let (xml, _) = redirected(location, "SAMLResponse");
    assert!(xml.contains("status:RequestDenied"), "{xml}");
    assert!(
        xml.contains(r#"Destination="https://marketing.acme.test/slo/done""#),
        "{xml}"
    );
    let again = m.request();
    let r = b
        .get(&format!("{SSO}?{}", Marketing::redirect_query(&again, "")))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "still signed in");
    // A second SP joins the session (single sign-on, no page).
    let crm = ServiceProvider {
        id: "crm-saml".into(),
        entity_id: "https://crm.acme.test/saml".into(),
        name: "CRM".into(),
        app_id: None,
        settings: SpSettings {
            acs: vec![Endpoint {
                url: "https://crm.acme.test/acs".into(),
                binding: sesame::saml::BINDING_POST.into(),
                index: Some(0),
                is_default: true,
                response_url: None,
            }],
            slo: Some(Endpoint {
                url: "https://crm.acme.test/slo".into(),
                binding: sesame::saml::BINDING_REDIRECT.into(),
                index: None,
                is_default: false,
                response_url: None,
            }),
            // The test signs the CRM's answers with the marketing app's key.
            signing_certificates: vec![marketing_cert.clone()],
            ..SpSettings::default()
        },
    };
    let (t, now) = (acme.clone(), b.t.app.now());
    b.t.app
        .store
        .run(move |c| sps::save(c, &t, &crm, now))
        .await
        .unwrap();
    let mut crm_request = m.request();
    crm_request.issuer.as_mut().unwrap().value = Some("https://crm.acme.test/saml".into());
    crm_request.assertion_consumer_service_url = Some("https://crm.acme.test/acs".into());
    let r = b
        .get(&format!(
            "{SSO}?{}",
            Marketing::redirect_query(&crm_request, "")
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Each SP has its own SessionIndex for the session (Core §2.7.2: nothing to link users by).
    let crm_response = String::from_utf8(
        STANDARD
            .decode(hidden(&r.text().await.unwrap(), "SAMLResponse"))
            .unwrap(),
    )
    .unwrap();
    let crm_index = crm_response
        .split("SessionIndex=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(crm_index, index);

    // The right one: the session ends; the CRM is told first, then the marketing app answered.
    // Sent from a browser without Sesame's cookie (a POST from the SP's site carries none): the
    // session is found from the NameID and the marketing app's own SessionIndex.
    let q = logout_query(SP_ENTITY, &name_id, &index, &m.key, "rs-out");
    let r = b
        .other_client()
        .get(b.server.url(&format!("/t/acme/saml/slo?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_crm = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_crm.starts_with("https://crm.acme.test/slo?SAMLRequest="),
        "{to_crm}"
    );
    let (xml, params) = redirected(&to_crm, "SAMLRequest");
    let ours = sesame::saml::logout::parse(&xml, "LogoutRequest").unwrap();
    assert_eq!(ours.name_id.as_deref(), Some("alice@acme.test"));
    // The NameID as the CRM's assertion had it, qualifier included (Profiles §4.4.4.1).
    assert!(
        xml.contains(r#"SPNameQualifier="https://crm.acme.test/saml""#),
        "{xml}"
    );
    assert_eq!(ours.session_indexes, [crm_index]);
    // The session is over already, whatever the CRM answers.
    assert!(!still_signed_in(&b, &m).await);
    // The CRM answers; a forged answer (wrong InResponseTo, or unsigned) is refused first.
    // It could not end its own session (`Responder/UnknownPrincipal`): the walk goes on, and the
    // initiator hears that the logout was partial.
    let answer = |irt: &str| {
        let xml = sesame::saml::logout::response(
            "https://crm.acme.test/saml",
            "http://127.0.0.1:8080/t/acme/saml/slo",
            irt,
            Some(("Responder", "UnknownPrincipal")),
            sesame::clock::Clock::now(&sesame::clock::SystemClock),
        )
        .canonical();
        let q = signed_redirect("SAMLResponse", &xml, &params["RelayState"], &m.key);
        format!("/t/acme/saml/slo?{q}")
    };
    let r = b.get(&answer("_not_ours")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let signed = answer(&ours.id);
    let r = b.get(signed.split("&SigAlg=").next().unwrap()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "unsigned");
    let r = b.get(&answer(&ours.id)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("https://marketing.acme.test/slo/done?SAMLResponse="));
    let (xml, params) = redirected(&location, "SAMLResponse");
    assert!(xml.contains("status:Success"), "{xml}");
    assert!(xml.contains("status:PartialLogout"), "{xml}");
    assert_eq!(params["RelayState"], "rs-out");
    let ring = b.t.app.keyring(&acme).await.unwrap();
    let cert = STANDARD.encode(&ring.saml_key().unwrap().certificate);
    let query = location.split_once('?').unwrap().1;
    sesame::saml::signature::verify_redirect(query, "SAMLResponse", &[cert]).unwrap();
    // The walk's state was single-use.
    assert_eq!(
        b.get(&answer(&ours.id)).await.status(),
        StatusCode::BAD_REQUEST
    );
    // Replayed: refused.
    let r = b.get(&format!("/t/acme/saml/slo?{q}")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn signing_out_of_sesame_reaches_the_saml_sps_of_the_session() {
    let b = Browser::new(TestDb::sqlite()).await;
    let m = marketing(&b, |s, _| {
        s.slo = Some(Endpoint {
            url: "https://marketing.acme.test/slo".into(),
            binding: sesame::saml::BINDING_REDIRECT.into(),
            index: None,
            is_default: false,
            response_url: None,
        });
    })
    .await;
    let (name_id, _) = signed_in(&b, &m).await;
    // The account page's "Sign out" (RP-initiated logout without an app): confirmed by the user.
    // Browsers apply the page's form-action to the redirects after its form, so the SP's logout
    // endpoint is admitted there.
    let page = b.get("/t/acme/logout").await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' https://marketing.acme.test;"),
        "{csp}"
    );
    let page = page.text().await.unwrap();
    let r = b
        .post_form(
            "/t/acme/logout/confirm",
            &format!("csrf={}", enc(&hidden(&page, "csrf"))),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_sp = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_sp.starts_with("https://marketing.acme.test/slo?SAMLRequest="),
        "{to_sp}"
    );
    let (xml, params) = redirected(&to_sp, "SAMLRequest");
    let ours = sesame::saml::logout::parse(&xml, "LogoutRequest").unwrap();
    assert_eq!(ours.name_id, Some(name_id));
    // The SP answers; the walk ends on Sesame's "signed out" page.
    let answer = sesame::saml::logout::response(
        SP_ENTITY,
        "http://127.0.0.1:8080/t/acme/saml/slo",
        &ours.id,
        None,
        sesame::clock::Clock::now(&sesame::clock::SystemClock),
    )
    .canonical();
    // Unsigned over the POST binding: refused, and the walk can still be answered.
    let body = format!(
        "SAMLResponse={}&RelayState={}",
        enc(&STANDARD.encode(&answer)),
        enc(&params["RelayState"])
    );
    let r = b.post_form("/t/acme/saml/slo", &body).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let q = signed_redirect("SAMLResponse", &answer, &params["RelayState"], &m.key);
    let r = b.get(&format!("/t/acme/saml/slo?{q}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("signed out"));
    assert!(!still_signed_in(&b, &m).await, "signed out");
}

#[tokio::test]
async fn a_new_agreement_is_accepted_before_the_sp_hears_of_the_user() {
    let b = Browser::new(TestDb::sqlite()).await;
    let m = marketing(&b, |_, _| {}).await;
    signed_in(&b, &m).await;
    // The tenant publishes a new version of its agreement.
    let acme = TenantId::parse("acme").unwrap();
    let now = b.t.app.now();
    b.t.app
        .store
        .run_blocking(|c| {
            let mut spec = sesame::store::tenants::find(c, &acme)?.unwrap().spec();
            spec.settings = serde_json::json!({ "agreement_version": "2", "terms_text": "New." });
            sesame::store::tenants::update(c, &acme, &spec, now)
        })
        .unwrap();
    b.t.app.invalidate_caches();
    let ask = || async {
        let req = m.request();
        let r = b
            .get(&format!("{SSO}?{}", Marketing::redirect_query(&req, "rs")))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        (req, r.text().await.unwrap())
    };
    let form = |page: &str, decision: &str| {
        format!(
            "flow={}&csrf={}&decision={decision}&agree=yes",
            enc(&hidden(page, "flow")),
            enc(&hidden(page, "csrf"))
        )
    };
    // Declined: the SP is told the request was denied, and learns nothing of the user.
    let (_, page) = ask().await;
    assert!(
        !page.contains("SAMLResponse") && page.contains("decision"),
        "{page}"
    );
    let r = b
        .post_form("/t/acme/agreement", &form(&page, "decline"))
        .await;
    let (response, relay) = posted(&r.text().await.unwrap());
    assert_eq!(relay.as_deref(), Some("rs"));
    let xml = String::from_utf8(STANDARD.decode(response).unwrap()).unwrap();
    assert!(
        xml.contains("status:RequestDenied") && !xml.contains("alice"),
        "{xml}"
    );
    // Accepted: the assertion follows.
    let (req, page) = ask().await;
    let r = b
        .post_form("/t/acme/agreement", &form(&page, "accept"))
        .await;
    let (response, _) = posted(&r.text().await.unwrap());
    m.sp.parse_base64_response(&response, Some(&[req.id.as_str()]))
        .unwrap();
}

#[tokio::test]
async fn bad_logout_messages_get_a_page() {
    let b = Browser::new(TestDb::sqlite()).await;
    marketing(&b, |_, _| {}).await;
    let dtd = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1">&e;</samlp:LogoutRequest>"#;
    let unknown = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://evil.example.com</saml:Issuer></samlp:LogoutRequest>"#;
    for (what, q) in [
        ("neither", String::new()),
        ("base64", "SAMLRequest=%%%".to_string()),
        (
            "document type",
            format!("SAMLRequest={}", enc(&deflated(dtd))),
        ),
        (
            "unknown service provider",
            format!("SAMLRequest={}", enc(&deflated(unknown))),
        ),
        // An answer to no walk of Sesame's.
        (
            "RelayState is missing",
            format!(
                "SAMLResponse={}",
                enc(&deflated(
                    &unknown.replace("LogoutRequest", "LogoutResponse")
                ))
            ),
        ),
    ] {
        let r = b.get(&format!("/t/acme/saml/slo?{q}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains(what),
            "{what}: {}",
            text.split("<main").nth(1).unwrap_or(&text)
        );
        assert!(!text.contains("name=\"SAMLResponse\""));
    }
    // A LogoutRequest that is not signed, from an SP registered to sign: refused.
    marketing(&b, |s, _| s.want_requests_signed = true).await;
    let now = sesame::saml::response::instant(b.t.app.now());
    let unsigned = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_2" Version="2.0" IssueInstant="{now}"><saml:Issuer>{SP_ENTITY}</saml:Issuer><saml:NameID>alice@acme.test</saml:NameID></samlp:LogoutRequest>"#
    );
    let r = b
        .get(&format!(
            "/t/acme/saml/slo?SAMLRequest={}",
            enc(&deflated(&unsigned))
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("signature"));
}

#[tokio::test]
async fn a_logout_request_to_a_post_endpoint_carries_an_enveloped_signature() {
    let b = Browser::new(TestDb::sqlite()).await;
    let m = marketing(&b, |s, _| {
        s.slo = Some(Endpoint {
            url: "https://marketing.acme.test/slo".into(),
            binding: sesame::saml::BINDING_POST.into(),
            index: None,
            is_default: false,
            response_url: None,
        });
    })
    .await;
    let (name_id, index) = signed_in(&b, &m).await;
    let page = b.get("/t/acme/logout").await.text().await.unwrap();
    let r = b
        .post_form(
            "/t/acme/logout/confirm",
            &format!("csrf={}", enc(&hidden(&page, "csrf"))),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("action=\"https:&#x2f;&#x2f;marketing.acme.test&#x2f;slo\""),
        "{html}"
    );
    let xml = String::from_utf8(STANDARD.decode(hidden(&html, "SAMLRequest")).unwrap()).unwrap();
    // xmlsec verifies it with the certificate the metadata publishes.
    let acme = TenantId::parse("acme").unwrap();
    let ring = b.t.app.keyring(&acme).await.unwrap();
    let cert = STANDARD.encode(&ring.saml_key().unwrap().certificate);
    let signed = sesame::saml::signature::verify_post(&xml, &[cert]).unwrap();
    let ours = sesame::saml::logout::parse(&signed, "LogoutRequest").unwrap();
    assert_eq!(ours.name_id, Some(name_id));
    assert_eq!(ours.session_indexes, [index]);
    let tampered = xml.replace("alice@acme.test", "bob@acme.test");
    let again = STANDARD.encode(&ring.saml_key().unwrap().certificate);
    assert!(sesame::saml::signature::verify_post(&tampered, &[again]).is_err());
}

/// An SP that registered no logout endpoint cannot be answered, but its user asked to sign out:
/// the session ends, and the browser lands on Sesame's "signed out" page.
#[tokio::test]
async fn a_logout_request_from_an_sp_without_a_logout_endpoint_still_signs_out() {
    let b = Browser::new(TestDb::sqlite()).await;
    let m = marketing(&b, |_, _| {}).await;
    let (name_id, index) = signed_in(&b, &m).await;
    let q = logout_query(SP_ENTITY, &name_id, &index, &m.key, "rs");
    let r = b.get(&format!("/t/acme/saml/slo?{q}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("signed out"));
    assert!(!still_signed_in(&b, &m).await, "asked to sign in again");
}

/// A transient NameID is the same for every assertion of one session, so the SP's logout can
/// name whichever it kept, and another in the next session.
#[tokio::test]
async fn a_transient_name_id_lasts_its_session_and_the_logout_naming_it_finds_it() {
    let b = Browser::new(TestDb::sqlite()).await;
    let m = marketing(&b, |s, _| s.name_id = NameIdSource::Transient).await;
    let (first, index) = signed_in(&b, &m).await;
    let (again, same) = signed_in(&b, &m).await;
    assert_eq!(first, again, "one NameID for the session");
    assert_eq!(index, same, "through the same session");
    // From a browser without Sesame's cookie: only the NameID tells whose session it is.
    let q = logout_query(SP_ENTITY, &first, &index, &m.key, "rs");
    let r = b
        .other_client()
        .get(b.server.url(&format!("/t/acme/saml/slo?{q}")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("signed out"));
    assert!(!still_signed_in(&b, &m).await, "the session has ended");
    let (next, _) = signed_in(&b, &m).await;
    assert_ne!(next, first, "a new session, a new NameID");
}
