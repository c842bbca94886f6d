//! The token endpoint: `client_credentials`, client authentication, and malformed, unauthorised
//! and unsupported requests.

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::support::{TestApp, TestDb, TestResponse, both_backends};

const CLIENTS: &str = r#"
[[tenants]]
id = "acme"
display_name = "Acme"

[[tenants.clients]]
client_id = "svc"
grant_types = ["client_credentials"]
allowed_scopes = ["reports:read"]
secret = "svc-secret-0123456789-0123456789-0123"
access_token_lifetime = 120

[[tenants.clients]]
client_id = "svc-post"
grant_types = ["client_credentials"]
allowed_resources = ["https://api.acme.test"]
auth_method = "client_secret_post"
secret = "post-secret-0123456789-0123456789-012"

[[tenants.clients]]
client_id = "svc-rs"
grant_types = ["client_credentials"]
allowed_scopes = ["reports:read"]
secret = "rs-secret-0123456789-0123456789-01234"
access_token_signed_response_alg = "RS256"

[[tenants.clients]]
client_id = "web"
redirect_uris = ["https://web.acme.test/cb"]
secret = "web-secret-0123456789-0123456789-0123"

[[tenants.clients]]
client_id = "mobile"
auth_method = "none"
grant_types = ["authorization_code"]
redirect_uris = ["com.acme.app:/cb"]
"#;

const SVC_SECRET: &str = "svc-secret-0123456789-0123456789-0123";

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

async fn post(t: &TestApp, auth: Option<&str>, body: &str) -> TestResponse {
    post_to(t, "/t/acme/token", auth, body).await
}

/// The claims of an access token of the `acme` tenant, verified as a resource server would: by
/// an independent library, with only the published JWKS, for an `at+jwt` signed with `alg`.
async fn verify_access_token(
    t: &TestApp,
    token: &str,
    alg: jsonwebtoken::Algorithm,
) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, alg);
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&t.get("/t/acme/jwks").await.body).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(set.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(alg);
    let issuer = "http://127.0.0.1:8080/t/acme";
    v.set_issuer(&[issuer]);
    v.set_audience(&[issuer]);
    // The test clock is fixed in the future of nothing; callers check exp against it by hand.
    v.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .unwrap()
        .claims
}

