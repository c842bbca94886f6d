//! The browser side of OpenID Connect over real HTTP: authorize, the sign-in page, SSO, consent,
//! per-app access, the code and refresh grants, and UserInfo, with the tokens verified by an
//! independent JWT library against the published JWKS only.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, TestDb, TestServer, both_backends};

pub const TENANT: &str = r#"
[[tenants]]
id = "acme"
display_name = "Acme & Co"

[[tenants.departments]]
id = "hq"
name = "HQ"

[[tenants.departments]]
id = "sales"
name = "Sales"
parent = "hq"

[[tenants.departments]]
id = "ops"
name = "Operations"
parent = "hq"

[[tenants.apps]]
id = "crm"
name = "CRM"
web_access = { departments = ["sales"] }

[[tenants.roles]]
id = "crm:rep"
name = "Sales rep"
app = "crm"

[[tenants.users]]
username = "alice"
display_name = "Alice <b>Liddell</b>"
email = "alice@acme.test"
phone = "+8613800138000"
department = "sales"
employee_no = "E7"
roles = ["crm:rep"]
password = "correct horse battery"

[[tenants.users]]
username = "olga"
display_name = "Olga"
department = "ops"
password = "correct horse battery"

[[tenants.users]]
username = "dora"
display_name = "Dora"
department = "sales"
status = "disabled"
password = "correct horse battery"

[[tenants.users]]
username = "newbie"
display_name = "Newbie"
department = "sales"
password = "temporary password 1"
must_change_password = true

[[tenants.clients]]
client_id = "crm-web"
name = "CRM"
app = "crm"
first_party = true
redirect_uris = ["https://crm.acme.test/cb"]
post_logout_redirect_uris = ["https://crm.acme.test/bye"]
allowed_resources = ["https://api.acme.test"]
secret = "crm-secret-0123456789-0123456789-0123"

[[tenants.clients]]
client_id = "crm-mobile"
name = "CRM mobile"
app = "crm"
first_party = true
auth_method = "none"
redirect_uris = ["com.acme.crm:/cb"]

[[tenants.clients]]
client_id = "wiki"
name = "Wiki"
first_party = true
redirect_uris = ["https://wiki.acme.test/cb"]
secret = "wiki-secret-0123456789-0123456789-012"
id_token_signed_response_alg = "PS256"

[[tenants.clients]]
client_id = "partner"
name = "Partner Portal"
redirect_uris = ["https://partner.example/cb"]
secret = "partner-secret-0123456789-0123456789-"
"#;

pub const CRM_SECRET: &str = "crm-secret-0123456789-0123456789-0123";
pub const WIKI_SECRET: &str = "wiki-secret-0123456789-0123456789-012";
pub const PASSWORD: &str = "correct horse battery";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const ISSUER: &str = "http://127.0.0.1:8080/t/acme";

/// A browser (cookie jar, no redirects followed) against a live server.
pub struct Browser {
    pub t: TestApp,
    pub server: TestServer,
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Undoes minijinja's HTML escaping, as a browser does when it reads an attribute.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    unescape(html[start..].split('"').next().unwrap())
}

