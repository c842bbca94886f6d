//! A tiny CRM that signs its users in through Sesame with OpenID Connect: authorization code
//! flow with PKCE (S256) and a nonce, driven by the independent `openidconnect` crate, the ID
//! token and `at_hash` verified by it, claims shown on the home page, and logout through
//! Sesame's `end_session_endpoint`. Sessions live in memory; it is an example, not a product.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use serde_json::Value;

/// Where Sesame is and who this app is there.
#[derive(Debug, Clone)]
pub struct CrmConfig {
    /// e.g. `http://127.0.0.1:8080/t/demo`
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// This app's own base URL, e.g. `http://127.0.0.1:3000`.
    pub base_url: String,
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Pending {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
}

struct SignedIn {
    claims: Value,
    userinfo: Value,
    id_token: String,
}

struct Crm {
    config: CrmConfig,
    client: Client,
    http: openidconnect::reqwest::Client,
    end_session: Option<String>,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, SignedIn>>,
}

type Shared = Arc<Crm>;

const COOKIE: &str = "crm_session";

/// Discovers Sesame's metadata and builds the app.
pub async fn router(config: CrmConfig) -> anyhow::Result<Router> {
    let http = openidconnect::reqwest::ClientBuilder::new()
        // Following redirects opens the client up to SSRF.
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()?;
    let issuer = IssuerUrl::new(config.issuer.clone())?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .with_context(|| format!("discovering {}", config.issuer))?;
    let raw: Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            config.issuer
        ))
        .send()
        .await?
        .json()
        .await?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        Some(ClientSecret::new(config.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(format!("{}/callback", config.base_url))?);
    let crm = Arc::new(Crm {
        end_session: raw["end_session_endpoint"].as_str().map(str::to_string),
        config,
        client,
        http,
        pending: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .with_state(crm))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)?
        .to_str()
        .ok()?
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>CRM</title></head><body><h1>CRM</h1>{body}</body></html>"
    ))
}

async fn home(State(crm): State<Shared>, headers: HeaderMap) -> Response {
    let sessions = crm.sessions.lock().map_err(|_| ()).ok();
    let signed_in = session_id(&headers).and_then(|id| {
        sessions
            .as_ref()
            .and_then(|s| s.get(&id).map(|x| (x.claims.clone(), x.userinfo.clone())))
    });
    match signed_in {
        Some((claims, userinfo)) => {
            let rows: String = claims
                .as_object()
                .into_iter()
                .flatten()
                .chain(userinfo.as_object().into_iter().flatten())
                .map(|(k, v)| {
                    format!(
                        "<tr><th>{}</th><td id=\"claim-{}\">{}</td></tr>",
                        escape(k),
                        escape(k),
                        escape(&v.to_string())
                    )
                })
                .collect();
            let name = userinfo["name"]
                .as_str()
                .or(claims["name"].as_str())
                .unwrap_or("");
            page(&format!(
                "<p id=\"welcome\">Signed in as {}</p><table>{rows}</table>\
                 <form method=\"post\" action=\"/logout\"><button id=\"logout\">Log out</button></form>",
                escape(name)
            ))
            .into_response()
        }
        None => {
            page("<p><a id=\"login\" href=\"/login\">Sign in with Sesame</a></p>").into_response()
        }
    }
}

async fn login(State(crm): State<Shared>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = crm
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("phone".into()))
        .set_pkce_challenge(challenge)
        .url();
    if let Ok(mut pending) = crm.pending.lock() {
        pending.insert(state.secret().clone(), Pending { verifier, nonce });
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(State(crm): State<Shared>, Query(cb): Query<Callback>) -> Response {
    match finish(&crm, cb).await {
        Ok(session) => {
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            page(&format!(
                "<p id=\"error\">{}</p>",
                escape(&format!("{e:#}"))
            )),
        )
            .into_response(),
    }
}

async fn finish(crm: &Crm, cb: Callback) -> anyhow::Result<String> {
    if let Some(error) = cb.error {
        return Err(anyhow!("Sesame answered {error}"));
    }
    let state = cb.state.ok_or_else(|| anyhow!("no state"))?;
    let pending = crm
        .pending
        .lock()
        .map_err(|_| anyhow!("lock poisoned"))?
        .remove(&state)
        .ok_or_else(|| anyhow!("unknown state"))?;
    let code = cb.code.ok_or_else(|| anyhow!("no code"))?;
    let tokens = crm
        .client
        .exchange_code(AuthorizationCode::new(code))?
        .set_pkce_verifier(pending.verifier)
        .request_async(&crm.http)
        .await
        .context("redeeming the code")?;
    let id_token = tokens.id_token().ok_or_else(|| anyhow!("no ID token"))?;
    let verifier = crm.client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &pending.nonce)
        .context("verifying the ID token")?;
    if let Some(expected) = claims.access_token_hash() {
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg()?,
            id_token.signing_key(&verifier)?,
        )?;
        if actual != *expected {
            return Err(anyhow!(
                "the access token does not match the ID token's at_hash"
            ));
        }
    }
    let userinfo: CoreUserInfoClaims = crm
        .client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )?
        .request_async(&crm.http)
        .await
        .context("reading UserInfo")?;
    // The ID token is verified above; its payload is shown as it is, Sesame's own claims included.
    let raw = id_token.to_string();
    let payload = raw.split('.').nth(1).unwrap_or_default();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    let session = CsrfToken::new_random().secret().clone();
    crm.sessions
        .lock()
        .map_err(|_| anyhow!("lock poisoned"))?
        .insert(
            session.clone(),
            SignedIn {
                claims,
                userinfo: serde_json::to_value(&userinfo)?,
                id_token: raw,
            },
        );
    Ok(session)
}

async fn logout(State(crm): State<Shared>, headers: HeaderMap) -> Response {
    let ended = session_id(&headers).and_then(|id| crm.sessions.lock().ok()?.remove(&id));
    let home = format!("{}/", crm.config.base_url);
    match (ended, &crm.end_session) {
        (Some(s), Some(end)) => {
            let mut url = match url::Url::parse(end) {
                Ok(u) => u,
                Err(_) => return Redirect::to("/").into_response(),
            };
            url.query_pairs_mut()
                .append_pair("id_token_hint", &s.id_token)
                .append_pair("post_logout_redirect_uri", &home);
            Redirect::to(url.as_str()).into_response()
        }
        _ => Redirect::to("/").into_response(),
    }
}
