//! OpenID Connect against openid-client, the npm relying-party library, driven through
//! `rp.mjs`: a client in another language, with its own discovery, PKCE, state, RFC 9207 `iss`,
//! ID token (signature included), UserInfo subject and token-response checks, all at their
//! defaults. It also authenticates a service client with `private_key_jwt` assertions of its own
//! making and builds the RP-initiated logout URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

use crate::support::{Database, Sesame, browser, query, sign_in_via};

const REDIRECT: &str = "http://127.0.0.1:3998/callback";
const HOME: &str = "http://127.0.0.1:3998/";

/// The service client's ES256 key (a test key, made for this suite): the public half is
/// registered by value, the whole key goes to `rp.mjs`, which signs its own assertions with it.
const SERVICE_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"X-ja0SyScGZ5_uieysg47YWZbE3QfBJuNBzzymr_Adw","y":"JqQ8G26BDlvPJqJ0I2lW6W9QPPygCAlwIamv9Ok06jk","d":"ZD7wuiaG-xf7IfYIpIFSt1oo7vdismtUptiaVTGmMec","kid":"rp-svc-1","alg":"ES256","use":"sig"}"#;

const SERVICE_CLIENT: &str = r#"
[[tenants.clients]]
client_id = "rp-svc"
auth_method = "private_key_jwt"
grant_types = ["client_credentials"]
allowed_scopes = ["reports:read"]
jwks = { keys = [ { kty = "EC", crv = "P-256", x = "X-ja0SyScGZ5_uieysg47YWZbE3QfBJuNBzzymr_Adw", y = "JqQ8G26BDlvPJqJ0I2lW6W9QPPygCAlwIamv9Ok06jk", kid = "rp-svc-1", alg = "ES256", use = "sig" } ] }
"#;

/// The folder holding `rp.mjs` and its installed `node_modules`; `None` when Node.js 20 or the
/// library is missing: a skip on a developer's machine, a failure in CI.
fn relying_party() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/oidc"));
    let node_major = Command::new("node")
        .args(["-p", "process.versions.node.split('.')[0]"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    let ready = node_major.is_some_and(|v| v >= 20)
        && dir
            .join("node_modules/openid-client/package.json")
            .is_file();
    if !ready {
        assert!(
            std::env::var("CI").is_err(),
            "Node.js 20+ or openid-client is missing: scripts/install-deps installs them"
        );
        eprintln!("skipped: Node.js 20+ or openid-client is missing (scripts/install-deps)");
        return None;
    }
    Some(dir)
}

/// The relying party's next line, or its error output if it stopped.
fn next_line(rp: &mut Child, out: &mut BufReader<ChildStdout>) -> Value {
    let mut line = String::new();
    tokio::task::block_in_place(|| out.read_line(&mut line)).unwrap();
    if line.is_empty() {
        let mut err = String::new();
        rp.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        panic!("openid-client refused: {err}");
    }
    serde_json::from_str(&line).unwrap()
}

/// Hands the relying party the URL the browser came back to the app with.
fn answer(rp: &mut Child, back: &str) {
    assert!(back.starts_with(REDIRECT), "{back}");
    writeln!(rp.stdin.as_mut().unwrap(), "{back}").unwrap();
}

/// Where a `303 See Other` answer to GET `url` sends the browser.
async fn redirect_of(browser: &reqwest::Client, url: &str) -> String {
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    r.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_from_npm_completes_every_flow() {
    let Some(dir) = relying_party() else {
        return;
    };
    let db = Database::sqlite();
    let tenant = super::tenant(REDIRECT) + SERVICE_CLIENT;
    let sesame = Sesame::start(&db, super::MASTER_KEY, Some(&tenant)).await;
    let issuer = sesame.issuer("acme");
    let mut rp = Command::new("node")
        .arg(dir.join("rp.mjs"))
        .args([&issuer, "crm-web", super::SECRET, REDIRECT, HOME])
        .env("RP_SVC_JWK", SERVICE_JWK)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(rp.stdout.take().unwrap());

    // The first authorization goes through the sign-in page.
    let asked = next_line(&mut rp, &mut out);
    let authorize = asked["authorize"].as_str().unwrap();
    assert!(authorize.starts_with(&format!("{issuer}/authorize?")));
    let browser = browser();
    let back = sign_in_via(&browser, authorize, &sesame.base, "alice").await;
    answer(&mut rp, &back);
    // The second finds the browser signed in: straight back to the app.
    let asked = next_line(&mut rp, &mut out);
    let back = redirect_of(&browser, asked["authorize"].as_str().unwrap()).await;
    answer(&mut rp, &back);
    // The third, `prompt=none`, from a browser with no session: an error back to the app.
    let asked = next_line(&mut rp, &mut out);
    let back = redirect_of(
        &crate::support::browser(),
        asked["authorize"].as_str().unwrap(),
    )
    .await;
    answer(&mut rp, &back);

    let done = next_line(&mut rp, &mut out);
    assert!(rp.wait().unwrap().success());
    let claims = &done["claims"];
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], "crm-web");
    assert_eq!(claims["email"], "alice@acme.test");
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(
        claims["acr"],
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    );
    assert_eq!(done["userinfo"]["sub"], claims["sub"]);
    assert_eq!(done["userinfo"]["preferred_username"], "alice");
    assert_eq!(done["passive"], "login_required");
    assert_eq!(done["reused"], "invalid_grant", "a rotated refresh token");
    assert_eq!(
        done["family"], "invalid_grant",
        "its family, after the reuse"
    );
    assert_eq!(done["refresh_active"], serde_json::json!([true, false]));
    assert_eq!(done["revoked"], "invalid_grant", "a revoked refresh token");
    assert_eq!(done["introspected"]["active"], true);
    assert_eq!(done["introspected"]["client_id"], "crm-web");
    assert_eq!(done["introspected"]["sub"], claims["sub"]);
    assert_eq!(
        done["service_scopes"],
        serde_json::json!(["reports:read", "reports:read"])
    );

    // The logout URL the library built ends the session and comes back with its state.
    let to = redirect_of(&browser, done["end_session"].as_str().unwrap()).await;
    assert!(to.starts_with(HOME), "{to}");
    assert_eq!(query(&to)["state"], "bye");
}
