//! The admin REST API: lifting a lock with a client-credentials token that carries the
//! `sesame:admin` scope, and problem details for everything else.

use reqwest::StatusCode;
use serde_json::Value;
use sesame::account::Login;
use sesame::store::{audit, users};
use sesame::tenant::TenantId;

use crate::browser::{Browser, basic};
use crate::support::both_backends;

const OPS_SECRET: &str = "ops-secret-0123456789-0123456789-01234";

const OPS: &str = r#"
[[tenants]]
id = "acme"
display_name = "Acme & Co"

[[tenants.clients]]
client_id = "ops"
name = "Operations console"
first_party = true
grant_types = ["client_credentials"]
allowed_scopes = ["sesame:admin"]
secret = "ops-secret-0123456789-0123456789-01234"
"#;

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

async fn token(b: &Browser, client: &str, secret: &str, scope: &str) -> String {
    let (status, body) = b
        .token(
            Some(&basic(client, secret)),
            &format!("grant_type=client_credentials&scope={scope}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn unlock(
    b: &Browser,
    user: &str,
    auth: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = b
        .server
        .client
        .post(b.server.url(&format!("/t/acme/api/v1/users/{user}/unlock")));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = match status {
        StatusCode::NO_CONTENT => Value::Null,
        _ => {
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            r.json().await.unwrap()
        }
    };
    (status, challenge, body)
}

fn lock_alice(b: &Browser) -> String {
    let acme = acme();
    let store = &b.t.app.store;
    let alice = store
        .run_blocking(|c| users::find_by_login(c, &acme, &Login::parse("alice", None).unwrap()))
        .unwrap()
        .unwrap();
    for _ in 0..5 {
        store
            .run_blocking(|c| {
                users::record_failed_password(c, &acme, &alice.id, 5, 900, b.t.app.now())
            })
            .unwrap();
    }
    alice.id
}

both_backends!(an_admin_token_lifts_a_lock, |db| {
    let b = Browser::new(db).await;
    b.t.import(OPS).await;
    let id = lock_alice(&b);
    let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
    let r = b
        .submit(&login, "alice", crate::browser::PASSWORD, "")
        .await;
    // Refused. Under a name that has not failed on this node itself the lock is not told
    // (see flow::login), but the right password is not let in.
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("incorrect"));
    let admin = token(&b, "ops", OPS_SECRET, "sesame:admin").await;
    let (status, _, _) = unlock(&b, "alice", Some(&format!("Bearer {admin}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    // By id too, and the audit log names the client.
    let (status, _, _) = unlock(&b, &id, Some(&format!("Bearer {admin}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let acme = acme();
    let events =
        b.t.app
            .store
            .run_blocking(|c| audit::list(c, &acme, 1000))
            .unwrap();
    assert!(events.iter().any(|e| e.action == "user.unlock"
        && e.actor == "client:ops"
        && e.target.as_deref() == Some(id.as_str())));
});

both_backends!(the_admin_api_refuses_what_is_not_an_admin_token, |db| {
    let b = Browser::new(db).await;
    b.t.import(OPS).await;
    // A token without the scope: a user's, from the CRM's sign-in.
    let signed = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&signed["code"]).await;
    let crm = tokens["access_token"].as_str().unwrap().to_string();
    lock_alice(&b);
    let (status, challenge, body) = unlock(&b, "alice", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"sesame\""),
        "no error code without credentials (RFC 6750 §3.1)"
    );
    assert_eq!(body["status"], 401);
    let (_, challenge, _) = unlock(&b, "alice", Some("Bearer not-a-jwt")).await;
    assert!(challenge.unwrap().contains("invalid_token"));
    let (status, challenge, _) = unlock(&b, "alice", Some(&format!("Bearer {crm}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.unwrap().contains("insufficient_scope"));
    // Tampered, unsigned, malformed, oversized.
    let admin = token(&b, "ops", OPS_SECRET, "sesame:admin").await;
    // A valid token and another Authorization header: two credentials are none.
    let r = b
        .server
        .client
        .post(b.server.url("/t/acme/api/v1/users/alice/unlock"))
        .header("authorization", format!("Bearer {admin}"))
        .header("authorization", "Bearer other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_request")
    );
    let parts: Vec<&str> = admin.split('.').collect();
    // One character in the middle of the signature (the last one may carry only padding bits).
    let mut signature: Vec<char> = parts[2].chars().collect();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == 'A' { 'B' } else { 'A' };
    let signature: String = signature.into_iter().collect();
    let tampered = format!("{}.{}.{signature}", parts[0], parts[1]);
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.{}.", parts[1]);
    for bad in [
        format!("Bearer {tampered}"),
        format!("Bearer {none}"),
        "Bearer not-a-jwt".to_string(),
        format!("Bearer {}", "a".repeat(10_000)),
        format!("Basic {}", basic("ops", OPS_SECRET)),
    ] {
        let (status, _, _) = unlock(&b, "alice", Some(&bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad:.40}");
    }
    // An unknown user is a 404 problem, not an error page.
    let (status, _, body) = unlock(&b, "nobody", Some(&format!("Bearer {admin}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "no such user");
    // A disabled account is not answered as if unlocking let it in.
    let (status, _, body) = unlock(&b, "dora", Some(&format!("Bearer {admin}"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["detail"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    let events =
        b.t.app
            .store
            .run_blocking(|c| audit::list(c, &acme(), 1000))
            .unwrap();
    assert!(
        !events.iter().any(|e| e.action == "user.unlock"),
        "nothing audited"
    );
    // Another method, or a path the API does not have: problems too.
    let r = b
        .server
        .client
        .get(b.server.url("/t/acme/api/v1/users/alice/unlock"))
        .header("authorization", format!("Bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    for path in ["/t/acme/api/v1/users", "/t/acme/api/v2/anything/at/all"] {
        let r = b
            .server
            .client
            .post(b.server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], 404);
    }
    // A token revoked (RFC 7009) stops working for the API at once.
    let r = b
        .server
        .client
        .post(b.server.url("/t/acme/revoke"))
        .basic_auth("ops", Some(OPS_SECRET))
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _, _) = unlock(&b, "alice", Some(&format!("Bearer {admin}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let admin = token(&b, "ops", OPS_SECRET, "sesame:admin").await;
    let (status, _, _) = unlock(&b, "nobody", Some(&format!("Bearer {admin}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a new token works");
    // The scope withdrawn from the client: its tokens stop working for the API.
    b.t.import(&OPS.replace(
        r#"allowed_scopes = ["sesame:admin"]"#,
        "allowed_scopes = []",
    ))
    .await;
    let (status, _, _) = unlock(&b, "alice", Some(&format!("Bearer {admin}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A client removed meanwhile: its tokens stop working.
    let acme = acme();
    b.t.app
        .store
        .run_blocking(|c| sesame::store::clients::remove(c, &acme, "ops"))
        .unwrap();
    b.t.app.invalidate_caches();
    let (status, _, _) = unlock(&b, "alice", Some(&format!("Bearer {admin}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
});