/// The query parameters of a redirect.
pub fn params(location: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

impl Browser {
    pub async fn new(db: TestDb) -> Browser {
        let t = TestApp::new(db).await;
        t.import(TENANT).await;
        let server = TestServer::start(t.router.clone(), Duration::from_secs(1));
        Browser { t, server }
    }

    /// A second browser on the same server: no cookies.
    pub fn other_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.server
            .client
            .get(self.server.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, path: &str, body: &str) -> reqwest::Response {
        self.server
            .client
            .post(self.server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub fn authorize_path(client: &str, redirect: &str, extra: &str) -> String {
        format!(
            "/t/acme/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20profile%20email%20phone&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
            enc(redirect)
        )
    }

    /// Starts a sign-in at the authorization endpoint; returns the login page's path.
    pub async fn start(&self, client: &str, redirect: &str, extra: &str) -> String {
        let r = self
            .get(&Self::authorize_path(client, redirect, extra))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with("/t/acme/login?flow="), "{location}");
        location
    }

    /// Submits the sign-in form of the page at `login_path`.
    pub async fn submit(
        &self,
        login_path: &str,
        account: &str,
        password: &str,
        extra: &str,
    ) -> reqwest::Response {
        let page = self.get(login_path).await.text().await.unwrap();
        let body = format!(
            "flow={}&csrf={}&region=CN&account={}&password={}&agree=yes{extra}",
            hidden(&page, "flow"),
            hidden(&page, "csrf"),
            enc(account),
            enc(password)
        );
        self.post_form("/t/acme/login", &body).await
    }

    /// A full sign-in for `client` (with `prompt=login`, so it never rides on an earlier
    /// session); returns the redirect's parameters.
    pub async fn sign_in(
        &self,
        client: &str,
        redirect: &str,
        account: &str,
    ) -> std::collections::HashMap<String, String> {
        let login = self.start(client, redirect, "&prompt=login").await;
        let r = self.submit(&login, account, PASSWORD, "").await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(redirect), "{location}");
        params(&location)
    }

    pub async fn token(&self, auth: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut req = self
            .server
            .client
            .post(self.server.url("/t/acme/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        assert_eq!(r.headers()["cache-control"], "no-store");
        (status, r.json().await.unwrap())
    }

    pub async fn redeem(&self, code: &str) -> (StatusCode, Value) {
        self.token(
            Some(&basic("crm-web", CRM_SECRET)),
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}",
                enc(code),
                enc("https://crm.acme.test/cb")
            ),
        )
        .await
    }

    pub async fn userinfo(&self, token: &str) -> reqwest::Response {
        self.server
            .client
            .get(self.server.url("/t/acme/userinfo"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    }

    /// Verifies a JWT with the `jsonwebtoken` crate and the published JWKS only.
    pub async fn verify(&self, token: &str, audience: &str) -> Value {
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .server
            .client
            .get(self.server.url("/t/acme/jwks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_audience(&[audience]);
        v.set_issuer(&[ISSUER]);
        // The server runs on a fixed clock in the past.
        v.validate_exp = false;
        jsonwebtoken::decode::<Value>(token, &key, &v)
            .unwrap()
            .claims
    }
}

both_backends!(
    code_flow_with_pkce_signs_in_and_issues_verified_tokens,
    |db| {
        let b = Browser::new(db).await;
        let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;

        let page = b.get(&login).await;
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("form-action 'self' https://crm.acme.test"),
            "{csp}"
        );
        let html = page.text().await.unwrap();
        for needle in [
            "autocomplete=\"username\"",
            "autocomplete=\"current-password\"",
            "name=\"agree\"",
            "Service Agreement",
            "Privacy Policy",
            "Forgot password?",
            "value=\"CN\" selected",
            "Acme &amp; Co",
            "Sign In",
        ] {
            assert!(html.contains(needle), "{needle} missing");
        }

        // A national mobile number with the CN country code selected, spaces and all.
        let r = b.submit(&login, "138 0013 8000", PASSWORD, "").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("sesame-session-acme="))
            .expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let p = params(r.headers()["location"].to_str().unwrap());
        assert_eq!(p["state"], "st-1");
        assert_eq!(p["iss"], ISSUER);
        let code = p["code"].clone();

        let (status, tokens) = b.redeem(&code).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["scope"], "email openid phone profile");
        assert!(tokens["expires_in"].as_i64().unwrap() > 0);
        let id = b
            .verify(tokens["id_token"].as_str().unwrap(), "crm-web")
            .await;
        assert_eq!(id["nonce"], "n-1");
        assert_eq!(id["amr"], serde_json::json!(["pwd"]));
        assert_eq!(id["auth_time"], crate::support::T0.0);
        assert!(id["sid"].is_string());
        assert_eq!(id["roles"], serde_json::json!(["crm:rep"]));
        assert_eq!(id["department"], "hq/sales");
        let at = tokens["access_token"].as_str().unwrap();
        assert_eq!(
            id["at_hash"],
            sesame::oidc::id_token::half_hash(sesame::crypto::keys::Alg::RS256, at)
        );
        let access = b.verify(at, ISSUER).await;
        assert_eq!(access["client_id"], "crm-web");
        assert_eq!(access["sub"], id["sub"]);
        assert_eq!(
            jsonwebtoken::decode_header(at).unwrap().typ.as_deref(),
            Some("at+jwt")
        );

        let info = b.userinfo(at).await;
        assert_eq!(info.status(), 200);
        let info: Value = info.json().await.unwrap();
        assert_eq!(info["sub"], id["sub"]);
        assert_eq!(info["email"], "alice@acme.test");
        assert_eq!(info["phone_number"], "+8613800138000");
        assert_eq!(info["name"], "Alice <b>Liddell</b>");
        assert_eq!(info["employee_no"], "E7");
        assert_eq!(info["tenant"], "acme");

        // Refresh rotates; the rotated token presented again revokes the family.
        let first = tokens["refresh_token"].as_str().unwrap().to_string();
        let crm = basic("crm-web", CRM_SECRET);
        let (status, rotated) = b
            .token(
                Some(&crm),
                &format!("grant_type=refresh_token&refresh_token={}", enc(&first)),
            )
            .await;
        assert_eq!(status, 200, "{rotated}");
        let second = rotated["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(first, second);
        let id2 = b
            .verify(rotated["id_token"].as_str().unwrap(), "crm-web")
            .await;
        assert_eq!(id2["auth_time"], id["auth_time"]);
        assert_eq!(id2["sub"], id["sub"]);
        let (status, narrowed) = b
            .token(
                Some(&crm),
                &format!(
                    "grant_type=refresh_token&refresh_token={}&scope=openid%20admin",
                    enc(&second)
                ),
            )
            .await;
        assert_eq!(
            (status, narrowed["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_scope"))
        );
        let (status, err) = b
            .token(
                Some(&crm),
                &format!("grant_type=refresh_token&refresh_token={}", enc(&first)),
            )
            .await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (_, err) = b
            .token(
                Some(&crm),
                &format!("grant_type=refresh_token&refresh_token={}", enc(&second)),
            )
            .await;
        assert_eq!(
            err["error"], "invalid_grant",
            "reuse revoked the whole family"
        );

        // The code is single use.
        let (status, err) = b.redeem(&code).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
    }
);

both_backends!(a_replayed_code_revokes_the_tokens_it_issued, |db| {
    let b = Browser::new(db).await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (_, err) = b.redeem(&p["code"]).await;
    assert_eq!(err["error"], "invalid_grant");
    let (_, err) = b
        .token(
            Some(&basic("crm-web", CRM_SECRET)),
            &format!("grant_type=refresh_token&refresh_token={}", enc(&refresh)),
        )
        .await;
    assert_eq!(
        err["error"], "invalid_grant",
        "the first redemption's refresh token is revoked"
    );
});

both_backends!(single_sign_on_prompt_and_max_age, |db| {
    let b = Browser::new(db).await;
    b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;

    // A second client of the tenant: no sign-in page.
    let r = b
        .get(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "",
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://wiki.acme.test/cb?code="),
        "{location}"
    );
    let p = params(location);
    let (status, tokens) = b
        .token(
            Some(&basic("wiki", WIKI_SECRET)),
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}",
                enc(&p["code"]),
                enc("https://wiki.acme.test/cb")
            ),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let id = b.verify(tokens["id_token"].as_str().unwrap(), "wiki").await;
    assert_eq!(
        id["roles"],
        serde_json::json!([]),
        "wiki belongs to no app: no roles"
    );

    // prompt=none with a session answers at once; prompt=login and a passed max_age ask again.
    let r = b
        .get(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "&prompt=none",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    b.start("wiki", "https://wiki.acme.test/cb", "&prompt=login")
        .await;
    b.t.clock.advance(120);
    b.start("wiki", "https://wiki.acme.test/cb", "&max_age=60")
        .await;
    let r = b
        .get(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "&max_age=600",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));

    // Another browser has no session: prompt=none is login_required, with iss and state.
    let other = b.other_client();
    let r = other
        .get(b.server.url(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "&prompt=none",
        )))
        .send()
        .await
        .unwrap();
    let p = params(r.headers()["location"].to_str().unwrap());
    assert_eq!(p["error"], "login_required");
    assert_eq!(p["state"], "st-1");
    assert_eq!(p["iss"], ISSUER);

    // The session ends after its idle timeout.
    b.t.clock.advance(b.t.app.config.session.idle_timeout + 1);
    b.start("wiki", "https://wiki.acme.test/cb", "").await;
});

both_backends!(
    sign_in_refusals_are_clear_and_do_not_enumerate_accounts,
    |db| {
        let b = Browser::new(db).await;
        let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
        let wrong_password = b.submit(&login, "alice", "wrong password", "").await;
        assert_eq!(wrong_password.status(), 200);
        let wrong_password = wrong_password.text().await.unwrap();
        let unknown = b
            .submit(&login, "nobody@acme.test", PASSWORD, "")
            .await
            .text()
            .await
            .unwrap();
        let message = "The account or password is incorrect.";
        assert!(wrong_password.contains(message) && unknown.contains(message));
        let garbage = b
            .submit(&login, &"x".repeat(5000), PASSWORD, "")
            .await
            .text()
            .await
            .unwrap();
        assert!(garbage.contains(message));

        let disabled = b
            .submit(&login, "dora", PASSWORD, "")
            .await
            .text()
            .await
            .unwrap();
        assert!(disabled.contains("disabled"), "{disabled}");

        // The agreement must be ticked.
        let page = b.get(&login).await.text().await.unwrap();
        let body = format!(
            "flow={}&csrf={}&account=alice&password={}",
            hidden(&page, "flow"),
            hidden(&page, "csrf"),
            enc(PASSWORD)
        );
        let r = b
            .post_form("/t/acme/login", &body)
            .await
            .text()
            .await
            .unwrap();
        assert!(r.contains("agree to the Service Agreement"), "{r}");

        // CSRF: a missing token, and a token from another browser, are refused.
        let flow = hidden(&page, "flow");
        let no_csrf = format!(
            "flow={flow}&account=alice&password={}&agree=yes",
            enc(PASSWORD)
        );
        assert_eq!(b.post_form("/t/acme/login", &no_csrf).await.status(), 403);
        let other = b.other_client();
        let other_page = other
            .get(b.server.url(&login))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let forged = format!(
            "flow={flow}&csrf={}&account=alice&password={}&agree=yes",
            hidden(&other_page, "csrf"),
            enc(PASSWORD)
        );
        assert_eq!(b.post_form("/t/acme/login", &forged).await.status(), 403);

        // An unknown flow is a friendly page, not an error dump.
        let r = b
            .get("/t/acme/login?flow=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("expired"));

        let events = b
            .t
            .app
            .store
            .run(|c| {
                sesame::store::audit::list(c, &sesame::tenant::TenantId::parse("acme").unwrap(), 50)
            })
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == "sign_in.password" && e.outcome == "failure")
        );
    }
);

