//! OpenID Connect edge cases and bad input over real HTTP: untrusted redirect URIs, form_post,
//! refused code redemptions, disabled users and deleted clients, tampered tokens, the `claims`
//! parameter, `id_token_hint`, password guessing, audiences, and session renewal.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{
    Browser, CHALLENGE, CRM_SECRET, ISSUER, PASSWORD, TENANT, VERIFIER, WIKI_SECRET, basic, enc,
    hidden, params, unescape,
};
use crate::support::{TestDb, both_backends};

#[tokio::test]
async fn untrusted_redirect_uris_get_a_page_never_a_redirect() {
    let b = Browser::new(TestDb::sqlite()).await;
    for redirect in [
        "https://crm.acme.test/cb/extra",
        "https://crm.acme.test:8443/cb",
        "https://crm.acme.test/cb?x=1",
        "https://CRM.acme.test/cb",
        "javascript:alert(1)",
        "https://evil.example/cb",
    ] {
        let r = b
            .get(&Browser::authorize_path("crm-web", redirect, ""))
            .await;
        assert_eq!(r.status(), 400, "{redirect}");
        assert!(r.headers().get("location").is_none(), "{redirect}");
        assert!(r.text().await.unwrap().contains("has not registered"));
    }
    let r = b
        .get(&Browser::authorize_path(
            "nobody",
            "https://crm.acme.test/cb",
            "",
        ))
        .await;
    assert_eq!(r.status(), 400);
    // Repeated parameters: a page.
    let r = b
        .get(&format!(
            "{}&client_id=crm-web",
            Browser::authorize_path("crm-web", "https://crm.acme.test/cb", "")
        ))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // After the redirect URI is trusted, errors go back to it.
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "&response_mode=fragment&prompt=none",
        ))
        .await;
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://crm.acme.test/cb#error=login_required"),
        "{location}"
    );
    // A public client without PKCE.
    let path = format!(
        "/t/acme/authorize?response_type=code&client_id=crm-mobile&redirect_uri={}&scope=openid",
        enc("com.acme.crm:/cb")
    );
    let r = b.get(&path).await;
    let p = params(r.headers()["location"].to_str().unwrap());
    assert_eq!(p["error"], "invalid_request");
    // Oversized query.
    let big = format!(
        "{}&login_hint={}",
        Browser::authorize_path("crm-web", "https://crm.acme.test/cb", ""),
        "x".repeat(5000)
    );
    let r = b.get(&big).await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_request"
    );
    // A state that cannot go back exactly as sent (RFC 6749 §4.1.2): bytes that are not UTF-8, or
    // too long to echo. A page, not an answer the app would take for a forgery.
    let authorize = Browser::authorize_path("crm-web", "https://crm.acme.test/cb", "");
    for state in ["%ff%fe".to_string(), "s".repeat(5000)] {
        let r = b
            .get(&authorize.replace("state=st-1", &format!("state={state}")))
            .await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
    }
}

#[tokio::test]
async fn form_post_response_mode_posts_the_code() {
    let b = Browser::new(TestDb::sqlite()).await;
    let login = b
        .start(
            "crm-web",
            "https://crm.acme.test/cb",
            "&response_mode=form_post",
        )
        .await;
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    // The callback, and wherever (over https) it sends the browser next.
    assert!(
        csp.contains("form-action https://crm.acme.test https:;"),
        "{csp}"
    );
    let html = unescape(&r.text().await.unwrap());
    assert!(
        html.contains("action=\"https://crm.acme.test/cb\""),
        "{html}"
    );
    assert!(html.contains("name=\"code\""));
    assert_eq!(hidden(&html, "state"), "st-1");
    assert_eq!(hidden(&html, "iss"), ISSUER);
    assert!(html.contains("<noscript>"), "works without JavaScript");
}

