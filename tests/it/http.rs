//! HTTP surface: discovery, JWKS, tenant routing, operations endpoints, headers, and import.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Map, json};
use sesame::crypto::keys::{Alg, KeyKind};
use sesame::tenant::TenantId;

use crate::support::{TestApp, TestDb, TestServer, both_backends};

const ACME: &str = r#"
[[tenants]]
id = "acme"
display_name = "Acme"
hosts = ["login.acme.test"]

[[tenants.departments]]
id = "hq"
name = "HQ"

[[tenants.departments]]
id = "sales"
name = "Sales"
parent = "hq"

[[tenants.apps]]
id = "crm"
name = "CRM"
web_access = { departments = ["hq"], users = ["carol"] }
mobile_access = { everyone = true }
admins = ["carol"]

[[tenants.roles]]
id = "crm:rep"
name = "Rep"
app = "crm"

[[tenants.users]]
username = "carol"
email = "carol@acme.test"
phone = "+14155552671"
department = "sales"
roles = ["crm:rep"]
password = "correct horse battery"

[[tenants.clients]]
client_id = "crm-web"
app = "crm"
redirect_uris = ["https://crm.acme.test/callback"]
secret = "s3cret-s3cret-s3cret-s3cret-s3cret"
"#;

both_backends!(discovery_and_jwks_verify_a_signature_made_by_sesame, |db| {
    let t = TestApp::new(db).await;
    t.import(ACME).await;
    let d = t.get("/t/acme/.well-known/openid-configuration").await;
    assert_eq!(d.status, 200);
    assert!(d.header("cache-control").unwrap().contains("max-age"));
    let doc = d.json();
    assert_eq!(doc["issuer"], "http://127.0.0.1:8080/t/acme");
    assert_eq!(doc["jwks_uri"], "http://127.0.0.1:8080/t/acme/jwks");

    let j = t.get("/t/acme/jwks").await;
    assert_eq!(j.status, 200);
    assert_eq!(j.header("content-type"), Some("application/jwk-set+json"));
    assert!(
        j.header("cache-control")
            .unwrap()
            .starts_with("public, max-age=")
    );
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&j.body).unwrap();
    assert_eq!(set.keys.len(), 8, "active and next key for four algorithms");

    verify_signature_with_published_keys(&t, "acme").await;
});

#[tokio::test]
async fn default_tenant_exists_after_first_start() {
    let t = TestApp::new(TestDb::sqlite()).await;
    assert_eq!(
        t.get("/t/default/.well-known/openid-configuration")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn unknown_tenant_is_a_404_naming_it_as_json_or_page() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let r = t.get("/t/nosuch/jwks").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "tenant_not_found");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("nosuch")
    );
    let page = t
        .send(
            Request::get("/t/nosuch/.well-known/openid-configuration")
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, 404);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains("nosuch"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    // A malformed slug is refused the same way, and never echoed raw.
    let r = t.get("/t/%3Cscript%3E/jwks").await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("<script>"));
}

