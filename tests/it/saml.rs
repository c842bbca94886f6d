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
        assert!(cert.public_key().unwrap().public_eq(&signing.key));
        assert_ne!(certs[0], certs[1]);
        // Private keys never appear.
        assert!(!xml.contains("PRIVATE"));
        assert_eq!(t.get("/t/nosuch/saml/metadata").await.status, 404);
    }
);

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
