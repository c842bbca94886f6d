//! OpenID Connect against a real `sesame serve`, driven by the independent `openidconnect` crate
//! for the happy paths (discovery, code + PKCE + nonce, ID token and `at_hash` verification,
//! UserInfo, refresh, introspection, revocation) and by raw HTTP for what a library would never
//! send.

mod browser;
mod nodes;
mod rp;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreTokenIntrospectionResponse,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope,
    TokenIntrospectionResponse, TokenResponse,
};

use crate::support::{Database, Sesame, browser, enc, query, sign_in_via};

pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub fn tenant(redirect_uri: &str) -> String {
    format!(
        r#"
[[tenants]]
id = "acme"
display_name = "Acme"

[[tenants.departments]]
id = "sales"
name = "Sales"

[[tenants.apps]]
id = "crm"
name = "CRM"
web_access = {{ departments = ["sales"] }}

[[tenants.roles]]
id = "crm:rep"
name = "Sales rep"
app = "crm"

[[tenants.users]]
username = "alice"
display_name = "Alice Liddell"
email = "alice@acme.test"
phone = "+8613800138000"
department = "sales"
roles = ["crm:rep"]
password = "{password}"

[[tenants.users]]
username = "newbie"
display_name = "New Hire"
department = "sales"
password = "temporary password 1"
must_change_password = true

[[tenants.clients]]
client_id = "crm-web"
name = "CRM"
app = "crm"
first_party = true
redirect_uris = ["{redirect_uri}"]
post_logout_redirect_uris = ["{home}"]
secret = "{secret}"
"#,
        password = crate::support::PASSWORD,
        home = redirect_uri.trim_end_matches("/callback").to_string() + "/",
        secret = SECRET,
    )
}

pub const SECRET: &str = "crm-secret-0123456789-0123456789-0123";
const REDIRECT: &str = "http://127.0.0.1:3999/callback";

fn http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_client_library_completes_every_happy_path() {
    let db = Database::sqlite();
    let sesame = Sesame::start(&db, MASTER_KEY, Some(&tenant(REDIRECT))).await;
    let http = http();
    let issuer = IssuerUrl::new(sesame.issuer("acme")).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("openidconnect accepts the discovery document and JWKS");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("crm-web".into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    .set_introspection_url(
        IntrospectionUrl::new(format!("{}/introspect", sesame.issuer("acme"))).unwrap(),
    );

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = browser();
    let back = sign_in_via(&browser, url.as_str(), &sesame.base, "alice").await;
    let p = query(&back);
    assert_eq!(p["state"], *state.secret());
    assert_eq!(p["iss"], sesame.issuer("acme"));

    let tokens = client
        .exchange_code(AuthorizationCode::new(p["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the token response is accepted");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies");
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(actual, *expected);
    assert_eq!(claims.email().unwrap().as_str(), "alice@acme.test");

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("UserInfo answers for the same subject");
    assert_eq!(info.preferred_username().unwrap().as_str(), "alice");

    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh works");
    let rotated = refreshed.refresh_token().expect("rotated").clone();
    assert_ne!(rotated.secret(), refresh.secret());

    let seen: CoreTokenIntrospectionResponse = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .expect("introspection answers");
    assert!(seen.active());
    assert_eq!(seen.client_id().unwrap().as_str(), "crm-web");

    // Presenting the rotated-away token again is the sign of a stolen family (RFC 9700
    // §4.14.2): the family, and every access token it issued, stops working.
    assert!(
        client
            .exchange_refresh_token(&refresh)
            .unwrap()
            .request_async(&http)
            .await
            .is_err(),
        "the rotated-away token is refused"
    );
    let seen: CoreTokenIntrospectionResponse = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .expect("introspection answers");
    assert!(
        !seen.active(),
        "the family's access token is revoked with it"
    );

    // The library refuses to revoke over plain http (as it should in production); the same
    // RFC 7009 request by hand. The family is already revoked, and RFC 7009 §2.2 answers 200
    // for a token that is no longer valid all the same.
    let r = http
        .post(format!("{}/revoke", sesame.issuer("acme")))
        .basic_auth("crm-web", Some(SECRET))
        .form(&[
            ("token", rotated.secret().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        client
            .exchange_refresh_token(&RefreshToken::new(rotated.secret().clone()))
            .unwrap()
            .request_async(&http)
            .await
            .is_err(),
        "a revoked refresh token is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_a_library_would_never_send_are_refused() {
    let db = Database::sqlite();
    let sesame = Sesame::start(&db, MASTER_KEY, Some(&tenant(REDIRECT))).await;
    let issuer = sesame.issuer("acme");
    let client = browser();
    let authorize = |redirect: &str, extra: &str| {
        format!(
            "{issuer}/authorize?response_type=code&client_id=crm-web&redirect_uri={}&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256{extra}",
            enc(redirect)
        )
    };
    // Near-miss redirect URIs: a page, never a redirect.
    for bad in [
        "http://127.0.0.1:3999/callback/x",
        "http://127.0.0.1:3998/callback",
        "http://127.0.0.1:3999/callback?x=1",
        "javascript:alert(1)",
    ] {
        let r = client.get(authorize(bad, "")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none());
    }
    // Downgrades: plain, or no method at all.
    for extra in ["&code_challenge_method=plain", ""] {
        let url = format!(
            "{issuer}/authorize?response_type=code&client_id=crm-web&redirect_uri={}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM{extra}",
            enc(REDIRECT)
        );
        let r = client.get(url).send().await.unwrap();
        let p = query(r.headers()["location"].to_str().unwrap());
        assert_eq!(p["error"], "invalid_request", "{extra}");
    }
    // A code redeemed twice.
    let back = sign_in_via(&client, &authorize(REDIRECT, ""), &sesame.base, "alice").await;
    let code = query(&back)["code"].clone();
    let redeem = || {
        client
            .post(format!("{issuer}/token"))
            .basic_auth("crm-web", Some(SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                (
                    "code_verifier",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                ),
            ])
            .send()
    };
    assert_eq!(redeem().await.unwrap().status(), 200);
    let again = redeem().await.unwrap();
    assert_eq!(again.status(), 400);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // Unknown grant types and malformed bodies are OAuth JSON, not HTML.
    let r = client
        .post(format!("{issuer}/token"))
        .basic_auth("crm-web", Some(SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
}