#[tokio::test]
async fn a_tenant_host_routes_to_the_tenant_with_its_own_issuer() {
    let t = TestApp::new(TestDb::sqlite()).await;
    t.import(ACME).await;
    let r = t
        .send(
            Request::get("/.well-known/openid-configuration")
                .header("host", "LOGIN.acme.test:9999")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The issuer keeps public_url's scheme and port, never the client's.
    assert_eq!(r.json()["issuer"], "http://login.acme.test:8080");
    let other = t
        .send(
            Request::get("/jwks")
                .header("host", "evil.test")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(other.status, 404);
    // Counted once, under the inner route.
    let metrics = t.get("/metrics").await.text();
    assert!(
        metrics.contains(r#"sesame_http_requests_total{method="GET",route="/.well-known/openid-configuration",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"route="unmatched",status="200""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn operations_endpoints_and_headers() {
    let t = TestApp::with_config(TestDb::sqlite(), |c| {
        c.public_url = "https://id.example.com".into()
    })
    .await;
    let h = t.get("/healthz").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(h.header("referrer-policy"), Some("no-referrer"));
    assert!(
        h.header("strict-transport-security")
            .unwrap()
            .contains("max-age=")
    );
    assert!(h.header("x-request-id").is_some());
    // Pages turn off the powerful features none of them uses.
    let page = t.get("/t/default/legal/terms").await;
    assert!(
        page.header("permissions-policy")
            .is_some_and(|p| p.contains("camera=()") && p.contains("geolocation=()")),
        "{:?}",
        page.header("permissions-policy")
    );
    assert_eq!(t.get("/readyz").await.json()["status"], "ready");
    t.get("/t/default/jwks").await;
    let m = t.get("/metrics").await;
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(
        text.contains(r#"sesame_http_requests_total{method="GET",route="/jwks",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("sesame_db_pool_max_connections 4"), "{text}");
    assert!(text.contains("sesame_http_request_duration_seconds_bucket"));
    // Random paths are counted under one label, not one each.
    t.get("/random/a").await;
    t.get("/random/b").await;
    let text = t.get("/metrics").await.text();
    assert!(!text.contains("/random/"), "{text}");
}

#[tokio::test]
async fn oversized_bodies_and_unknown_paths_are_refused() {
    let t = TestApp::with_config(TestDb::sqlite(), |c| c.http.max_body_bytes = 2048).await;
    for uri in ["/t/default/jwks", "/healthz", "/anything"] {
        let r = t
            .send(
                Request::post(uri)
                    .header("content-length", "10000")
                    .body(Body::from(vec![b'a'; 10_000]))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, 413, "{uri}");
        assert_framed(&r);
    }
    // A body without Content-Length (chunked) is cut off as it is read, with the same answer.
    let r = t
        .send(
            Request::post("/t/default/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(vec![b'a'; 10_000]))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "invalid_request");
    for uri in [
        "/nothing/here",
        "/t/default/nothing",
        "/favicon.ico",
        "/t/",
        "/t/Nope/jwks",
    ] {
        let r = t.get(uri).await;
        assert_eq!(r.status, 404);
        assert_framed(&r);
    }
    let r = t
        .send(
            Request::post("/t/default/jwks")
                .body(Body::from("x"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 405);
    assert_framed(&r);
}

/// Every endpoint that reads a body refuses one over the limit with 413, announced or not, and
/// never a 500: OAuth endpoints in RFC 6749 §5.2 JSON, pages as a page.
#[tokio::test]
async fn every_form_and_protocol_endpoint_refuses_an_oversized_body() {
    let t = TestApp::with_config(TestDb::sqlite(), |c| c.http.max_body_bytes = 2048).await;
    let oauth = ["token", "introspect", "revoke"];
    let endpoints = [
        "token",
        "introspect",
        "revoke",
        "userinfo",
        "authorize",
        "consent",
        "login",
        "login/password",
        "login/code/send",
        "login/code",
        "agreement",
        "forgot-password",
        "forgot-password/code",
        "reset-password",
        "logout",
        "logout/confirm",
        "account/profile",
        "account/password",
        "account/contact",
        "account/contact/confirm",
        "account/sessions/end",
        "account/consents/revoke",
        "saml/sso",
        "saml/slo",
    ];
    let body = || {
        let mut b = b"a=".to_vec();
        b.extend(vec![b'a'; 10_000]);
        b
    };
    for endpoint in endpoints {
        let uri = format!("/t/default/{endpoint}");
        for announced in [true, false] {
            let mut req = Request::post(&uri)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "text/html");
            if announced {
                req = req.header("content-length", "10002");
            }
            let r = t.send(req.body(Body::from(body())).unwrap()).await;
            assert_eq!(
                r.status,
                413,
                "{uri} (announced: {announced}): {}",
                r.text()
            );
            assert_framed(&r);
            if oauth.contains(&endpoint) {
                assert_eq!(r.json()["error"], "invalid_request", "{uri}");
            } else if endpoint != "userinfo" {
                // A browser's form gets a page, even one whose path ends like an OAuth endpoint.
                let content_type = r.header("content-type").unwrap_or("");
                assert!(
                    content_type.starts_with("text/html"),
                    "{uri}: {content_type}"
                );
            }
        }
    }
}

/// A rendered error replaces the body; the header announcing the old one's length must go too
/// (hyper would send a truncated body, or panic in debug builds).
fn assert_framed(r: &crate::support::TestResponse) {
    if let Some(len) = r.header("content-length") {
        assert_eq!(len.parse::<usize>().unwrap(), r.body.len(), "{}", r.text());
    }
}

#[tokio::test]
async fn serves_https_when_tls_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let t = TestApp::with_config(TestDb::sqlite(), |c| {
        c.public_url = "https://localhost".into()
    })
    .await;
    let tls = sesame::server::tls_config(&cert_path, &key_path)
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sesame::server::run(
        listener,
        t.router.clone(),
        Some(tls),
        async {
            let _ = rx.await;
        },
        std::time::Duration::from_secs(1),
    ));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{port}/t/default/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "no plain HTTP on the TLS port"
    );
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    let bad = sesame::server::tls_config(&key_path, &cert_path)
        .await
        .unwrap_err()
        .to_string();
    assert!(bad.contains("tls.cert"), "{bad}");
}

#[tokio::test]
async fn demo_seed_gives_a_working_tenant_and_password() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let seeded = sesame::demo::seed(&t.app).await.unwrap();
    let again = sesame::demo::seed(&t.app).await.unwrap();
    assert_ne!(
        seeded.password, again.password,
        "a new password at every start"
    );
    let demo = TenantId::parse("demo").unwrap();
    let (hash, apps, clients, depts) = t
        .app
        .store
        .run(move |c| {
            let login = sesame::account::Login::parse("demo", None).unwrap();
            let user = sesame::store::users::find_by_login(c, &demo, &login)?.unwrap();
            Ok((
                sesame::store::users::password_hash(c, &demo, &user.id)?.unwrap(),
                sesame::store::apps::list_ids(c, &demo)?,
                sesame::store::clients::list(c, &demo)?,
                sesame::store::departments::list(c, &demo)?,
            ))
        })
        .await
        .unwrap();
    assert!(t.app.hasher.verify_blocking(&hash, &again.password));
    assert!(!t.app.hasher.verify_blocking(&hash, &seeded.password));
    assert_eq!(apps, vec!["crm", "marketing"]);
    assert!(
        clients
            .iter()
            .any(|c| c.client_id == "crm-web" && c.app_id.as_deref() == Some("crm"))
    );
    assert!(
        depts
            .iter()
            .any(|d| d.parent_id.as_deref() == Some("sales")),
        "a department tree"
    );
    verify_signature_with_published_keys(&t, "demo").await;
}

/// Fetches discovery and JWKS over the router, signs with sesame's keyring, and verifies the
/// result with an independent JWT library using only what was published.
async fn verify_signature_with_published_keys(t: &TestApp, tenant: &str) {
    let doc = t
        .get(&format!("/t/{tenant}/.well-known/openid-configuration"))
        .await
        .json();
    let issuer = doc["issuer"].as_str().unwrap().to_string();
    let jwks_path = doc["jwks_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:8080")
        .to_string();
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&t.get(&jwks_path).await.body).unwrap();
    let ring = t
        .app
        .keyring(&TenantId::parse(tenant).unwrap())
        .await
        .unwrap();
    for (alg, jalg) in [
        (Alg::RS256, jsonwebtoken::Algorithm::RS256),
        (Alg::PS256, jsonwebtoken::Algorithm::PS256),
        (Alg::ES256, jsonwebtoken::Algorithm::ES256),
        (Alg::EdDSA, jsonwebtoken::Algorithm::EdDSA),
    ] {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(issuer));
        claims.insert("sub".into(), json!("someone"));
        claims.insert("aud".into(), json!("crm-web"));
        claims.insert("exp".into(), json!(4_000_000_000i64));
        let token = ring.sign(alg, "JWT", claims).unwrap();
        let kid = jsonwebtoken::decode_header(&token)
            .unwrap()
            .kid
            .expect("kid in header");
        let jwk = set.find(&kid).expect("signing key is published");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(jalg);
        v.set_audience(&["crm-web"]);
        v.set_issuer(&[issuer.as_str()]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).unwrap();
        assert_eq!(data.claims["sub"], "someone");
        // A tampered token does not verify.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(jsonwebtoken::decode::<serde_json::Value>(&parts.join("."), &key, &v).is_err());
    }
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    use axum::routing::get;
    let gate = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(tokio::sync::Notify::new());
    let (g, e) = (gate.clone(), entered.clone());
    let router = axum::Router::new().route(
        "/slow",
        get(move || {
            let (g, e) = (g.clone(), e.clone());
            async move {
                e.notify_one();
                g.notified().await;
                "finished"
            }
        }),
    );
    let mut server = TestServer::start(router, std::time::Duration::from_secs(10));
    let client = server.client.clone();
    let url = server.url("/slow");
    let in_flight =
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() });
    entered.notified().await;
    server.shutdown();
    tokio::task::yield_now().await;
    gate.notify_one();
    assert_eq!(in_flight.await.unwrap(), "finished");
    let task = server.task.take().unwrap();
    task.await.unwrap().unwrap();
    assert!(
        reqwest::get(server.url("/slow")).await.is_err(),
        "no new connections after shutdown"
    );
}

both_backends!(import_is_idempotent_and_complete, |db| {
    let t = TestApp::new(db).await;
    let first = t.import(ACME).await;
    assert_eq!(first.created, 7, "{first:?}");
    let second = t.import(ACME).await;
    assert_eq!((second.created, second.updated), (0, 0), "{second:?}");
    assert_eq!(second.unchanged, 7);
    let acme = TenantId::parse("acme").unwrap();
    let tid = acme.clone();
    let (user, roles, app, client, hash) = t
        .app
        .store
        .run(move |c| {
            let login = sesame::account::Login::parse("carol", None).unwrap();
            let user = sesame::store::users::find_by_login(c, &tid, &login)?.unwrap();
            let roles = sesame::store::roles::of_user(c, &tid, &user.id)?;
            let app = sesame::store::apps::find(c, &tid, "crm")?.unwrap();
            let client = sesame::store::clients::find(c, &tid, "crm-web")?.unwrap();
            let hash = sesame::store::users::password_hash(c, &tid, &user.id)?.unwrap();
            Ok((user, roles, app, client, hash))
        })
        .await
        .unwrap();
    assert_eq!(user.profile.phone.unwrap().as_str(), "+14155552671");
    assert_eq!(roles, vec!["crm:rep"]);
    assert_eq!(app.web_access.departments, vec!["hq"]);
    assert_eq!(app.web_access.users, vec![user.id.clone()]);
    assert!(app.mobile_access.everyone);
    assert_eq!(app.admins, vec![user.id.clone()]);
    let stored = client.secret_hash.unwrap();
    assert!(
        t.app
            .client_secrets
            .matches(&stored, "s3cret-s3cret-s3cret-s3cret-s3cret"),
        "keyed digest"
    );
    assert_ne!(
        stored,
        sesame::crypto::secret::TokenHash::of("s3cret-s3cret-s3cret-s3cret-s3cret")
    );
    assert!(hash.starts_with("$argon2id$"), "password stored hashed");
    assert!(t.app.hasher.verify_blocking(&hash, "correct horse battery"));
    // Changing one field updates exactly that record.
    let third = t
        .import(&ACME.replace("name = \"Rep\"", "name = \"Sales rep\""))
        .await;
    assert_eq!((third.created, third.updated), (0, 1), "{third:?}");
});

both_backends!(a_bad_import_names_the_line_and_changes_nothing, |db| {
    let t = TestApp::new(db).await;
    let bad = ACME.replace("department = \"sales\"", "department = \"salse\"");
    let line = bad.lines().position(|l| l.contains("salse")).unwrap() + 1;
    let err = t.try_import("people.toml", &bad).await.unwrap_err();
    assert_eq!(
        err,
        format!("people.toml:{line}: department 'salse' does not exist")
    );
    let tenants = t.app.store.run(sesame::store::tenants::list).await.unwrap();
    assert!(
        tenants.iter().all(|x| x.id.as_str() != "acme"),
        "nothing was applied"
    );

    // A syntax error and an unknown key are named too.
    for (text, expect) in [
        ("[[tenants]\nid = 1", "test.toml:1"),
        (
            "[[tenants]]\nid = \"x\"\ndisplay_name = \"X\"\ncolour = 1\n",
            "test.toml:4",
        ),
    ] {
        let err = t.try_import("test.toml", text).await.unwrap_err();
        assert!(err.starts_with(expect), "{err}");
    }
    // A duplicate email against an existing user rolls back everything else in the file.
    t.import(ACME).await;
    let clash = r#"
[[tenants]]
id = "acme"
display_name = "Acme renamed"

[[tenants.users]]
username = "dave"
email = "carol@acme.test"
"#;
    let err = t.try_import("x.toml", clash).await.unwrap_err();
    assert!(
        err.starts_with("x.toml:7: this email is already used"),
        "{err}"
    );
    let acme = t
        .app
        .store
        .run(|c| sesame::store::tenants::find(c, &TenantId::parse("acme").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        acme.display_name, "Acme",
        "the rename in the same file was rolled back"
    );
});

#[tokio::test]
async fn another_nodes_key_rotation_is_served_within_the_cache_ttl() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let before = t.get("/t/default/jwks").await.json();
    // Rotate behind this node's back, as another node would.
    let rotation = t.rotate_now(KeyKind::Jws(Alg::ES256)).await;
    assert_eq!(
        t.get("/t/default/jwks").await.json(),
        before,
        "served from the cache"
    );
    t.clock.advance(11);
    let after = t.get("/t/default/jwks").await.json();
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&rotation.next.as_str()),
        "new next key published after the TTL"
    );
    let ring = t.app.keyring(&TenantId::default_tenant()).await.unwrap();
    assert_eq!(ring.active(Alg::ES256).unwrap().kid, rotation.activated);
}

