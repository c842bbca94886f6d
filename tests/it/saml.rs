//! The SAML IdP's metadata and signing certificate: published per tenant, rolled over through
//! the keyring like the OIDC keys.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::x509::X509;
use samael::metadata::EntityDescriptor;
use sesame::crypto::keys::KeyKind;
use sesame::tenant::TenantId;

use crate::support::{TestApp, TestDb, both_backends};

/// The signing certificates the metadata lists, in order, as DER.
fn certificates(xml: &str) -> Vec<Vec<u8>> {
    let parsed: EntityDescriptor = xml.parse().unwrap();
    parsed.idp_sso_descriptors.unwrap()[0]
        .key_descriptors
        .iter()
        .map(|k| {
            assert_eq!(k.key_use.as_deref(), Some("signing"));
            let b64 = &k.key_info.x509_data.as_ref().unwrap().certificates[0];
            STANDARD
                .decode(b64.split_whitespace().collect::<String>())
                .unwrap()
        })
        .collect()
}

both_backends!(
    the_metadata_publishes_the_signing_and_next_certificates,
    |db| {
        let t = TestApp::new(db).await;
        let r = t.get("/t/default/saml/metadata").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("application/samlmetadata+xml")
        );
        let xml = r.text();
        let parsed: EntityDescriptor = xml.parse().unwrap();
        let issuer = format!("{}/t/default", t.app.config.public_base());
        assert_eq!(
            parsed.entity_id.as_deref(),
            Some(format!("{issuer}/saml/metadata").as_str())
        );
        let certs = certificates(&xml);
        assert_eq!(certs.len(), 2, "the active certificate and the next one");
        let ring = t.app.keyring(&TenantId::default_tenant()).await.unwrap();
        let signing = ring.saml_key().unwrap();
        assert_eq!(
            certs[0], signing.certificate,
            "the signing certificate first"
        );
        let cert = X509::from_der(&certs[0]).unwrap();
        assert!(cert.public_key().unwrap().public_eq(signing.key()));
        assert_ne!(certs[0], certs[1]);
        // Private keys never appear.
        assert!(!xml.contains("PRIVATE"));
        assert_eq!(t.get("/t/nosuch/saml/metadata").await.status, 404);
    }
);

both_backends!(a_tenant_can_have_its_metadata_signed, |db| {
    let t = TestApp::new(db).await;
    t.import(
        "[[tenants]]\nid = \"acme\"\ndisplay_name = \"Acme\"\nsettings = { saml_sign_metadata = true }\n",
    )
    .await;
    let xml = t.get("/t/acme/saml/metadata").await.text();
    assert!(xml.contains("<ds:Signature"), "{xml}");
    assert!(xml.contains("validUntil="), "{xml}");
    // It verifies against the signing certificate it publishes (xmlsec, through samael).
    let signing = STANDARD.encode(&certificates(&xml)[0]);
    let covered = sesame::saml::signature::verify_post(&xml, &[signing]).unwrap();
    assert!(covered.contains("SingleSignOnService"));
    let parsed: EntityDescriptor = xml.parse().unwrap();
    assert!(parsed.idp_sso_descriptors.is_some());
    // Other tenants' metadata stays unsigned.
    let plain = t.get("/t/default/saml/metadata").await.text();
    assert!(!plain.contains("Signature"));
});

#[tokio::test]
async fn a_saml_rotation_signs_with_the_published_next_certificate() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let before = certificates(&t.get("/t/default/saml/metadata").await.text());
    let rotation = t.rotate_now(KeyKind::Saml).await;
    t.clock.advance(11);
    let after = certificates(&t.get("/t/default/saml/metadata").await.text());
    assert_eq!(
        after.len(),
        3,
        "active, next, and the retired one for a while"
    );
    assert_eq!(
        after[0], before[1],
        "the next certificate is the one that signs now"
    );
    assert_eq!(after[2], before[0], "the old one is still published, last");
    let ring = t.app.keyring(&TenantId::default_tenant()).await.unwrap();
    assert_eq!(ring.saml_key().unwrap().kid, rotation.activated);
    assert_eq!(ring.saml_key().unwrap().certificate, after[0]);
    // The JWKS is unchanged by a SAML rotation: SAML keys never appear there.
    let jwks = t.get("/t/default/jwks").await.json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("x5c").is_none())
    );
}