both_backends!(users_outside_the_apps_access_scope_are_refused, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
    let r = b.submit(&login, "olga", PASSWORD, "").await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("does not have access to CRM"), "{page}");
    assert!(page.contains("error=access_denied"), "{page}");
    // With a session, prompt=none answers access_denied straight away.
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "&prompt=none",
        ))
        .await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "access_denied"
    );
    let events =
        b.t.app
            .store
            .run(|c| {
                sesame::store::audit::list(c, &sesame::tenant::TenantId::parse("acme").unwrap(), 50)
            })
            .await
            .unwrap();
    assert!(events.iter().any(|e| e.action == "authorize.access_denied"));
    // The wiki belongs to no app: Olga may use it.
    let r = b
        .get(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
});

both_backends!(third_party_clients_ask_for_consent_once, |db| {
    let b = Browser::new(db).await;
    let login = b.start("partner", "https://partner.example/cb", "").await;
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), 200, "a consent page, not a redirect");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Partner Portal wants to access your account"),
        "{page}"
    );
    assert!(page.contains("See your email address"));
    let body = format!(
        "flow={}&csrf={}&decision=allow",
        hidden(&page, "flow"),
        hidden(&page, "csrf")
    );
    let r = b.post_form("/t/acme/consent", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    // Replaying the consent form does nothing.
    assert_eq!(b.post_form("/t/acme/consent", &body).await.status(), 400);

    // Remembered: the next authorization asks nothing.
    let r = b
        .get(&Browser::authorize_path(
            "partner",
            "https://partner.example/cb",
            "",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    // prompt=consent asks again; deny is access_denied.
    let r = b
        .get(&Browser::authorize_path(
            "partner",
            "https://partner.example/cb",
            "&prompt=consent",
        ))
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let body = format!(
        "flow={}&csrf={}&decision=deny",
        hidden(&page, "flow"),
        hidden(&page, "csrf")
    );
    let r = b.post_form("/t/acme/consent", &body).await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "access_denied"
    );

    // Consent withdrawn: prompt=none is consent_required.
    let acme = sesame::tenant::TenantId::parse("acme").unwrap();
    let alice =
        b.t.app
            .store
            .run(move |c| {
                let login = sesame::account::Login::parse("alice", None).unwrap();
                sesame::store::users::find_by_login(c, &acme, &login)
            })
            .await
            .unwrap()
            .unwrap();
    let acme = sesame::tenant::TenantId::parse("acme").unwrap();
    assert!(
        b.t.app
            .store
            .run(move |c| sesame::store::consents::revoke(c, &acme, &alice.id, "partner"))
            .await
            .unwrap()
    );
    let r = b
        .get(&Browser::authorize_path(
            "partner",
            "https://partner.example/cb",
            "&prompt=none",
        ))
        .await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "consent_required"
    );
    let r = b
        .get(&Browser::authorize_path(
            "partner",
            "https://partner.example/cb",
            "",
        ))
        .await;
    assert_eq!(r.status(), 200, "asked again after withdrawal");
});