both_backends!(
    import_keeps_what_an_entry_leaves_out_and_handles_moves,
    |db| {
        let t = TestApp::new(db).await;
        t.import(ACME).await;
        let acme = TenantId::parse("acme").unwrap();
        let carol = |t: &TestApp| {
            let acme = acme.clone();
            let store = t.app.store.clone();
            async move {
                store
                    .run(move |c| {
                        let login = sesame::account::Login::parse("carol@acme.test", None).unwrap();
                        Ok(sesame::store::users::find_by_login(c, &acme, &login)?.unwrap())
                    })
                    .await
                    .unwrap()
            }
        };
        let before = carol(&t).await;
        // Matched by email; username, phone, department are not repeated and must survive.
        let partial = r#"
[[tenants]]
id = "acme"
display_name = "Acme"
hosts = ["login.acme.test"]

[[tenants.users]]
email = "carol@acme.test"
must_change_password = true
"#;
        let r = t.import(partial).await;
        assert_eq!((r.created, r.updated), (0, 1), "{r:?}");
        let after = carol(&t).await;
        assert_eq!(after.profile, before.profile, "identifiers and fields kept");
        assert!(after.must_change_password);
        assert_eq!(
            after.password_changed_at, before.password_changed_at,
            "the password did not change"
        );

        // Two spellings of one identifier are one user, reported as a duplicate.
        let twice = "[[tenants]]\nid = \"acme\"\ndisplay_name = \"Acme\"\n\n[[tenants.users]]\nusername = \"Zed\"\n\n[[tenants.users]]\nusername = \"zed\"\n";
        let err = t.try_import("d.toml", twice).await.unwrap_err();
        assert_eq!(err, "d.toml:9: username 'zed' is declared twice");
        let phones = "[[tenants]]\nid = \"acme\"\ndisplay_name = \"Acme\"\n\n[[tenants.users]]\nphone = \"+1 415 555 2671\"\n\n[[tenants.users]]\nphone = \"+14155552671\"\n";
        assert!(
            t.try_import("p.toml", phones)
                .await
                .unwrap_err()
                .contains("declared twice")
        );

        // Swapping parent and child in one file is a valid move, applied in steps.
        let swap = r#"
[[tenants]]
id = "acme"
display_name = "Acme"
hosts = ["login.acme.test"]

[[tenants.departments]]
id = "hq"
name = "HQ"
parent = "sales"

[[tenants.departments]]
id = "sales"
name = "Sales"
"#;
        t.import(swap).await;
        let depts = t
            .app
            .store
            .run(move |c| sesame::store::departments::list(c, &TenantId::parse("acme").unwrap()))
            .await
            .unwrap();
        assert!(
            depts
                .iter()
                .any(|d| d.id == "hq" && d.parent_id.as_deref() == Some("sales"))
        );
        assert!(
            depts
                .iter()
                .any(|d| d.id == "sales" && d.parent_id.is_none())
        );
        // A real cycle is refused.
        let cycle = swap.replace("name = \"Sales\"\n", "name = \"Sales\"\nparent = \"hq\"\n");
        assert!(
            t.try_import("c.toml", &cycle)
                .await
                .unwrap_err()
                .contains("cycle")
        );
    }
);

