//! RP-initiated logout and back-channel logout over real HTTP, with a local receiver standing in
//! for an app's back-channel endpoint.

use axum::routing::post;
use reqwest::StatusCode;
use tokio::sync::mpsc;

use crate::browser::{Browser, CRM_SECRET, basic, enc, hidden, params};
use crate::support::{TestDb, both_backends};

/// A back-channel logout endpoint on 127.0.0.1 that hands every `logout_token` it receives to
/// the test, until dropped.
struct Receiver {
    url: String,
    tokens: mpsc::UnboundedReceiver<String>,
    _task: tokio::task::JoinHandle<()>,
}

async fn receiver() -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/backchannel",
        post(
            move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    if let Some(t) = form.get("logout_token") {
                        let _ = tx.send(t.clone());
                    }
                    StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url,
        tokens: rx,
        _task: task,
    }
}

/// The tenant lets Sesame reach the receiver on loopback only when `allow_private`.
fn bc_client(url: &str, allow_private: bool) -> String {
    format!(
        r#"
[[tenants]]
id = "acme"
display_name = "Acme & Co"
settings = {{ private_app_addresses = {allow_private} }}

[[tenants.clients]]
client_id = "rp-bc"
name = "Back-channel RP"
first_party = true
redirect_uris = ["https://rp.acme.test/cb"]
secret = "rp-bc-secret-0123456789-0123456789-01"
backchannel_logout_uri = "{url}"
"#
    )
}

both_backends!(logout_with_a_hint_ends_the_session_everywhere, |db| {
    let mut rx = receiver().await;
    let b = Browser::new(db).await;
    b.t.import(&bc_client(&rx.url, true)).await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let sid = b.verify(&id_token, "crm-web").await["sid"].clone();
    // The back-channel client signs in through the same session.
    let r = b
        .get(&Browser::authorize_path(
            "rp-bc",
            "https://rp.acme.test/cb",
            "",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    // A code still in flight when the session ends.
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "",
        ))
        .await;
    let in_flight = params(r.headers()["location"].to_str().unwrap())["code"].clone();

    // HEAD is safe (RFC 9110 §9.2.1): the same request ends nothing.
    let r = b
        .server
        .client
        .head(b.server.url(&format!(
            "/t/acme/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye-1",
            id_token,
            enc("https://crm.acme.test/bye")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the page that asks");
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "&prompt=none",
        ))
        .await;
    assert!(
        params(r.headers()["location"].to_str().unwrap()).contains_key("code"),
        "still signed in"
    );

    let r = b
        .get(&format!(
            "/t/acme/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye-1",
            id_token,
            enc("https://crm.acme.test/bye")
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "https://crm.acme.test/bye?state=bye-1"
    );
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("sesame-session-acme=;"));
    assert!(cleared, "the session cookie is cleared");

    let token = tokio::time::timeout(std::time::Duration::from_secs(10), rx.tokens.recv())
        .await
        .expect("a logout token within 10 s")
        .unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let claims = b.verify(&token, "rp-bc").await;
    assert_eq!(claims["sid"], sid);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());

    // The session, its refresh token and the access tokens issued in it are gone.
    b.start("crm-web", "https://crm.acme.test/cb", "").await;
    let (_, err) = b.refresh(&basic("crm-web", CRM_SECRET), &refresh).await;
    assert_eq!(err["error"], "invalid_grant");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(b.userinfo(access).await.status(), StatusCode::UNAUTHORIZED);
    // The code issued just before starts nothing: no tokens for a session that has ended.
    let (status, err) = b.redeem(&in_flight).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "invalid_grant");
    assert!(err["error_description"].as_str().unwrap().contains("ended"));
});