both_backends!(first_sign_in_changes_the_password_before_any_code, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
    let r = b.submit(&login, "newbie", "temporary password 1", "").await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' https://crm.acme.test"),
        "the form's redirect to the app is allowed: {csp}"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("Set a new password"), "{page}");
    let (flow, csrf) = (hidden(&page, "flow"), hidden(&page, "csrf"));
    let r = b
        .post_form(
            "/t/acme/login/password",
            &format!("flow={flow}&csrf={csrf}&new_password=short&confirm_password=short"),
        )
        .await;
    assert!(r.text().await.unwrap().contains("at least 8"));
    let r = b
        .post_form(
            "/t/acme/login/password",
            &format!("flow={flow}&csrf={csrf}&new_password=brand+new+secret&confirm_password=brand+new+secret"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    // The old password no longer works; the new one does.
    let other = Browser::authorize_path("crm-web", "https://crm.acme.test/cb", "&prompt=login");
    let r = b.get(&other).await;
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let r = b.submit(&login, "newbie", "temporary password 1", "").await;
    assert_eq!(r.status(), 200);
    let r = b.submit(&login, "newbie", "brand new secret", "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
});

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
    assert!(csp.contains("form-action https://crm.acme.test"), "{csp}");
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
    let (_, err) = b
        .token(
            Some(&basic("wiki", WIKI_SECRET)),
            &format!("grant_type=refresh_token&refresh_token={}", enc(refresh)),
        )
        .await;
    assert_eq!(err["error"], "invalid_grant");
    let (status, _) = b
        .token(
            Some(&crm),
            &format!("grant_type=refresh_token&refresh_token={}", enc(refresh)),
        )
        .await;
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
        .token(
            Some(&basic("crm-web", CRM_SECRET)),
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                enc(tokens["refresh_token"].as_str().unwrap())
            ),
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

#[tokio::test]
async fn the_claims_parameter_reaches_userinfo_and_the_id_token() {
    let b = Browser::new(TestDb::sqlite()).await;
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
}

#[tokio::test]
async fn id_token_hint_must_name_the_signed_in_user() {
    let b = Browser::new(TestDb::sqlite()).await;
    let p = b
        .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;
    let (_, tokens) = b.redeem(&p["code"]).await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    let path = |hint: &str| {
        Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            &format!("&prompt=none&id_token_hint={hint}"),
        )
    };
    let r = b.get(&path(&hint)).await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    // Olga's hint while Alice is signed in: login_required.
    let other = Browser::new(TestDb::sqlite()).await;
    let _ = other;
    let mut parts: Vec<&str> = hint.split('.').collect();
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"iss":"http://127.0.0.1:8080/t/acme","sub":"someone-else"}"#);
    parts[1] = &forged;
    let r = b.get(&path(&parts.join("."))).await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_request",
        "a tampered hint is refused"
    );
}