#[tokio::test]
async fn import_refuses_weak_client_secrets_and_oversized_hashes() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let weak = "[[tenants]]\nid = \"acme\"\ndisplay_name = \"Acme\"\n\n[[tenants.clients]]\nclient_id = \"c\"\nredirect_uris = [\"https://c.test/cb\"]\nsecret = \"short\"\n";
    let err = t.try_import("w.toml", weak).await.unwrap_err();
    assert!(
        err.starts_with("w.toml:6:") && err.contains("at least 32"),
        "{err}"
    );
    let huge = "[[tenants]]\nid = \"acme\"\ndisplay_name = \"Acme\"\n\n[[tenants.users]]\nusername = \"x\"\npassword_hash = \"$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A\"\n";
    let err = t.try_import("h.toml", huge).await.unwrap_err();
    assert!(err.contains("costs more"), "{err}");
    // Secrets never show in Debug output of what was parsed or reported.
    let file: sesame::admin::import::ImportFile =
        toml::from_str("[[tenants]]\nid = \"a\"\ndisplay_name = \"A\"\n[[tenants.users]]\nusername = \"u\"\npassword = \"hunter2-hunter2\"\n").unwrap();
    assert!(!format!("{file:?}").contains("hunter2"));
}

#[tokio::test]
async fn malformed_paths_methods_and_headers_never_500() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let long = "a".repeat(10_000);
    for uri in [
        format!("/t/{long}/jwks"),
        "/t/%00/jwks".to_string(),
        "/t/%FF%FE/jwks".to_string(),
        "/t/../jwks".to_string(),
        "/t//jwks".to_string(),
        "/t/default/jwks/../../metrics".to_string(),
        "/t/default/.well-known/openid-configuration?x=%ZZ".to_string(),
    ] {
        let r = t.get(&uri).await;
        assert!(r.status < 500, "{uri} gave {}", r.status);
        assert!(
            !r.text()
                .contains("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            "echoed: {uri}"
        );
    }
    let head = t
        .send(
            Request::head("/t/default/jwks")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for method in ["PUT", "DELETE", "PATCH"] {
        let r = t
            .send(
                Request::builder()
                    .method(method)
                    .uri("/t/default/jwks")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, 405, "{method}");
    }
    // A hostile Host header neither routes nor breaks anything.
    for host in ["", "a b", "evil.test:99999", &"x.".repeat(200)] {
        let r = t
            .send(
                Request::get("/jwks")
                    .header("host", host)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, 404, "{host:?}");
    }
}

// A keyring load decrypts and parses every key: requests that find it expired share one load,
// and in the TTL's last seconds one request reloads it while the others use the current one.
#[tokio::test]
async fn concurrent_requests_share_one_keyring_load() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let tenant = TenantId::default_tenant();
    let builds = || t.app.metrics.keyring_builds();
    let load_all = || async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (app, tenant) = (t.app.clone(), tenant.clone());
            set.spawn(async move { app.keyring(&tenant).await.unwrap() });
        }
        set.join_all().await
    };
    let before = builds();
    let rings = load_all().await;
    assert_eq!(builds(), before + 1, "one build for all sixteen");
    assert!(rings.iter().all(|r| Arc::ptr_eq(r, &rings[0])));
    // A key rotated behind this node's back: the callers that find the keyring expired wait for
    // one build of the new one.
    t.rotate_now(KeyKind::Jws(Alg::ES256)).await;
    t.clock.advance(sesame::app::CACHE_TTL_SECS);
    let rotated = load_all().await;
    assert_eq!(builds(), before + 2, "one build after the rotation");
    assert!(rotated.iter().all(|r| Arc::ptr_eq(r, &rotated[0])));
    assert!(!Arc::ptr_eq(&rotated[0], &rings[0]));
    // Rotated again, and the TTL nearly over: one caller rebuilds it while the others go on with
    // the current keyring; the next caller gets the rebuilt one.
    t.rotate_now(KeyKind::Jws(Alg::ES256)).await;
    t.clock.advance(sesame::app::CACHE_TTL_SECS - 1);
    let near_end = load_all().await;
    assert_eq!(builds(), before + 3, "one rebuild before the TTL ended");
    let next = t.app.keyring(&tenant).await.unwrap();
    assert!(!Arc::ptr_eq(&next, &rotated[0]), "the rebuild is kept");
    assert!(
        near_end
            .iter()
            .all(|r| Arc::ptr_eq(r, &rotated[0]) || Arc::ptr_eq(r, &next))
    );
}

