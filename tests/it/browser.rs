//! A browser against a live Sesame for the OpenID Connect suites: the test tenant, a cookie-jar
//! client that does not follow redirects, sign-in through the real page, token requests, and JWT
//! verification with the independent `jsonwebtoken` crate and the published JWKS only.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, TestDb, TestServer};

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
access_token_signed_response_alg = "RS256"

[[tenants.clients]]
client_id = "partner"
name = "Partner Portal"
redirect_uris = ["https://partner.example/cb"]
secret = "partner-secret-0123456789-0123456789-"
"#;

pub const PARTNER_SECRET: &str = "partner-secret-0123456789-0123456789-";
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
        Self::with_config(db, |_| {}).await
    }

    pub async fn with_config(
        db: TestDb,
        tweak: impl FnOnce(&mut sesame::config::Config),
    ) -> Browser {
        let t = TestApp::with_config(db, tweak).await;
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

    /// `body` posted to `path` from another browser: none of this one's cookies (its session,
    /// its CSRF binding) go along. What a forged cross-site form would send.
    pub async fn post_form_elsewhere(&self, path: &str, body: &str) -> reqwest::Response {
        self.other_client()
            .post(self.server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .body(body.to_string())
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
        self.sign_in_with(client, redirect, account, PASSWORD).await
    }

    /// Signs `account` in to the CRM from `client`, another browser with cookies of its own,
    /// sending `headers` with the form; returns the form's answer.
    pub async fn sign_in_from(
        &self,
        client: &reqwest::Client,
        account: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let authorize =
            Self::authorize_path("crm-web", "https://crm.acme.test/cb", "&prompt=login");
        let r = client
            .get(self.server.url(&authorize))
            .send()
            .await
            .unwrap();
        let login = r.headers()["location"].to_str().unwrap().to_string();
        let page = client
            .get(self.server.url(&login))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut post = client
            .post(self.server.url("/t/acme/login"))
            .header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            post = post.header(*name, *value);
        }
        post.body(format!(
            "flow={}&csrf={}&region=CN&account={}&password={}&agree=yes",
            hidden(&page, "flow"),
            hidden(&page, "csrf"),
            enc(account),
            enc(PASSWORD)
        ))
        .send()
        .await
        .unwrap()
    }

    /// Adds an active user of the sales department with only an email address (no password:
    /// they sign in by code).
    pub fn add_user_by_email(&self, email: &str, name: &str) {
        use sesame::store::users;
        let acme = sesame::tenant::TenantId::parse("acme").unwrap();
        let now = self.t.app.now();
        let new = users::NewUser {
            id: None,
            profile: users::UserProfile {
                email: sesame::account::Email::parse(email),
                display_name: name.into(),
                department_id: Some("sales".into()),
                ..Default::default()
            },
            status: users::UserStatus::Active,
            password_hash: None,
            must_change_password: false,
        };
        self.t
            .app
            .store
            .run_blocking(|c| users::insert(c, &acme, &new, now))
            .unwrap();
    }

    /// [`Browser::sign_in`] with another password.
    pub async fn sign_in_with(
        &self,
        client: &str,
        redirect: &str,
        account: &str,
        password: &str,
    ) -> std::collections::HashMap<String, String> {
        let login = self.start(client, redirect, "&prompt=login").await;
        let r = self.submit(&login, account, password, "").await;
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

    /// A refresh grant with the client's Basic credentials `auth`.
    pub async fn refresh(&self, auth: &str, token: &str) -> (StatusCode, Value) {
        self.token(
            Some(auth),
            &format!("grant_type=refresh_token&refresh_token={}", enc(token)),
        )
        .await
    }

    pub async fn redeem(&self, code: &str) -> (StatusCode, Value) {
        self.redeem_at("crm-web", CRM_SECRET, "https://crm.acme.test/cb", code)
            .await
    }

    /// Redeems a wiki code (the tenant's second confidential client).
    pub async fn redeem_wiki(&self, code: &str) -> (StatusCode, Value) {
        self.redeem_at("wiki", WIKI_SECRET, "https://wiki.acme.test/cb", code)
            .await
    }

    pub async fn redeem_at(
        &self,
        client: &str,
        secret: &str,
        redirect: &str,
        code: &str,
    ) -> (StatusCode, Value) {
        self.token(
            Some(&basic(client, secret)),
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}",
                enc(code),
                enc(redirect)
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

    /// What introspection (RFC 7662) tells the client with Basic credentials `auth` of `token`.
    pub async fn introspect(&self, auth: &str, token: &str) -> Value {
        let r = self
            .server
            .client
            .post(self.server.url("/t/acme/introspect"))
            .header("authorization", auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}", enc(token)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
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