#[tokio::test]
async fn back_channel_logout_reaches_private_addresses_only_where_the_tenant_allows() {
    let mut rx = receiver().await;
    let b = Browser::new(TestDb::sqlite()).await;
    b.t.import(&bc_client(&rx.url, false)).await;
    let p = b.sign_in("rp-bc", "https://rp.acme.test/cb", "alice").await;
    assert!(p.contains_key("code"));
    let r = b.get("/t/acme/logout").await;
    assert_eq!(r.status(), 200);
    let csrf = hidden(&r.text().await.unwrap(), "csrf");
    let r = b
        .post_form("/t/acme/logout/confirm", &format!("csrf={csrf}"))
        .await;
    assert!(r.status().is_success() || r.status().is_redirection());

    // The refusal is audited at once, without retries, and nothing reached the receiver.
    let acme = sesame::tenant::TenantId::parse("acme").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let failure = loop {
        let t = acme.clone();
        let events =
            b.t.app
                .store
                .run(move |c| sesame::store::audit::list(c, &t, 50))
                .await
                .unwrap();
        if let Some(e) = events
            .into_iter()
            .find(|e| e.action == "logout.backchannel")
        {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no audit event");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(failure.outcome, "failure");
    assert_eq!(failure.details["attempts"], 1);
    assert!(rx.tokens.try_recv().is_err(), "nothing was sent");
}

#[tokio::test]
async fn logout_without_a_hint_asks_and_refuses_open_redirects() {
    let b = Browser::new(TestDb::sqlite()).await;
    b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    for bad in [
        format!(
            "post_logout_redirect_uri={}&client_id=crm-web",
            enc("https://evil.example/")
        ),
        format!(
            "post_logout_redirect_uri={}&client_id=crm-web",
            enc("https://crm.acme.test/bye/x")
        ),
        format!(
            "post_logout_redirect_uri={}",
            enc("https://crm.acme.test/bye")
        ),
        "id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_string(),
        "client_id=nobody".to_string(),
    ] {
        let r = b.get(&format!("/t/acme/logout?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none(), "{bad}");
    }
    // No hint: a confirmation page; the session is still there until the user confirms.
    let r = b
        .get(&format!(
            "/t/acme/logout?client_id=crm-web&post_logout_redirect_uri={}&state=s9",
            enc("https://crm.acme.test/bye")
        ))
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    // The confirmation page in the app's language; the language goes along with the form.
    let zh = b
        .get("/t/acme/logout?client_id=crm-web&ui_locales=zh-TW&state=s9")
        .await
        .text()
        .await
        .unwrap();
    assert!(zh.contains("要登出"), "{zh}");
    assert_eq!(hidden(&zh, "ui_locales"), "zh-TW");
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "&prompt=none",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    let carried = format!(
        "client_id=crm-web&post_logout_redirect_uri={}&state=s9",
        enc("https://crm.acme.test/bye")
    );
    let r = b.post_form("/t/acme/logout/confirm", &carried).await;
    assert_eq!(r.status(), 403, "no CSRF token");
    let r = b
        .post_form("/t/acme/logout/confirm", &format!("csrf={csrf}&{carried}"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "https://crm.acme.test/bye?state=s9"
    );
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "&prompt=none",
        ))
        .await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "login_required"
    );
    // Signing out again without a session just says so, in the language the app asks for
    // (§2 `ui_locales`) when the tenant offers it.
    let r = b.get("/t/acme/logout").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("signed out"));
    let r = b.get("/t/acme/logout?ui_locales=fr%20zh-CN").await;
    let page = r.text().await.unwrap();
    assert!(page.contains("您已退出登录"), "{page}");
}

#[tokio::test]
async fn a_hint_for_another_user_does_not_sign_this_browser_out() {
    let b = Browser::new(TestDb::sqlite()).await;
    // Olga's ID token, from another browser.
    let other = b.other_client();
    let login = other
        .get(b.server.url(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "",
        )))
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let page = other
        .get(b.server.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = other
        .post(b.server.url("/t/acme/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "flow={}&csrf={}&account=olga&password={}&agree=yes",
            hidden(&page, "flow"),
            hidden(&page, "csrf"),
            enc(crate::browser::PASSWORD)
        ))
        .send()
        .await
        .unwrap();
    let code = params(r.headers()["location"].to_str().unwrap())["code"].clone();
    let (_, tokens) = b.redeem_wiki(&code).await;
    let olga_hint = tokens["id_token"].as_str().unwrap().to_string();
    // Alice signs in here. Olga's hint is of neither this browser's session nor its user: Alice
    // is asked, her cookie stays, and Olga's session elsewhere is not touched.
    b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let r = b
        .get(&format!("/t/acme/logout?id_token_hint={olga_hint}"))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none(), "no cookie cleared");
    assert!(r.text().await.unwrap().contains("id=\"sign-out\""), "asks");
    let signed_in = |client: reqwest::Client, app: &'static str, redirect: &'static str| {
        let url = b
            .server
            .url(&Browser::authorize_path(app, redirect, "&prompt=none"));
        async move {
            let r = client.get(url).send().await.unwrap();
            params(r.headers()["location"].to_str().unwrap()).contains_key("code")
        }
    };
    assert!(
        signed_in(
            b.server.client.clone(),
            "crm-web",
            "https://crm.acme.test/cb"
        )
        .await
    );
    assert!(signed_in(other.clone(), "wiki", "https://wiki.acme.test/cb").await);
    // Nor does the hint end Olga's session from a browser that has none.
    let stranger = b.other_client();
    let r = stranger
        .get(
            b.server
                .url(&format!("/t/acme/logout?id_token_hint={olga_hint}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("signed out"));
    assert!(signed_in(other, "wiki", "https://wiki.acme.test/cb").await);
}

#[tokio::test]
async fn a_hint_of_another_session_asks_and_returns_to_the_app_it_names() {
    let b = Browser::new(TestDb::sqlite()).await;
    // Alice's ID token from this browser's session, then a second session of hers elsewhere.
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    let other = b.other_client();
    let r = b.sign_in_from(&other, "alice", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The hint names the app only by its audience; the page carries it on.
    let logout = format!(
        "/t/acme/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=s1",
        enc("https://crm.acme.test/bye")
    );
    let page = other
        .get(b.server.url(&logout))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hidden(&page, "client_id"), "crm-web", "{page}");
    let r = other
        .post(b.server.url("/t/acme/logout/confirm"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={}&client_id=crm-web&post_logout_redirect_uri={}&state=s1",
            hidden(&page, "csrf"),
            enc("https://crm.acme.test/bye")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "https://crm.acme.test/bye?state=s1"
    );
    // The confirmed logout ended that browser's session, not the one the hint was from.
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "&prompt=none",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    // From its own session the hint signs out at once.
    let r = b.get(&logout).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "https://crm.acme.test/bye?state=s1"
    );
}

/// A cross-site POST brings no `SameSite=Lax` cookie: the OP answers it with the same request as
/// a GET, which does, so the session ends instead of the app being told a sign-out happened.
#[tokio::test]
async fn a_cross_site_post_is_resent_as_a_get_that_carries_the_session() {
    let b = Browser::new(TestDb::sqlite()).await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    let body = format!(
        "id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye-2",
        enc("https://crm.acme.test/bye")
    );
    // What the browser sends from the app's page: no session cookie.
    let r = b
        .other_client()
        .post(b.server.url("/t/acme/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    // To the issuer's own URL (the tests' public URL; the server listens elsewhere).
    let path = location
        .strip_prefix("http://127.0.0.1:8080")
        .unwrap_or_else(|| panic!("{location}"));
    assert_eq!(path, format!("/t/acme/logout?{body}"));
    // The GET, with the browser's cookie, ends the session and goes back to the app.
    let r = b.get(path).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "https://crm.acme.test/bye?state=bye-2"
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(b.userinfo(access).await.status(), StatusCode::UNAUTHORIZED);

    // The same for authorization; a same-origin POST, one that brings a cookie, or one whose
    // body is not a plain form is answered where it is.
    let authorize = format!(
        "client_id=crm-web&response_type=code&scope=openid&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
        enc("https://crm.acme.test/cb"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGfSstw-cM"
    );
    let send = |client: reqwest::Client, site: &'static str, body: String| {
        let url = b.server.url("/t/acme/authorize");
        async move {
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", site)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = send(b.other_client(), "cross-site", authorize.clone()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/t/acme/authorize?{authorize}"))
    );
    // Answered where they are: to the sign-in page, not back to the endpoint.
    let resent = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .is_some_and(|l| l.to_str().unwrap().contains("/authorize?"))
    };
    let r = send(b.other_client(), "same-origin", authorize.clone()).await;
    assert!(!resent(&r), "same-origin");
    let r = send(
        b.other_client(),
        "cross-site",
        format!("{authorize}&x=a\"b"),
    )
    .await;
    assert!(!resent(&r), "not a plain form");
    let long = format!("{authorize}&login_hint={}", "a".repeat(5000));
    let r = send(b.other_client(), "cross-site", long).await;
    assert!(!resent(&r), "too long for a URL");
    assert!(!r.status().is_server_error());
    b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let r = send(b.server.client.clone(), "cross-site", authorize.clone()).await;
    assert!(!resent(&r), "the cookie came along");
}

// OIDC Core §11: an offline_access grant goes on after the user signs out, and the access tokens
// its refreshes give work (they do not name the ended session); any other grant of the session
// ends with it.
both_backends!(
    an_offline_grant_outlives_the_session_and_its_tokens_work,
    |db| {
        use crate::browser::CHALLENGE;
        let b = Browser::new(db).await;
        b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
            .await;
        let path = format!(
            "/t/acme/authorize?response_type=code&client_id=crm-web&redirect_uri={}&scope=openid%20offline_access&state=s&nonce=n&code_challenge={CHALLENGE}&code_challenge_method=S256",
            enc("https://crm.acme.test/cb")
        );
        let r = b.get(&path).await;
        let code = params(r.headers()["location"].to_str().unwrap())["code"].clone();
        let (status, tokens) = b.redeem(&code).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let offline = tokens["refresh_token"].as_str().unwrap().to_string();
        let id_token = tokens["id_token"].as_str().unwrap().to_string();
        let r = b
            .get(&format!(
                "/t/acme/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
                enc("https://crm.acme.test/bye")
            ))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let (status, body) = b.refresh(&basic("crm-web", CRM_SECRET), &offline).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let access = body["access_token"].as_str().unwrap();
        let claims = b.verify(access, "http://127.0.0.1:8080/t/acme").await;
        assert!(claims.get("sid").is_none(), "{claims}");
        assert_eq!(b.userinfo(access).await.status(), StatusCode::OK);
    }
);
