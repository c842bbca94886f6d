//! SAML 2.0 against a real `sesame serve`, with pysaml2 (from PyPI, installed by
//! `scripts/install-deps`) as the independent service provider: it writes the AuthnRequests and
//! judges the Responses with its own default checks, through the `xmlsec1` binary. `sp.py`
//! only configures it (endpoints, keys, the IdP's metadata, SHA-256 for its own signatures).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::oidc::{MASTER_KEY, tenant};
use crate::support::{Database, Sesame, browser, hidden, sign_in_page};

const SP_BASE: &str = "https://marketing.acme.test/saml";

/// pysaml2 as a command in a folder of its own (its key, certificate and the IdP's metadata).
struct PySp {
    dir: tempfile::TempDir,
}

impl PySp {
    /// `None` when pysaml2 is not installed: a skip on a developer's machine, a failure in CI.
    fn new() -> Option<PySp> {
        let present = Command::new("python3")
            .args(["-c", "import saml2"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            assert!(
                std::env::var("CI").is_err(),
                "pysaml2 is missing: scripts/install-deps installs it"
            );
            eprintln!("skipped: pysaml2 is not installed (scripts/install-deps installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let now = sesame::clock::Clock::now(&sesame::clock::SystemClock);
        let der = sesame::crypto::cert::self_signed(&key, "marketing", now).unwrap();
        let cert = openssl::x509::X509::from_der(&der).unwrap();
        std::fs::write(
            dir.path().join("key.pem"),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.to_pem().unwrap()).unwrap();
        Some(PySp { dir })
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.outcome(args, stdin);
        assert!(ok, "sp.py {args:?} failed: {err}");
        out
    }

    /// Whether `sp.py args` succeeded, with what it printed and its errors.
    fn outcome(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/saml/sp.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .env("SP_DIR", self.dir.path())
            .env("SP_BASE", SP_BASE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        serde_json::from_str(&self.run(args, stdin)).unwrap()
    }

    /// Gives pysaml2 the IdP's metadata and registers pysaml2's metadata with Sesame.
    async fn connect(&self, sesame: &Sesame, extra: &[&str]) {
        let idp = reqwest::get(format!("{}/saml/metadata", sesame.issuer("acme")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        std::fs::write(self.dir.path().join("idp.xml"), idp).unwrap();
        let metadata = self.dir.path().join("sp.xml");
        std::fs::write(&metadata, self.run(&["metadata"], None)).unwrap();
        let mut args = vec![
            "sp",
            "add",
            "-t",
            "acme",
            "marketing",
            "--metadata",
            metadata.to_str().unwrap(),
            "--app",
            "crm",
            // The attribute profile's OIDs (NameFormat uri) that pysaml2 maps by itself.
            "--attribute",
            "urn:oid:0.9.2342.19200300.100.1.3=email",
            "--attribute",
            "urn:oid:1.3.6.1.4.1.5923.1.5.1.1=roles",
            "--attribute",
            "urn:oid:2.16.840.1.113730.3.1.241=display_name",
        ];
        args.extend_from_slice(extra);
        sesame.cli(&args);
    }

    /// pysaml2's verdict on the auto-posting page `html` for request `id`.
    fn accept(&self, html: &str, id: &str) -> Value {
        let response = hidden(html, "SAMLResponse");
        self.json(&["accept", id], Some(&response))
    }
}

/// The Response an auto-posting page carries, as XML.
fn decoded(html: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(hidden(html, "SAMLResponse"))
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysaml2_accepts_sso_over_the_redirect_and_post_bindings() {
    let Some(sp) = PySp::new() else {
        return;
    };
    let db = Database::sqlite();
    let sesame = Sesame::start(
        &db,
        MASTER_KEY,
        Some(&tenant("http://127.0.0.1:3999/callback")),
    )
    .await;
    // pysaml2 wants the Response signed by default; the assertion is signed too.
    sp.connect(&sesame, &["--sign", "both"]).await;
    let idp_entity = format!("{}/saml/metadata", sesame.issuer("acme"));

    // HTTP-Redirect, signed by pysaml2 on the query string; the user signs in on the page.
    let request = sp.json(&["redirect", "rs-redirect"], None);
    let client = browser();
    let r = sign_in_page(
        &client,
        request["url"].as_str().unwrap(),
        &sesame.base,
        "alice",
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_eq!(hidden(&html, "RelayState"), "rs-redirect");
    // pysaml2's metadata carries an encryption key: the assertion travels encrypted (AES-256-GCM).
    let xml = decoded(&html);
    assert!(
        xml.contains("EncryptedAssertion") && xml.contains("aes256-gcm") && !xml.contains("Alice"),
        "{xml}"
    );
    let accepted = sp.accept(&html, request["id"].as_str().unwrap());
    assert_eq!(accepted["name_id"], "alice@acme.test");
    assert_eq!(
        accepted["name_id_format"],
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    );
    assert_eq!(accepted["issuer"], idp_entity.as_str());
    assert_eq!(accepted["in_response_to"], request["id"]);
    assert_eq!(
        accepted["attributes"]["mail"][0], "alice@acme.test",
        "{accepted}"
    );
    assert_eq!(accepted["attributes"]["isMemberOf"][0], "crm:rep");
    assert_eq!(accepted["attributes"]["displayName"][0], "Alice Liddell");
    assert_eq!(
        accepted["authn_class"],
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    );
    assert!(
        accepted["session_index"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    // HTTP-POST with an enveloped signature, answered from the SSO session without the page.
    let request = sp.json(&["post", "rs-post"], None);
    let r = client
        .post(request["action"].as_str().unwrap())
        .form(&[
            ("SAMLRequest", request["SAMLRequest"].as_str().unwrap()),
            ("RelayState", "rs-post"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_eq!(hidden(&html, "RelayState"), "rs-post");
    let accepted = sp.accept(&html, request["id"].as_str().unwrap());
    assert_eq!(accepted["name_id"], "alice@acme.test");

    // IdP-initiated: the "More Apps" tile, for an SP registered to allow it; and AES-128-CBC for
    // SP libraries that predate GCM.
    let cbc = [
        "--sign",
        "both",
        "--idp-initiated",
        "--encryption",
        "aes128-cbc",
    ];
    sp.connect(&sesame, &cbc).await;
    let r = client
        .get(format!(
            "{}/saml/launch/marketing?RelayState=%2Fcampaigns",
            sesame.issuer("acme")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_eq!(hidden(&html, "RelayState"), "/campaigns");
    assert!(decoded(&html).contains("xmlenc#aes128-cbc"));
    let accepted = sp.json(
        &["accept-unsolicited"],
        Some(&hidden(&html, "SAMLResponse")),
    );
    assert_eq!(accepted["name_id"], "alice@acme.test");
    assert_eq!(accepted["in_response_to"], Value::Null);

    // SP-initiated Single Logout: pysaml2's signed LogoutRequest ends the session, and pysaml2
    // accepts Sesame's LogoutResponse.
    let logout = sp.json(
        &[
            "logout",
            "alice@acme.test",
            accepted["session_index"].as_str().unwrap(),
            "rs-logout",
        ],
        None,
    );
    let r = client
        .get(logout["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let back = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        back.as_str().starts_with(&format!("{SP_BASE}/slo?")),
        "{back}"
    );
    let q: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(q["RelayState"], "rs-logout");
    let answered = sp.json(&["logout-response"], Some(&q["SAMLResponse"]));
    assert_eq!(
        answered["status"],
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );
    assert_eq!(answered["in_response_to"], logout["id"]);
    // The session is over: the SP's next request meets the sign-in page.
    let request = sp.json(&["redirect", ""], None);
    let r = client
        .get(request["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed out");

    // pysaml2 refuses a Response for a request it did not make.
    let request = sp.json(&["redirect", ""], None);
    let r = sign_in_page(
        &client,
        request["url"].as_str().unwrap(),
        &sesame.base,
        "alice",
    )
    .await;
    let html = r.text().await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/saml/sp.py");
    let refused = Command::new("python3")
        .args([script, "accept", "id-not-ours"])
        .env("SP_DIR", sp.dir.path())
        .env("SP_BASE", SP_BASE)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(hidden(&html, "SAMLResponse").as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(
        !refused.success(),
        "a Response to another request must not be accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysaml2_verifies_the_signed_metadata() {
    let Some(sp) = PySp::new() else {
        return;
    };
    let db = Database::sqlite();
    let signed = tenant("http://127.0.0.1:3999/callback").replace(
        "display_name = \"Acme\"\n",
        "display_name = \"Acme\"\nsettings = { saml_sign_metadata = true }\n",
    );
    assert!(signed.contains("saml_sign_metadata"));
    let sesame = Sesame::start(&db, MASTER_KEY, Some(&signed)).await;
    let url = format!("{}/saml/metadata", sesame.issuer("acme"));
    let xml = reqwest::get(&url).await.unwrap().text().await.unwrap();
    // The signing certificate, as the SP would have been given it beforehand.
    let b64 = xml
        .split("<ds:X509Certificate>")
        .nth(1)
        .and_then(|rest| rest.split("</ds:X509Certificate>").next())
        .unwrap();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
    let pem = openssl::x509::X509::from_der(&der)
        .unwrap()
        .to_pem()
        .unwrap();
    let idp_cert = sp.dir.path().join("idp-cert.pem");
    std::fs::write(&idp_cert, pem).unwrap();
    let out = sp.run(&["check-metadata", &url, idp_cert.to_str().unwrap()], None);
    assert!(out.contains(&url), "pysaml2 loaded the IdP: {out}");
    // Checked against another certificate (the SP's own), the signature fails.
    let other = sp.dir.path().join("cert.pem");
    let (ok, _, err) = sp.outcome(&["check-metadata", &url, other.to_str().unwrap()], None);
    assert!(!ok, "a signature by another key must not verify");
    assert!(
        err.contains("SignatureError") || err.contains("signature"),
        "{err}"
    );
}

// pysaml2's RequestedAuthnContext: the class it asks for exactly comes back in the assertion it
// accepts; `minimum` of a class Sesame offers is met from the session; a class Sesame does not
// offer is a `NoAuthnContext` status, which pysaml2 refuses to take for a sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysaml2_gets_the_authentication_context_it_requests() {
    let Some(sp) = PySp::new() else {
        return;
    };
    const PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
    const KERBEROS: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos";
    let db = Database::sqlite();
    let sesame = Sesame::start(
        &db,
        MASTER_KEY,
        Some(&tenant("http://127.0.0.1:3999/callback")),
    )
    .await;
    sp.connect(&sesame, &["--sign", "both"]).await;
    let client = browser();
    let request = sp.json(&["redirect", "", PASSWORD, "exact"], None);
    let r = sign_in_page(
        &client,
        request["url"].as_str().unwrap(),
        &sesame.base,
        "alice",
    )
    .await;
    let html = r.text().await.unwrap();
    let accepted = sp.accept(&html, request["id"].as_str().unwrap());
    assert_eq!(accepted["authn_class"], PASSWORD);

    let answered = |request: Value| {
        let client = client.clone();
        async move {
            let r = client
                .get(request["url"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "answered from the session");
            r.text().await.unwrap()
        }
    };
    let request = sp.json(&["redirect", "", PASSWORD, "minimum"], None);
    let html = answered(request.clone()).await;
    let accepted = sp.accept(&html, request["id"].as_str().unwrap());
    assert_eq!(accepted["authn_class"], PASSWORD);

    let request = sp.json(&["redirect", "", KERBEROS, "exact"], None);
    let html = answered(request.clone()).await;
    assert!(decoded(&html).contains("status:NoAuthnContext"));
    let response = hidden(&html, "SAMLResponse");
    let (ok, _, err) = sp.outcome(
        &["accept", request["id"].as_str().unwrap()],
        Some(&response),
    );
    assert!(!ok, "pysaml2 took a refusal for a sign-in");
    assert!(err.contains("NoAuthnContext"), "{err}");
}