#[tokio::test]
async fn the_token_endpoint_refuses_bad_code_redemptions() {
    let b = Browser::new(TestDb::sqlite()).await;
    let crm = basic("crm-web", CRM_SECRET);
    let wiki = basic("wiki", WIKI_SECRET);
    let wrong = "a".repeat(43);
    let cb = "https://crm.acme.test/cb";
    let cases = [
        ("another client", &wiki, Some(VERIFIER), cb),
        ("wrong verifier", &crm, Some(wrong.as_str()), cb),
        ("missing verifier", &crm, None, cb),
        (
            "other redirect_uri",
            &crm,
            Some(VERIFIER),
            "https://crm.acme.test/other",
        ),
    ];
    for (why, auth, verifier, redirect) in cases {
        let p = b
            .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
            .await;
        let mut body = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}",
            enc(&p["code"]),
            enc(redirect)
        );
        if let Some(v) = verifier {
            body.push_str(&format!("&code_verifier={v}"));
        }
        let (status, err) = b.token(Some(auth), &body).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{why}"
        );
        let (status, err) = b.redeem(&p["code"]).await;
        if why == "another client" {
            // Bound to its client: another client can neither redeem nor spend it.
            assert_eq!(status, 200, "{why}: {err}");
        } else {
            // The rightful client's failed attempt spent it.
            assert_eq!(err["error"], "invalid_grant", "{why}");
        }
    }
    // A sealed code altered by one character, cut short, or padded opens for nobody.
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let code = p["code"].clone();
    let mut altered = code.clone().into_bytes();
    let last = altered.len() - 5;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(altered).unwrap(),
        code[..code.len() - 1].to_string(),
        format!("{code}AAAA"),
        "%%%".to_string(),
        "A".repeat(5000),
    ] {
        let (status, err) = b.redeem(&bad).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{bad}"
        );
    }
    let (status, _) = b.redeem(&code).await;
    assert_eq!(status, 200, "the altered copies did not spend the code");
    // Expired after 60 s.
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    b.t.clock.advance(61);
    let (_, err) = b.redeem(&p["code"]).await;
    assert_eq!(err["error"], "invalid_grant");
    // A verifier for a code issued without a challenge (downgrade) is refused.
    let path = format!(
        "/t/acme/authorize?response_type=code&client_id=crm-web&redirect_uri={}&scope=openid",
        enc("https://crm.acme.test/cb")
    );
    let r = b.get(&path).await;
    let code = params(r.headers()["location"].to_str().unwrap())["code"].clone();
    let (_, err) = b.redeem(&code).await;
    assert_eq!(err["error"], "invalid_grant");
    // A refresh token is bound to its client.
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (_, err) = b.refresh(&basic("wiki", WIKI_SECRET), refresh).await;
    assert_eq!(err["error"], "invalid_grant");
    let (status, _) = b.refresh(&crm, refresh).await;
    assert_eq!(
        status, 200,
        "the refused attempt by another client did not spend it"
    );
}