const SP_METADATA: &str = r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://marketing.example.com/saml">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="true">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>CERT</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://marketing.example.com/saml/slo"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://marketing.example.com/saml/acs" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#;

/// A throwaway certificate, base64 DER, for an SP's metadata.
fn sp_certificate() -> String {
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let der = sesame::crypto::cert::self_signed(
        &key,
        "marketing",
        sesame::clock::UnixTime(1_700_000_000),
    )
    .unwrap();
    STANDARD.encode(der)
}

/// A loopback HTTP server for the metadata fetch: `/metadata` answers `doc`, `/big` more than a
/// MiB, `/moved` a redirect, anything else 404. It lives as long as the test process.
fn metadata_server(doc: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request).to_string();
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, extra, body) = match path.as_str() {
                "/metadata" => ("200 OK", String::new(), doc.clone()),
                "/big" => ("200 OK", String::new(), "x".repeat(2 << 20)),
                "/moved" => (
                    "302 Found",
                    format!("Location: http://127.0.0.1:{port}/metadata\r\n"),
                    String::new(),
                ),
                _ => ("404 Not Found", String::new(), String::new()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
                body.len()
            );
        }
    });
    format!("127.0.0.1:{port}")
}

#[test]
fn metadata_is_fetched_by_url_only_where_the_tenant_allows() {
    let e = crate::cli::Env::new();
    e.ok(&["tenant", "add", "acme"]);
    let at = metadata_server(SP_METADATA.replace("CERT", &sp_certificate()));
    fn add(url: &str) -> [&str; 7] {
        [
            "sp",
            "add",
            "-t",
            "acme",
            "marketing",
            "--metadata-url",
            url,
        ]
    }
    // By default only public https addresses are fetched: nothing goes to the loopback server.
    let err = e.fails(&add(&format!("http://{at}/metadata")));
    assert!(err.contains("only https URLs"), "{err}");
    let err = e.fails(&add(&format!("https://{at}/metadata")));
    assert!(
        err.contains("not a public address") && err.contains("private_app_addresses"),
        "{err}"
    );
    let err = e.fails(&add("https://169.254.169.254/latest/meta-data"));
    assert!(err.contains("not a public address"), "{err}");
    // The tenant allows its own network.
    let file = e.dir.path().join("settings.toml");
    std::fs::write(
        &file,
        "[[tenants]]\nid = \"acme\"\ndisplay_name = \"Acme\"\nsettings = { private_app_addresses = true }\n",
    )
    .unwrap();
    e.ok(&["import", file.to_str().unwrap()]);
    for (path, why) in [
        ("/big", "larger than 1048576 bytes"),
        ("/moved", "redirects to"),
        ("/missing", "answered 404"),
    ] {
        let err = e.fails(&add(&format!("http://{at}{path}")));
        assert!(err.contains(why), "{path}: {err}");
    }
    assert!(!e.ok(&["sp", "list", "-t", "acme"]).contains("marketing"));
    let out = e.ok(&add(&format!("http://{at}/metadata")));
    assert!(
        out.contains("registered SP 'marketing'")
            && out.contains("https://marketing.example.com/saml/acs"),
        "{out}"
    );
    let err = e.fails(&[
        "sp",
        "add",
        "-t",
        "acme",
        "x",
        "--metadata",
        "f.xml",
        "--metadata-url",
        "https://a.example/",
    ]);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn service_providers_are_registered_from_metadata_or_fields_and_removed() {
    let e = crate::cli::Env::new();
    e.ok(&["tenant", "add", "acme"]);
    let file = e.dir.path().join("sp.xml");
    std::fs::write(&file, SP_METADATA.replace("CERT", &sp_certificate())).unwrap();
    let file = file.to_str().unwrap();
    let out = e.ok(&["sp", "add", "-t", "acme", "marketing", "--metadata", file]);
    assert!(
        out.contains("registered SP 'marketing'")
            && out.contains("https://marketing.example.com/saml/acs"),
        "{out}"
    );
    let list = e.ok(&["sp", "list", "-t", "acme"]);
    assert!(
        list.contains("marketing")
            && list.contains("persistent")
            && list.contains("required")
            && list.contains("300s")
            && list.contains("https://marketing.example.com/saml"),
        "{list}"
    );
    // The assertion lifetime is the registration's to choose, within bounds.
    let err = e.fails(&[
        "sp",
        "add",
        "-t",
        "acme",
        "marketing",
        "--metadata",
        file,
        "--assertion-lifetime",
        "5",
    ]);
    assert!(err.contains("30 to 3600 seconds"), "{err}");
    e.ok(&[
        "sp",
        "add",
        "-t",
        "acme",
        "marketing",
        "--metadata",
        file,
        "--assertion-lifetime",
        "600",
    ]);
    assert!(e.ok(&["sp", "list", "-t", "acme"]).contains("600s"));
    // Fields override the metadata; saving again replaces the registration.
    e.ok(&[
        "sp",
        "add",
        "-t",
        "acme",
        "marketing",
        "--metadata",
        file,
        "--name-id",
        "email",
        "--attribute",
        "mail=email",
        "--attribute",
        "groups=roles",
    ]);
    let list = e.ok(&["sp", "list", "-t", "acme"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(" email "), "{list}");
    // Another SP with the same entityID is a conflict.
    let err = e.fails(&["sp", "add", "-t", "acme", "copy", "--metadata", file]);
    assert!(err.contains("has this entityID"), "{err}");
    // By fields, with the mistakes an operator makes.
    let err = e.fails(&["sp", "add", "-t", "acme", "crm", "--entity-id", "urn:crm"]);
    assert!(err.contains("HTTP-POST"), "{err}");
    let err = e.fails(&[
        "sp",
        "add",
        "-t",
        "acme",
        "crm",
        "--entity-id",
        "urn:crm",
        "--acs",
        "http://crm.example.com/acs",
    ]);
    assert!(err.contains("use https"), "{err}");
    let err = e.fails(&[
        "sp",
        "add",
        "-t",
        "acme",
        "crm",
        "--entity-id",
        "urn:crm",
        "--acs",
        "https://crm.example.com/acs",
        "--attribute",
        "x=password_hash",
    ]);
    assert!(err.contains("one of email"), "{err}");
    let err = e.fails(&[
        "sp",
        "add",
        "-t",
        "acme",
        "crm",
        "--entity-id",
        "urn:crm",
        "--acs",
        "https://crm.example.com/acs",
        "--app",
        "nosuch",
    ]);
    assert!(err.contains("no app 'nosuch'"), "{err}");
    e.ok(&[
        "sp",
        "add",
        "-t",
        "acme",
        "crm",
        "--entity-id",
        "urn:crm",
        "--acs",
        "https://crm.example.com/acs",
        "--idp-initiated",
    ]);
    let hostile = e.dir.path().join("xxe.xml");
    std::fs::write(
        &hostile,
        r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&e;"/>"#,
    )
    .unwrap();
    let err = e.fails(&[
        "sp",
        "add",
        "-t",
        "acme",
        "evil",
        "--metadata",
        hostile.to_str().unwrap(),
    ]);
    assert!(err.contains("document type declaration"), "{err}");
    assert!(e.ok(&["audit", "-t", "acme"]).contains("sp.save"));
    e.ok(&["sp", "remove", "-t", "acme", "marketing"]);
    assert!(
        e.fails(&["sp", "remove", "-t", "acme", "marketing"])
            .contains("no SP 'marketing'")
    );
    let list = e.ok(&["sp", "list", "-t", "acme"]);
    assert!(
        list.contains("crm") && !list.contains("marketing"),
        "{list}"
    );
}

both_backends!(a_registration_round_trips_and_is_found_by_entity_id, |db| {
    use sesame::store::service_providers::{self as sps, ServiceProvider};
    let app = TestApp::new(db).await;
    let store = app.app.store.clone();
    let tenant = TenantId::default_tenant();
    let sesame::saml::registry::Described {
        entity_id,
        settings,
        ..
    } = sesame::saml::registry::from_metadata(&SP_METADATA.replace("CERT", &sp_certificate()))
        .unwrap();
    let sp = ServiceProvider {
        id: "marketing".into(),
        entity_id: entity_id.clone(),
        name: "Marketing".into(),
        app_id: None,
        settings,
    };
    let t = sesame::clock::UnixTime(1_700_000_000);
    store
        .run_blocking(|c| sps::save(c, &tenant, &sp, t))
        .unwrap();
    let found = store
        .run_blocking(|c| sps::find_by_entity_id(c, &tenant, &entity_id))
        .unwrap()
        .unwrap();
    assert_eq!(found, sp);
    assert!(
        store
            .run_blocking(|c| sps::find_by_entity_id(c, &tenant, "urn:other"))
            .unwrap()
            .is_none()
    );
    let mut copy = sp.clone();
    copy.id = "copy".into();
    let err = store
        .run_blocking(|c| sps::save(c, &tenant, &copy, t))
        .unwrap_err();
    assert!(err.to_string().contains("has this entityID"), "{err}");
});

both_backends!(the_import_file_registers_service_providers, |db| {
    let t = TestApp::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("marketing.xml"),
        SP_METADATA.replace("CERT", &sp_certificate()),
    )
    .unwrap();
    let file = dir.path().join("tenant.toml");
    let text = r#"
[[tenants]]
id = "acme"
display_name = "Acme"

[[tenants.apps]]
id = "marketing"
name = "Marketing"

[[tenants.service_providers]]
id = "marketing"
name = "Marketing"
app = "marketing"
metadata_file = "marketing.xml"
attributes = { "urn:oid:0.9.2342.19200300.100.1.3" = "email", groups = "roles" }
sign = "both"

[[tenants.service_providers]]
id = "wiki"
entity_id = "https://wiki.example.com/saml"
acs = ["https://wiki.example.com/saml/acs"]
slo = "https://wiki.example.com/saml/slo"
name_id = "persistent"
idp_initiated = true
"#;
    let name = file.to_str().unwrap();
    t.try_import(name, text).await.unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let listed = t
        .app
        .store
        .run(move |c| sesame::store::service_providers::list(c, &acme))
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let marketing = &listed[0];
    assert_eq!(marketing.entity_id, "https://marketing.example.com/saml");
    assert_eq!(marketing.app_id.as_deref(), Some("marketing"));
    assert!(marketing.settings.want_requests_signed, "from the metadata");
    assert_eq!(marketing.settings.attributes.len(), 2);
    let wiki = &listed[1];
    assert!(wiki.settings.idp_initiated);
    assert_eq!(
        wiki.settings.slo.as_ref().unwrap().url,
        "https://wiki.example.com/saml/slo"
    );
    // Applying the same file again changes nothing.
    let again = t.try_import(name, text).await.unwrap();
    assert_eq!((again.created, again.updated), (0, 0), "{again:?}");
    // A registration that cannot be served is refused with the file's line.
    let bad = text.replace(
        r#"acs = ["https://wiki.example.com/saml/acs"]"#,
        r#"acs = ["http://wiki.example.com/saml/acs"]"#,
    );
    let err = t.try_import(name, &bad).await.unwrap_err();
    assert!(err.contains(":19:") && err.contains("use https"), "{err}");
});