fn assert_oauth_error(r: &TestResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["error"], code, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

both_backends!(client_credentials_issues_an_rfc9068_access_token, |db| {
    let t = TestApp::new(db).await;
    t.import(CLIENTS).await;
    let r = post(
        &t,
        Some(&basic("svc", SVC_SECRET)),
        "grant_type=client_credentials&scope=reports:read%20openid",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 120);
    assert_eq!(
        body["scope"], "reports:read",
        "user scopes are not granted to a client acting for itself"
    );
    let token = body["access_token"].as_str().unwrap();

    let claims = verify_access_token(&t, token, jsonwebtoken::Algorithm::ES256).await;
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 16);

    // client_secret_post, and a resource indicator as the audience (RFC 8707).
    let r = post(
        &t,
        None,
        "grant_type=client_credentials&client_id=svc-post&client_secret=post-secret-0123456789-0123456789-012&resource=https%3A%2F%2Fapi.acme.test",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_string();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://api.acme.test");
    assert!(claims.get("scope").is_none());
});

both_backends!(a_client_may_choose_rs256_access_tokens, |db| {
    let t = TestApp::new(db).await;
    t.import(CLIENTS).await;
    let auth = basic("svc-rs", "rs-secret-0123456789-0123456789-01234");
    let r = post(
        &t,
        Some(&auth),
        "grant_type=client_credentials&scope=reports:read",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_string();
    let claims = verify_access_token(&t, &token, jsonwebtoken::Algorithm::RS256).await;
    assert_eq!(claims["client_id"], "svc-rs");
    // Introspection knows it like any other.
    let r = introspect(&t, Some(&auth), &token).await;
    assert_eq!(r.json()["active"], true, "{}", r.text());

    // An algorithm Sesame does not sign with is refused at import, naming the key.
    let bad = CLIENTS.replace(
        r#"access_token_signed_response_alg = "RS256""#,
        r#"access_token_signed_response_alg = "HS256""#,
    );
    let err = t.try_import("bad.toml", &bad).await.unwrap_err();
    assert!(
        err.contains("access_token_signed_response_alg must be one of"),
        "{err}"
    );
});

both_backends!(client_authentication_failures_are_invalid_client, |db| {
    let t = TestApp::new(db).await;
    t.import(CLIENTS).await;
    let r = post(
        &t,
        Some(&basic("svc", "wrong")),
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"sesame\""));
    // Unknown client: the same answer.
    let r2 = post(
        &t,
        Some(&basic("nobody", "wrong")),
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(&r2, 401, "invalid_client");
    assert_eq!(
        r.json()["error_description"],
        r2.json()["error_description"]
    );
    // A registered method must be used: svc is client_secret_basic.
    let r = post(
        &t,
        None,
        &format!("grant_type=client_credentials&client_id=svc&client_secret={SVC_SECRET}"),
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    // No credentials at all.
    assert_oauth_error(
        &post(&t, None, "grant_type=client_credentials").await,
        401,
        "invalid_client",
    );
    // A removed client stops working at once on this node.
    let tid = sesame::tenant::TenantId::parse("acme").unwrap();
    t.app
        .store
        .run(move |c| sesame::store::clients::remove(c, &tid, "svc"))
        .await
        .unwrap();
    t.app.invalidate_caches();
    assert_oauth_error(
        &post(
            &t,
            Some(&basic("svc", SVC_SECRET)),
            "grant_type=client_credentials",
        )
        .await,
        401,
        "invalid_client",
    );
});

#[tokio::test]
async fn grants_the_client_may_not_use_and_malformed_requests() {
    let t = TestApp::new(TestDb::sqlite()).await;
    t.import(CLIENTS).await;
    let web = basic("web", "web-secret-0123456789-0123456789-0123");
    assert_oauth_error(
        &post(&t, Some(&web), "grant_type=client_credentials").await,
        400,
        "unauthorized_client",
    );
    assert_oauth_error(
        &post(&t, None, "grant_type=client_credentials&client_id=mobile").await,
        400,
        "unauthorized_client",
    );
    let svc = basic("svc", SVC_SECRET);
    assert_oauth_error(
        &post(&t, Some(&svc), "grant_type=password&username=a&password=b").await,
        400,
        "unsupported_grant_type",
    );
    assert_oauth_error(
        &post(&t, Some(&svc), "scope=x").await,
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &post(
            &t,
            Some(&svc),
            "grant_type=client_credentials&grant_type=client_credentials",
        )
        .await,
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &post(
            &t,
            Some(&svc),
            "grant_type=client_credentials&scope=a%20%20b",
        )
        .await,
        400,
        "invalid_scope",
    );
    assert_oauth_error(
        &post(
            &t,
            Some(&svc),
            "grant_type=client_credentials&resource=relative",
        )
        .await,
        400,
        "invalid_target",
    );
    // A resource the client did not register (RFC 8707 §2).
    assert_oauth_error(
        &post(
            &t,
            Some(&svc),
            "grant_type=client_credentials&resource=https%3A%2F%2Fpayroll.acme.test",
        )
        .await,
        400,
        "invalid_target",
    );
    // Scopes the client did not register are not granted: with none left there is no scope to
    // state (an empty string is none, RFC 6749 §3.3), so the request is refused; with some left,
    // the response names them.
    assert_oauth_error(
        &post(
            &t,
            Some(&svc),
            "grant_type=client_credentials&scope=payroll:admin",
        )
        .await,
        400,
        "invalid_scope",
    );
    let r = post(
        &t,
        Some(&svc),
        "grant_type=client_credentials&scope=payroll:admin%20reports:read",
    )
    .await;
    assert_eq!(r.json()["scope"], "reports:read", "{}", r.text());
    let r = post(&t, Some(&svc), "grant_type=client_credentials").await;
    assert!(r.json().get("scope").is_none(), "{}", r.text());
    // Two authentication methods at once.
    assert_oauth_error(
        &post(
            &t,
            Some(&svc),
            &format!("grant_type=client_credentials&client_id=svc&client_secret={SVC_SECRET}"),
        )
        .await,
        400,
        "invalid_request",
    );
    // Two Authorization headers, even the same credentials twice.
    let r = t
        .send(
            Request::post("/t/acme/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", &svc)
                .header("authorization", &svc)
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
    // Not a form.
    let r = t
        .send(
            Request::post("/t/acme/token")
                .header("content-type", "application/json")
                .header("authorization", &svc)
                .body(Body::from("{\"grant_type\":\"client_credentials\"}"))
                .unwrap(),
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
    // Oversized body: refused before it is read.
    let big = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(100_000)
    );
    let r = post(&t, Some(&svc), &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "invalid_request", "an OAuth-shaped 413");
    assert_eq!(t.get("/t/acme/token").await.status, 405);
}

#[tokio::test]
async fn discovery_advertises_what_is_served() {
    let t = TestApp::new(TestDb::sqlite()).await;
    let d = t
        .get("/t/default/.well-known/openid-configuration")
        .await
        .json();
    assert_eq!(d["token_endpoint"], "http://127.0.0.1:8080/t/default/token");
    assert_eq!(
        d["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["acr_values_supported"],
        serde_json::json!(sesame::flow::session::CLASSES)
    );
    // Public clients revoke their own tokens by client_id.
    assert_eq!(d["revocation_endpoint_auth_methods_supported"][3], "none");
    // RFC 8414 §2: each endpoint that lists private_key_jwt lists the algorithms it accepts.
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = &d[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .contains(&"private_key_jwt".into())
        );
        let algs = &d[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
        assert!(
            algs.as_array().is_some_and(|a| a.contains(&"RS256".into())),
            "{endpoint}"
        );
    }
    for required in [
        "issuer",
        "authorization_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(
            d.get(required).is_some(),
            "OIDC Discovery §3 requires {required}"
        );
    }
    // Every advertised endpoint exists on this tenant.
    for (name, value) in d.as_object().unwrap() {
        if name.ends_with("_endpoint") || name == "jwks_uri" {
            let path = value
                .as_str()
                .unwrap()
                .strip_prefix("http://127.0.0.1:8080")
                .unwrap();
            let get = t.get(path).await.status;
            let post = post_to(&t, path, None, "").await.status;
            assert!(get != 404 || post != 404, "{name} {path} is not served");
        }
    }
}

async fn post_to(t: &TestApp, path: &str, auth: Option<&str>, body: &str) -> TestResponse {
    let mut req = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    t.send(req.body(Body::from(body.to_string())).unwrap())
        .await
}

/// `token` introspected (RFC 7662) with the client credentials in `auth`, if any.
async fn introspect(t: &TestApp, auth: Option<&str>, token: &str) -> TestResponse {
    let body = format!("token={}", form_escape(token));
    post_to(t, "/t/acme/introspect", auth, &body).await
}

fn form_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

both_backends!(
    introspection_answers_only_about_the_callers_live_tokens,
    |db| {
        let t = TestApp::new(db).await;
        t.import(CLIENTS).await;
        let svc = basic("svc", SVC_SECRET);
        let token = post(
            &t,
            Some(&svc),
            "grant_type=client_credentials&scope=reports:read",
        )
        .await
        .json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let r = introspect(&t, Some(&svc), &token).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let body = r.json();
        assert_eq!(body["active"], true);
        assert_eq!(body["client_id"], "svc");
        assert_eq!(body["scope"], "reports:read");
        assert_eq!(body["token_type"], "Bearer");

        // Another client learns nothing; a tampered or `alg: none` token, garbage, or an expired token
        // is simply inactive.
        let other =
            "grant_type=x&client_id=svc-post&client_secret=post-secret-0123456789-0123456789-012";
        let r = post_to(
            &t,
            "/t/acme/introspect",
            None,
            &format!("{other}&token={}", form_escape(&token)),
        )
        .await;
        assert_eq!(r.json(), serde_json::json!({"active": false}));
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"client_id":"svc","sub":"admin","exp":9999999999,"iss":"http://127.0.0.1:8080/t/acme"}"#);
        let none = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"alg":"none","typ":"at+jwt"}"#),
            parts[1]
        );
        for bad in [
            parts.join("."),
            none,
            "garbage".to_string(),
            "a.b.c".to_string(),
        ] {
            let r = introspect(&t, Some(&svc), &bad).await;
            assert_eq!(r.json(), serde_json::json!({"active": false}), "{bad}");
        }
        t.clock.advance(121);
        let r = introspect(&t, Some(&svc), &token).await;
        assert_eq!(r.json()["active"], false, "expired");
        // Unauthenticated callers and missing tokens get OAuth errors.
        let r = introspect(&t, None, &token).await;
        assert_oauth_error(&r, 401, "invalid_client");
        assert_oauth_error(
            &post_to(&t, "/t/acme/introspect", Some(&svc), "").await,
            400,
            "invalid_request",
        );
        // A public client cannot introspect: its client_id alone proves nothing.
        let r = post_to(
            &t,
            "/t/acme/introspect",
            None,
            &format!("client_id=mobile&token={}", form_escape(&token)),
        )
        .await;
        assert_oauth_error(&r, 401, "invalid_client");
    }
);

both_backends!(revoking_a_refresh_token_revokes_its_family, |db| {
    let t = TestApp::new(db).await;
    t.import(CLIENTS).await;
    let acme = sesame::tenant::TenantId::parse("acme").unwrap();
    let now = t.app.now();
    let tid = acme.clone();
    t.app
        .store
        .run(move |c| {
            for (secret, family) in [("rt-1", "f1"), ("rt-2", "f1"), ("rt-3", "f2")] {
                let hash = sesame::crypto::secret::TokenHash::of(secret);
                let token = sesame::store::refresh::NewRefreshToken {
                    hash: &hash,
                    family_id: family,
                    client_id: "svc",
                    user_id: None,
                    sid: None,
                    scope: "reports:read",
                    auth_time: None,
                    amr: &[],
                    acr: None,
                    claims: None,
                    expires_at: now.plus(3600),
                    family_expires_at: now.plus(86_400),
                };
                sesame::store::refresh::issue(c, &tid, &token, now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let svc = basic("svc", SVC_SECRET);
    let introspect = |token: &'static str| {
        let (t, svc) = (&t, svc.clone());
        async move {
            post_to(
                t,
                "/t/acme/introspect",
                Some(&svc),
                &format!("token={token}"),
            )
            .await
            .json()["active"]
                .clone()
        }
    };
    assert_eq!(introspect("rt-1").await, true);
    assert_eq!(introspect("rt-1").await, true);
    // RFC 7662 §2.2: what the grant says, and no `token_type` (an access token's type).
    let r = post_to(&t, "/t/acme/introspect", Some(&svc), "token=rt-3").await;
    let body = r.json();
    assert_eq!(body["client_id"], "svc");
    assert_eq!(body["scope"], "reports:read");
    assert_eq!(body["exp"], now.plus(3600).0);
    assert!(body.get("token_type").is_none(), "{body}");
    assert!(body.get("sub").is_none(), "{body}");
    // Another client cannot revoke it; the answer is the same 200.
    let other = "client_id=svc-post&client_secret=post-secret-0123456789-0123456789-012";
    assert_eq!(
        post_to(&t, "/t/acme/revoke", None, &format!("{other}&token=rt-1"))
            .await
            .status,
        200
    );
    assert_eq!(introspect("rt-1").await, true);
    let r = post_to(
        &t,
        "/t/acme/revoke",
        Some(&svc),
        "token=rt-1&token_type_hint=refresh_token",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect("rt-1").await, false);
    assert_eq!(introspect("rt-2").await, false, "the whole family");
    assert_eq!(introspect("rt-3").await, true, "other families untouched");
    // Unknown tokens and access tokens: 200, nothing else happens.
    assert_eq!(
        post_to(&t, "/t/acme/revoke", Some(&svc), "token=unknown")
            .await
            .status,
        200
    );
    assert_oauth_error(
        &post_to(
            &t,
            "/t/acme/revoke",
            Some(&basic("svc", "bad")),
            "token=rt-3",
        )
        .await,
        401,
        "invalid_client",
    );
    assert_eq!(introspect("rt-3").await, true);
});

both_backends!(
    a_resource_server_learns_that_a_deleted_clients_tokens_are_dead,
    |db| {
        let t = TestApp::new(db).await;
        // The API registered as a client under its resource URI (a URN: client ids are not
        // URLs), so it may introspect tokens minted for it (the `aud` of RFC 8707).
        t.import(
            r#"
[[tenants]]
id = "acme"
display_name = "Acme"

[[tenants.clients]]
client_id = "batch"
grant_types = ["client_credentials"]
allowed_resources = ["urn:acme:api"]
secret = "batch-secret-0123456789-0123456789-012"

[[tenants.clients]]
client_id = "urn:acme:api"
grant_types = ["client_credentials"]
secret = "api-secret-0123456789-0123456789-0123"
"#,
        )
        .await;
        // RFC 6749 §2.3.1: the id is form-encoded in Basic credentials, its colons too.
        let api = basic("urn%3Aacme%3Aapi", "api-secret-0123456789-0123456789-0123");
        let batch = basic("batch", "batch-secret-0123456789-0123456789-012");
        let token = post(
            &t,
            Some(&batch),
            "grant_type=client_credentials&resource=urn%3Aacme%3Aapi",
        )
        .await
        .json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let seen = introspect(&t, Some(&api), &token).await.json();
        assert_eq!(seen["active"], true, "{seen}");
        assert_eq!(seen["client_id"], "batch");

        let acme = sesame::tenant::TenantId::parse("acme").unwrap();
        assert!(
            t.app
                .store
                .run_blocking(|c| sesame::store::clients::remove(c, &acme, "batch"))
                .unwrap()
        );
        t.app.invalidate_caches();
        let seen = introspect(&t, Some(&api), &token).await.json();
        assert_eq!(seen, serde_json::json!({"active": false}));
    }
);

both_backends!(
    a_user_sharing_a_clients_id_does_not_revoke_its_tokens,
    |db| {
        let t = TestApp::new(db).await;
        t.import(&format!(
            "{CLIENTS}\n[[tenants.users]]\nid = \"svc\"\nusername = \"svc-person\"\n"
        ))
        .await;
        let svc = basic("svc", SVC_SECRET);
        let token = post(&t, Some(&svc), "grant_type=client_credentials")
            .await
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        // Disabling the user revokes the user's tokens issued up to this second, not the
        // client's own of the same `sub`.
        let acme = sesame::tenant::TenantId::parse("acme").unwrap();
        let now = t.app.now();
        t.app
            .store
            .run_blocking(move |c| {
                sesame::store::users::set_status(
                    c,
                    &acme,
                    "svc",
                    sesame::store::users::UserStatus::Disabled,
                    now,
                )
            })
            .unwrap();
        t.app.invalidate_caches();
        let seen = introspect(&t, Some(&svc), &token).await.json();
        assert_eq!(seen["active"], true, "{seen}");
    }
);

/// Introspection and revocation take a form (RFC 7662 §2.1, RFC 7009 §2.1): anything else is an
/// RFC 6749 §5.2 error, never a guess.
#[tokio::test]
async fn introspection_and_revocation_refuse_malformed_requests() {
    let t = TestApp::new(TestDb::sqlite()).await;
    t.import(CLIENTS).await;
    let svc = basic("svc", SVC_SECRET);
    for endpoint in ["/t/acme/introspect", "/t/acme/revoke"] {
        for body in [
            "token=a&token=b",
            "token=",
            "",
            "token_type_hint=access_token",
        ] {
            let r = post_to(&t, endpoint, Some(&svc), body).await;
            assert_oauth_error(&r, 400, "invalid_request");
        }
        // JSON is not a form: no `token` parameter is found in it.
        let r = t
            .send(
                Request::post(endpoint)
                    .header("content-type", "application/json")
                    .header("authorization", &svc)
                    .body(Body::from(r#"{"token":"abc"}"#))
                    .unwrap(),
            )
            .await;
        assert_oauth_error(&r, 400, "invalid_request");
        // A percent-encoding that is not one: at most a token nobody issued (RFC 7009 §2.2
        // answers 200 for those; introspection says inactive).
        let r = post_to(&t, endpoint, Some(&svc), "token=%ZZ").await;
        assert!(
            r.status == 400 || r.status == 200,
            "{endpoint}: {}",
            r.text()
        );
        if r.status == 200 && endpoint.ends_with("introspect") {
            assert_eq!(r.json(), serde_json::json!({"active": false}));
        }
    }
}