/// The TTL is there to notice rotations made elsewhere: a reload that finds the same keys keeps
/// the keyring (and the tokens it has verified) instead of parsing every key again.
#[tokio::test]
async fn a_reload_that_finds_the_same_keys_keeps_the_keyring() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let tenant = TenantId::default_tenant();
    let first = t.app.keyring(&tenant).await.unwrap();
    let builds = t.app.metrics.keyring_builds();
    for advance in [
        sesame::app::CACHE_TTL_SECS - 1,
        sesame::app::CACHE_TTL_SECS * 3,
    ] {
        t.clock.advance(advance);
        let again = t.app.keyring(&tenant).await.unwrap();
        assert!(Arc::ptr_eq(&again, &first), "kept after {advance} s");
    }
    assert_eq!(
        t.app.metrics.keyring_builds(),
        builds,
        "nothing parsed again"
    );
    // A retired key drops out of the JWKS when its grace period ends, with no write to notice:
    // the keyring is rebuilt for that too.
    let rotation = t.rotate_now(KeyKind::Jws(Alg::ES256)).await;
    let retired = rotation.retired.expect("an active key was retired");
    t.clock.advance(sesame::app::CACHE_TTL_SECS);
    let rotated = t.app.keyring(&tenant).await.unwrap();
    let kids = |ring: &sesame::crypto::keys::Keyring| -> Vec<String> {
        ring.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(kids(&rotated).contains(&retired));
    assert!(kids(&rotated).contains(&rotation.next));
    t.clock.advance(600);
    let after_grace = t.app.keyring(&tenant).await.unwrap();
    assert!(!Arc::ptr_eq(&after_grace, &rotated));
    assert!(!kids(&after_grace).contains(&retired));
    assert_eq!(t.app.metrics.keyring_builds(), builds + 2);
}

