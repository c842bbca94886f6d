//! Cross-origin access: a browser-based app (another origin) may call the token endpoint,
//! UserInfo and revocation, and read the public documents, never with the user's cookies; the
//! rest of the surface gives pages of other origins nothing to read.

use axum::body::Body;
use axum::http::Request;

use crate::support::{TestApp, TestDb};

const ORIGIN: &str = "https://spa.example.com";

/// The preflight a page sends before a POST with a bearer token or client credentials.
fn preflight(path: &str) -> Request<Body> {
    Request::builder()
        .method("OPTIONS")
        .uri(path)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn browser_apps_of_any_origin_reach_the_endpoints_meant_for_them() {
    let t = TestApp::new(TestDb::sqlite()).await;
    for path in [
        "/t/default/token",
        "/t/default/userinfo",
        "/t/default/revoke",
    ] {
        let r = t.send(preflight(path)).await;
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        // The methods the endpoint takes, and no more.
        let methods = match path.ends_with("userinfo") {
            true => "GET, POST",
            false => "POST",
        };
        assert_eq!(r.header("access-control-allow-methods"), Some(methods));
        assert!(
            r.header("access-control-allow-headers")
                .unwrap()
                .contains("authorization")
        );
        assert_eq!(r.header("access-control-allow-credentials"), None);
    }
    // Refusals are readable too, so the app can tell what went wrong, challenge included.
    let post = |path: &str| {
        Request::post(path)
            .header("origin", ORIGIN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(
                "grant_type=authorization_code&code=x&client_id=nobody",
            ))
            .unwrap()
    };
    let token = t.send(post("/t/default/token")).await;
    assert_eq!(token.status, 401, "{}", token.text());
    assert_eq!(token.header("access-control-allow-origin"), Some("*"));
    let info = t
        .send(
            Request::get("/t/default/userinfo")
                .header("origin", ORIGIN)
                .header("authorization", "Bearer not-a-token")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(info.status, 401);
    assert_eq!(info.header("access-control-allow-origin"), Some("*"));
    assert!(
        info.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(
        info.header("access-control-expose-headers"),
        Some("www-authenticate")
    );
    for path in [
        "/t/default/jwks",
        "/t/default/.well-known/openid-configuration",
    ] {
        assert_eq!(
            t.get(path).await.header("access-control-allow-origin"),
            Some("*")
        );
    }
    // Introspection is for resource servers, and the sign-in pages are navigations.
    let introspect = t.send(post("/t/default/introspect")).await;
    assert_eq!(introspect.header("access-control-allow-origin"), None);
    for path in [
        "/t/default/introspect",
        "/t/default/login",
        "/t/default/authorize",
    ] {
        let r = t.send(preflight(path)).await;
        assert_eq!(r.status, 405, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{path}");
    }
    assert_eq!(
        t.get("/t/default/authorize")
            .await
            .header("access-control-allow-origin"),
        None
    );
}