#[tokio::test]
async fn disabled_users_lose_codes_refresh_and_userinfo() {
    let b = Browser::new(TestDb::sqlite()).await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let p2 = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    b.t.import(&TENANT.replace(
        "employee_no = \"E7\"",
        "employee_no = \"E7\"\nstatus = \"disabled\"",
    ))
    .await;
    let (_, err) = b.redeem(&p2["code"]).await;
    assert_eq!(err["error"], "invalid_grant");
    let (_, err) = b
        .refresh(
            &basic("crm-web", CRM_SECRET),
            tokens["refresh_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(err["error"], "invalid_grant");
    let r = b.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Introspection tells the APIs too, once the node reads the revocations again with the
    // tenant's keys (the import stands for another process, as `sesame import` is).
    let crm = basic("crm-web", CRM_SECRET);
    let access = tokens["access_token"].as_str().unwrap();
    b.t.clock.advance(sesame::app::CACHE_TTL_SECS + 1);
    assert_eq!(b.introspect(&crm, access).await["active"], false);
}

#[tokio::test]
async fn userinfo_refuses_missing_tampered_and_non_user_tokens() {
    let b = Browser::new(TestDb::sqlite()).await;
    let r = b
        .server
        .client
        .get(b.server.url("/t/acme/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"sesame\"");
    assert!(
        r.text().await.unwrap().is_empty(),
        "no error information without credentials (RFC 6750 §3.1)"
    );
    // Credentials that are not one b64token: a malformed request, not a bad token.
    for malformed in ["Bearer a b", "Bearer a\"b"] {
        let r = b
            .server
            .client
            .get(b.server.url("/t/acme/userinfo"))
            .header("authorization", malformed)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{malformed}");
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.contains("invalid_request"), "{challenge}");
    }
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let at = tokens["access_token"].as_str().unwrap();
    let mut parts: Vec<String> = at.split('.').map(str::to_string).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"sub":"olga","scope":"openid"}"#);
    assert_eq!(b.userinfo(&parts.join(".")).await.status(), 401);
    let none_alg = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        parts[1]
    );
    assert_eq!(b.userinfo(&none_alg).await.status(), 401);
    // POST with the token in the form body works.
    let r = b
        .server
        .client
        .post(b.server.url("/t/acme/userinfo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An expired token.
    b.t.clock.advance(3600);
    assert_eq!(b.userinfo(at).await.status(), 401);
}

both_backends!(
    the_claims_parameter_reaches_userinfo_and_the_id_token,
    |db| {
        let b = Browser::new(db).await;
        let claims =
            enc(r#"{"userinfo":{"email":null},"id_token":{"phone_number":{"essential":true}}}"#);
        let path = format!(
            "/t/acme/authorize?response_type=code&client_id=crm-web&redirect_uri={}&scope=openid&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256&claims={claims}",
            enc("https://crm.acme.test/cb")
        );
        let r = b.get(&path).await;
        let login = r.headers()["location"].to_str().unwrap().to_string();
        let r = b.submit(&login, "alice", PASSWORD, "").await;
        let code = params(r.headers()["location"].to_str().unwrap())["code"].clone();
        let (_, tokens) = b.redeem(&code).await;
        let id = b
            .verify(tokens["id_token"].as_str().unwrap(), "crm-web")
            .await;
        assert_eq!(id["phone_number"], "+8613800138000");
        assert!(
            id.get("email").is_none(),
            "email was asked for UserInfo only"
        );
        let info: Value = b
            .userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(info["email"], "alice@acme.test");
        assert!(
            info.get("name").is_none(),
            "no profile scope, not asked for: {info}"
        );

        // A refresh releases what the sign-in asked for, as the first tokens did (OIDC Core §12.2),
        // and so does the refresh after it (the request goes along with each rotation).
        let mut refresh = tokens["refresh_token"].as_str().unwrap().to_string();
        for round in 0..2 {
            let (status, refreshed) = b.refresh(&basic("crm-web", CRM_SECRET), &refresh).await;
            assert_eq!(status, StatusCode::OK, "{refreshed}");
            let id = b
                .verify(refreshed["id_token"].as_str().unwrap(), "crm-web")
                .await;
            assert_eq!(id["phone_number"], "+8613800138000", "round {round}");
            let info: Value = b
                .userinfo(refreshed["access_token"].as_str().unwrap())
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(info["email"], "alice@acme.test", "round {round}");
            refresh = refreshed["refresh_token"].as_str().unwrap().to_string();
        }
    }
);

#[tokio::test]
async fn id_token_hint_must_name_the_signed_in_user() {
    let b = Browser::new(TestDb::sqlite()).await;
    // Olga's ID token from the wiki, then Alice signs in to the CRM in the same browser.
    let p = b.sign_in("wiki", "https://wiki.acme.test/cb", "olga").await;
    let (_, tokens) = b.redeem_wiki(&p["code"]).await;
    let olga_hint = tokens["id_token"].as_str().unwrap().to_string();
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    let path = |hint: &str, prompt: &str| {
        Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            &format!("{prompt}&id_token_hint={hint}"),
        )
    };
    let error = |r: reqwest::Response| params(r.headers()["location"].to_str().unwrap());
    let r = b.get(&path(&hint, "&prompt=none")).await;
    assert!(error(r).contains_key("code"));
    // Olga's hint while Alice is signed in: not answered from Alice's session.
    let r = b.get(&path(&olga_hint, "&prompt=none")).await;
    assert_eq!(error(r)["error"], "login_required");
    // Without prompt=none the page asks; Alice signing in there is still not Olga.
    let r = b.get(&path(&olga_hint, "")).await;
    let login = r.headers()["location"].to_str().unwrap().to_string();
    assert!(login.starts_with("/t/acme/login?"), "{login}");
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let p = error(r);
    assert_eq!(p["error"], "login_required", "{p:?}");
    assert_eq!(p["state"], "st-1");
    let mut parts: Vec<&str> = hint.split('.').collect();
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"iss":"http://127.0.0.1:8080/t/acme","sub":"someone-else"}"#);
    parts[1] = &forged;
    let r = b.get(&path(&parts.join("."), "&prompt=none")).await;
    assert_eq!(
        error(r)["error"],
        "invalid_request",
        "a tampered hint is refused"
    );
}

#[tokio::test]
async fn third_party_clients_get_no_claims_beyond_their_scopes() {
    let b = Browser::new(TestDb::sqlite()).await;
    let claims = enc(r#"{"id_token":{"email":null,"employee_no":null}}"#);
    let path = format!(
        "/t/acme/authorize?response_type=code&client_id=partner&redirect_uri={}&scope=openid%20email&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256&claims={claims}",
        enc("https://partner.example/cb")
    );
    let login = b.get(&path).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let page = b
        .submit(&login, "alice", PASSWORD, "")
        .await
        .text()
        .await
        .unwrap();
    let body = format!(
        "flow={}&csrf={}&decision=allow",
        hidden(&page, "flow"),
        hidden(&page, "csrf")
    );
    // A consent flow is not a password-change flow.
    let r = b
        .post_form(
            "/t/acme/login/password",
            &format!("{body}&new_password=brand+new+secret&confirm_password=brand+new+secret"),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = b.post_form("/t/acme/consent", &body).await;
    let code = params(r.headers()["location"].to_str().unwrap())["code"].clone();
    let (_, tokens) = b
        .token(
            Some(&basic("partner", "partner-secret-0123456789-0123456789-")),
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}",
                enc(&code),
                enc("https://partner.example/cb")
            ),
        )
        .await;
    let id = b
        .verify(tokens["id_token"].as_str().unwrap(), "partner")
        .await;
    assert_eq!(id["email"], "alice@acme.test", "email was consented to");
    assert!(id.get("employee_no").is_none(), "profile was not: {id}");
}

#[tokio::test]
async fn userinfo_refuses_tokens_minted_for_another_resource() {
    let b = Browser::new(TestDb::sqlite()).await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (status, tokens) = b
        .token(
            Some(&basic("crm-web", CRM_SECRET)),
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}&resource={}",
                enc(&p["code"]),
                enc("https://crm.acme.test/cb"),
                enc("https://api.acme.test")
            ),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        b.verify(at, "https://api.acme.test").await["aud"],
        "https://api.acme.test"
    );
    assert_eq!(b.userinfo(at).await.status(), 401);
}

