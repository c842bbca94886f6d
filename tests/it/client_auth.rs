//! Client authentication at the token endpoint: private_key_jwt with keys by value and by URI,
//! assertion replay, tampering and `alg: none`, and the brute-force limit on client secrets.

use axum::body::Body;
use axum::http::Request;
use josekit::jws::{ES256, JwsHeader, JwsSigner};
use josekit::jwt::JwtPayload;
use serde_json::{Value, json};

use crate::support::{T0, TestApp, TestDb, TestResponse, both_backends};

const ASSERTION: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
const AUD: &str = "http://127.0.0.1:8080/t/acme/token";

fn key(kid: &str) -> (Value, Box<dyn JwsSigner>) {
    let kp = ES256.generate_key_pair().unwrap();
    let mut public = kp.to_jwk_public_key();
    public.set_key_id(kid);
    let signer = ES256.signer_from_jwk(&kp.to_jwk_private_key()).unwrap();
    (Value::Object(public.as_ref().clone()), Box::new(signer))
}

fn assertion(signer: &dyn JwsSigner, kid: &str, client: &str, jti: &str) -> String {
    let mut header = JwsHeader::new();
    header.set_key_id(kid);
    let claims = json!({"iss": client, "sub": client, "aud": AUD, "exp": T0.0 + 120, "iat": T0.0, "jti": jti});
    let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
    josekit::jwt::encode_with_signer(&payload, &header, signer).unwrap()
}

/// A TOML inline table for a JWK.
fn toml_jwk(jwk: &Value) -> String {
    let fields: Vec<String> = jwk
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k} = \"{}\"", v.as_str().unwrap()))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

async fn token(t: &TestApp, body: &str) -> TestResponse {
    t.send(
        Request::post("/t/acme/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

fn grant(jwt: &str) -> String {
    format!(
        "grant_type=client_credentials&client_assertion_type={ASSERTION}&client_assertion={jwt}"
    )
}

both_backends!(private_key_jwt_by_value_is_single_use, |db| {
    let t = TestApp::new(db).await;
    let (jwk, signer) = key("k1");
    t.import(&format!(
        r#"
[[tenants]]
id = "acme"
display_name = "Acme"

[[tenants.clients]]
client_id = "svc"
auth_method = "private_key_jwt"
grant_types = ["client_credentials"]
jwks = {{ keys = [ {} ] }}
"#,
        toml_jwk(&jwk)
    ))
    .await;
    let jwt = assertion(signer.as_ref(), "k1", "svc", "jti-1");
    let r = token(&t, &grant(&jwt)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The same assertion again: a replay.
    let r = token(&t, &grant(&jwt)).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_client");
    // Another key, tampering, alg none, and a secret for a key-based client all fail.
    let (_, stranger) = key("k1");
    let r = token(
        &t,
        &grant(&assertion(stranger.as_ref(), "k1", "svc", "jti-2")),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_client");
    let good = assertion(signer.as_ref(), "k1", "svc", "jti-3");
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged = b64.encode(
        json!({"iss": "svc", "sub": "svc", "aud": AUD, "exp": T0.0 + 120, "jti": "jti-4", "x": 1})
            .to_string(),
    );
    let r = token(&t, &grant(&format!("{}.{forged}.{}", parts[0], parts[2]))).await;
    assert_eq!(r.json()["error"], "invalid_client");
    let none = format!("{}.{forged}.", b64.encode(r#"{"alg":"none"}"#));
    let r = token(&t, &grant(&none)).await;
    assert_eq!(r.json()["error"], "invalid_client");
    let r = token(
        &t,
        "grant_type=client_credentials&client_id=svc&client_secret=guess",
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_client");
    // The untouched assertion still works: failures did not burn its jti.
    let r = token(&t, &grant(&good)).await;
    assert_eq!(r.status, 200, "{}", r.text());
});

#[tokio::test]
async fn private_key_jwt_keys_by_uri() {
    let (jwk, signer) = key("uri-1");
    let set = json!({"keys": [jwk]});
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let set = set.clone();
            async move { axum::Json(set) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let t = TestApp::new(TestDb::sqlite()).await;
    let tenant = |allow_private: bool| {
        format!(
            r#"
[[tenants]]
id = "acme"
display_name = "Acme"
settings = {{ private_app_addresses = {allow_private} }}

[[tenants.clients]]
client_id = "svc"
auth_method = "private_key_jwt"
grant_types = ["client_credentials"]
jwks_uri = "{uri}"
"#
        )
    };
    // A loopback (or any non-public) jwks_uri is not fetched unless the tenant allows it, so a
    // client registration cannot make Sesame probe the network behind it.
    t.import(&tenant(false)).await;
    let r = token(
        &t,
        &grant(&assertion(signer.as_ref(), "uri-0", "svc", "u-0")),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_client");
    t.import(&tenant(true)).await;
    let r = token(
        &t,
        &grant(&assertion(signer.as_ref(), "uri-1", "svc", "u-1")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn guessing_a_client_secret_is_slowed_down() {
    let t = TestApp::new(TestDb::sqlite()).await;
    t.import(
        r#"
[[tenants]]
id = "acme"
display_name = "Acme"

[[tenants.clients]]
client_id = "svc"
grant_types = ["client_credentials"]
auth_method = "client_secret_post"
secret = "svc-secret-0123456789-0123456789-0123"
"#,
    )
    .await;
    for i in 0..sesame::oidc::client_auth::MAX_FAILURES {
        let r = token(
            &t,
            &format!("grant_type=client_credentials&client_id=svc&client_secret=guess-{i}"),
        )
        .await;
        assert_eq!(r.status, 401);
    }
    // Even the right secret must wait now.
    let right = "grant_type=client_credentials&client_id=svc&client_secret=svc-secret-0123456789-0123456789-0123";
    let r = token(&t, right).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    t.clock.advance(sesame::oidc::client_auth::FAILURE_WINDOW);
    assert_eq!(token(&t, right).await.status, 200);
}