#[tokio::test]
async fn password_guessing_is_throttled_per_account() {
    let b = Browser::new(TestDb::sqlite()).await;
    let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
    for i in 0..sesame::flow::login::MAX_ACCOUNT_FAILURES {
        let r = b.submit(&login, "alice", &format!("guess {i}"), "").await;
        assert!(r.text().await.unwrap().contains("incorrect"));
    }
    // The right password now gets the same refusal, which does not say it was right.
    let page = b
        .submit(&login, "alice", PASSWORD, "")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Too many failed sign-in attempts"), "{page}");
    // Another account is not affected; the wait ends.
    let r = b.submit(&login, "olga", PASSWORD, "").await;
    assert_eq!(
        r.status(),
        403,
        "olga signs in (and is refused the app, not throttled)"
    );
    b.t.clock.advance(sesame::flow::login::FAILURE_WINDOW);
    let login = b
        .start("crm-web", "https://crm.acme.test/cb", "&prompt=login")
        .await;
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
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
        .token(
            Some(&crm),
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                enc(first["refresh_token"].as_str().unwrap())
            ),
        )
        .await;
    assert_eq!(status, 200);
    // Another user in the same browser: Alice's session and its refresh tokens end.
    let login = b
        .start("wiki", "https://wiki.acme.test/cb", "&prompt=login")
        .await;
    let r = b.submit(&login, "olga", PASSWORD, "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, err) = b
        .token(
            Some(&crm),
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                enc(second["refresh_token"].as_str().unwrap())
            ),
        )
        .await;
    assert_eq!(err["error"], "invalid_grant");
}