#[tokio::test]
async fn signing_in_again_keeps_the_session_and_another_user_ends_it() {
    let b = Browser::new(TestDb::sqlite()).await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, first) = b.redeem(&p["code"]).await;
    let sid = b
        .verify(first["id_token"].as_str().unwrap(), "crm-web")
        .await["sid"]
        .clone();
    // prompt=login by the same user: same sid, and the first refresh token still works.
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, second) = b.redeem(&p["code"]).await;
    assert_eq!(
        b.verify(second["id_token"].as_str().unwrap(), "crm-web")
            .await["sid"],
        sid
    );
    let crm = basic("crm-web", CRM_SECRET);
    let (status, _) = b
        .refresh(&crm, first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    // Another user in the same browser: Alice's session and its refresh tokens end.
    let login = b
        .start("wiki", "https://wiki.acme.test/cb", "&prompt=login")
        .await;
    let r = b.submit(&login, "olga", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, err) = b
        .refresh(&crm, second["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(err["error"], "invalid_grant");
}

#[tokio::test]
async fn a_deleted_clients_tokens_stop_working() {
    let b = Browser::new(TestDb::sqlite()).await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let acme = sesame::tenant::TenantId::parse("acme").unwrap();
    assert!(
        b.t.app
            .store
            .run(move |c| sesame::store::clients::remove(c, &acme, "crm-web"))
            .await
            .unwrap()
    );
    b.t.app.invalidate_caches();
    let (status, err) = b
        .refresh(
            &basic("crm-web", CRM_SECRET),
            tokens["refresh_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let r = b.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 401);
    // Its authorization requests get a page, not a redirect.
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "",
        ))
        .await;
    assert_eq!(r.status(), 400);
}

/// Tenants share a process, never trust: a token, a client or a form of one tenant means
/// nothing at another, even where the other has a user of the same name and password.
#[tokio::test]
async fn tokens_clients_and_forms_of_one_tenant_mean_nothing_at_another() {
    let b = Browser::new(TestDb::sqlite()).await;
    b.t.import(&format!(
        r#"
[[tenants]]
id = "globex"
display_name = "Globex"

[[tenants.clients]]
client_id = "gx"
grant_types = ["client_credentials"]
allowed_scopes = ["sesame:admin"]
secret = "gx-secret-0123456789-0123456789-012345"

[[tenants.users]]
username = "alice"
email = "alice@globex.test"
password = "{PASSWORD}"
"#
    ))
    .await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let access = tokens["access_token"].as_str().unwrap();

    // Acme's access token at Globex's UserInfo and introspection.
    let r = b
        .server
        .client
        .get(b.server.url("/t/globex/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let gx = basic("gx", "gx-secret-0123456789-0123456789-012345");
    let r = b
        .server
        .client
        .post(b.server.url("/t/globex/introspect"))
        .header("authorization", &gx)
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"active": false})
    );
    // Acme's client at Globex's token endpoint, and Globex's admin token at Acme's admin API.
    let r = b
        .server
        .client
        .post(b.server.url("/t/globex/token"))
        .header("authorization", basic("crm-web", CRM_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = b
        .server
        .client
        .post(b.server.url("/t/globex/token"))
        .header("authorization", &gx)
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "sesame:admin"),
        ])
        .send()
        .await
        .unwrap();
    let admin: Value = r.json().await.unwrap();
    let admin = admin["access_token"].as_str().unwrap();
    let r = b
        .server
        .client
        .post(b.server.url("/t/acme/api/v1/users/alice/unlock"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // An Acme sign-in form posted to Globex signs no one in anywhere.
    let login = b
        .start("crm-web", "https://crm.acme.test/cb", "&prompt=login")
        .await;
    let page = b.get(&login).await.text().await.unwrap();
    let body = format!(
        "flow={}&csrf={}&region=CN&account=alice&password={}&agree=yes",
        hidden(&page, "flow"),
        hidden(&page, "csrf"),
        enc(PASSWORD)
    );
    let r = b.post_form("/t/globex/login", &body).await;
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    assert!(r.status().is_client_error(), "{}: {location:?}", r.status());
    // The flow is still Acme's, and still works there.
    let r = b.post_form("/t/acme/login", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