/// Sends `raw` over one TCP connection to `server` and returns what comes back.
async fn raw_exchange(server: &TestServer, raw: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn an_http11_request_without_host_is_refused() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let server = TestServer::start(t.router.clone(), std::time::Duration::from_secs(1));
    const PATH: &str = "/t/default/.well-known/openid-configuration";
    // RFC 9112 §3.2.
    let answer = raw_exchange(
        &server,
        &format!("GET {PATH} HTTP/1.1\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
    // With Host it is served; HTTP/1.0 has no Host requirement.
    let answer = raw_exchange(
        &server,
        &format!("GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = raw_exchange(&server, &format!("GET {PATH} HTTP/1.0\r\n\r\n")).await;
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
}

#[tokio::test]
async fn an_unreadable_path_is_refused_in_the_usual_shape() {
    let t = TestApp::new(TestDb::sqlite()).await;
    // A path segment that is not UTF-8: the framework's refusal, rendered as every other error.
    let r = t.get("/t/default/saml/launch/%ff").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request", "{}", r.text());
    assert!(!r.text().contains("`sp`"), "{}", r.text());
    let r = t
        .send(
            Request::get("/t/default/saml/launch/%ff")
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("cannot be read"), "{}", r.text());
}

// An import states what it gives: hosts left out stay, and settings outside their rules are
// refused with the key named, not dropped for their defaults at run time.
#[tokio::test]
async fn import_keeps_hosts_left_out_and_refuses_settings_outside_their_rules() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let tenant = |extra: &str| format!("[[tenants]]\nid = \"hx\"\ndisplay_name = \"HX\"\n{extra}");
    t.import(&tenant("hosts = [\"login.hx.test\"]\n")).await;
    t.import(&tenant("")).await;
    let hx = sesame::tenant::TenantId::parse("hx").unwrap();
    let hosts = || {
        t.app
            .store
            .run_blocking(|c| sesame::store::tenants::find(c, &hx))
            .unwrap()
            .unwrap()
            .hosts
    };
    assert_eq!(hosts(), ["login.hx.test"], "left out, the hosts stay");
    t.import(&tenant("hosts = []\n")).await;
    assert!(hosts().is_empty(), "an empty list removes them");
    for (settings, named) in [
        (
            "settings = { password_min_length = 7 }",
            "settings.password_min_length must be",
        ),
        (
            "settings = { password_min_lenght = 9 }",
            "password_min_lenght is not a setting",
        ),
        ("settings = { default_locale = \"fr\" }", "default_locale"),
        (
            "branding = { logo_url = \"http://x.test/l.png\" }",
            "branding.logo_url must be an https",
        ),
    ] {
        let err = t
            .try_import("t.toml", &tenant(&format!("{settings}\n")))
            .await
            .unwrap_err();
        assert!(
            err.contains("t.toml:2") && err.contains(named),
            "{settings}: {err}"
        );
    }
    // A plain-text password is held to the rules every policy starts from, as on the CLI.
    let weak = tenant("\n[[tenants.users]]\nusername = \"weak\"\npassword = \"123\"\n");
    let err = t.try_import("u.toml", &weak).await.unwrap_err();
    assert!(
        err.contains("u.toml:7") && err.contains("at least 8 characters"),
        "{err}"
    );
}
