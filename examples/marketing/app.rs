//! A tiny marketing app that signs its users in through Sesame with SAML 2.0, using the
//! service-provider side of the independent `samael` crate: it reads Sesame's IdP metadata, sends
//! an AuthnRequest over HTTP-Redirect, and accepts the Response Sesame posts back only after
//! samael has verified its signature against that metadata and checked its audience, recipient,
//! validity window and `InResponseTo`. The home page shows the NameID, the attributes and the
//! roles. Sessions live in memory; it is an example, not a product.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use samael::metadata::EntityDescriptor;
use samael::schema::Assertion;
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml;
use serde::Deserialize;

/// Where Sesame is and who this app is there.
#[derive(Debug, Clone)]
pub struct MarketingConfig {
    /// Sesame's IdP metadata, e.g. `http://127.0.0.1:8080/t/demo/saml/metadata`.
    pub idp_metadata_url: String,
    /// This app's own base URL, e.g. `http://127.0.0.1:3001`. The entityID is
    /// `{base_url}/metadata` and the assertion consumer service `{base_url}/acs`.
    pub base_url: String,
}

/// What one signed-in visitor is shown.
struct SignedIn {
    name_id: String,
    name_id_format: Option<String>,
    session_index: Option<String>,
    attributes: Vec<(String, Vec<String>)>,
}

struct Marketing {
    sp: ServiceProvider,
    sso_url: String,
    /// RelayState → the ID of the AuthnRequest it went out with, so a Response is accepted only
    /// in answer to a request this app made (samael checks `InResponseTo` against it).
    pending: Mutex<HashMap<String, String>>,
    sessions: Mutex<HashMap<String, SignedIn>>,
}

type Shared = Arc<Marketing>;

const COOKIE: &str = "marketing_session";

/// The attribute Sesame delivers the user's roles in (see `examples/demo.toml`).
pub const ROLES: &str = "roles";

/// Fetches Sesame's metadata and builds the app.
pub async fn router(config: MarketingConfig) -> anyhow::Result<Router> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let xml = http
        .get(&config.idp_metadata_url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("fetching {}", config.idp_metadata_url))?
        .text()
        .await?;
    let idp: EntityDescriptor = xml
        .parse()
        .with_context(|| format!("parsing the metadata at {}", config.idp_metadata_url))?;
    let sso_url = idp
        .idp_sso_descriptors
        .as_ref()
        .and_then(|d| d.first())
        .and_then(|d| {
            d.single_sign_on_services
                .iter()
                .find(|s| s.binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect")
        })
        .map(|s| s.location.clone())
        .ok_or_else(|| anyhow!("the IdP metadata has no HTTP-Redirect SSO service"))?;
    let sp = ServiceProviderBuilder::default()
        .entity_id(format!("{}/metadata", config.base_url))
        .metadata_url(format!("{}/metadata", config.base_url))
        .acs_url(format!("{}/acs", config.base_url))
        .idp_metadata(idp)
        .allowed_signature_algorithms(Some(vec![
            samael::crypto::AllowedSignatureAlgorithm::RsaSha256,
        ]))
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    let app = Arc::new(Marketing {
        sp,
        sso_url,
        pending: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/acs", post(acs))
        .route("/metadata", get(metadata))
        .route("/logout", post(logout))
        .with_state(app))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn random() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Marketing</title></head><body><h1>Marketing</h1>{body}</body></html>"
    ))
}

async fn home(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(id) = session_id(&headers) else {
        return signed_out();
    };
    let Ok(sessions) = app.sessions.lock() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "lock poisoned").into_response();
    };
    let Some(user) = sessions.get(&id) else {
        return signed_out();
    };
    let rows: String = user
        .attributes
        .iter()
        .map(|(name, values)| {
            format!(
                "<tr><th>{}</th><td class=\"attribute\" data-name=\"{}\">{}</td></tr>",
                escape(name),
                escape(name),
                escape(&values.join(", "))
            )
        })
        .collect();
    let roles = user
        .attributes
        .iter()
        .find(|(name, _)| name == ROLES)
        .map(|(_, v)| v.join(", "))
        .unwrap_or_default();
    page(&format!(
        "<p id=\"welcome\">Signed in as <b id=\"name-id\">{}</b></p>\
         <p>NameID format: <code>{}</code>; session index: <code>{}</code></p>\
         <p>Roles: <span id=\"roles\">{}</span></p>\
         <table id=\"attributes\">{rows}</table>\
         <form method=\"post\" action=\"/logout\"><button id=\"logout\">Sign out of Marketing</button></form>",
        escape(&user.name_id),
        escape(user.name_id_format.as_deref().unwrap_or("unspecified")),
        escape(user.session_index.as_deref().unwrap_or("")),
        escape(&roles),
    ))
    .into_response()
}

fn signed_out() -> Response {
    page("<p>You are not signed in.</p><p><a id=\"login\" href=\"/login\">Sign in with Sesame</a></p>")
        .into_response()
}

/// Sends the browser to Sesame with an AuthnRequest (HTTP-Redirect binding).
async fn login(State(app): State<Shared>) -> Response {
    let request = match app.sp.make_authentication_request(&app.sso_url) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let relay = random();
    let url = match request.redirect(&relay) {
        Ok(Some(url)) => url,
        Ok(None) | Err(_) => {
            return (StatusCode::BAD_GATEWAY, "cannot encode the request").into_response();
        }
    };
    if let Ok(mut pending) = app.pending.lock() {
        pending.insert(relay, request.id);
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    response: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// The assertion consumer service: Sesame's Response arrives here by HTTP-POST.
async fn acs(State(app): State<Shared>, Form(form): Form<AcsForm>) -> Response {
    let request_id = form
        .relay_state
        .as_ref()
        .and_then(|relay| app.pending.lock().ok()?.remove(relay));
    let Some(request_id) = request_id else {
        return (
            StatusCode::BAD_REQUEST,
            page("<p id=\"error\">This sign-in was not started here.</p>"),
        )
            .into_response();
    };
    let assertion = match app
        .sp
        .parse_base64_response(&form.response, Some(&[request_id.as_str()]))
    {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::FORBIDDEN,
                page(&format!(
                    "<p id=\"error\">The sign-in was refused: {}</p>",
                    escape(&e.to_string())
                )),
            )
                .into_response();
        }
    };
    let Some(user) = signed_in(&assertion) else {
        return (
            StatusCode::FORBIDDEN,
            page("<p id=\"error\">The assertion names nobody.</p>"),
        )
            .into_response();
    };
    let id = random();
    if let Ok(mut sessions) = app.sessions.lock() {
        sessions.insert(id.clone(), user);
    }
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax"))
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn signed_in(assertion: &Assertion) -> Option<SignedIn> {
    let name_id = assertion.subject.as_ref()?.name_id.as_ref()?;
    let attributes = assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| &s.attributes)
        .filter_map(|a| {
            let values = a.values.iter().filter_map(|v| v.value.clone()).collect();
            Some((a.name.clone()?, values))
        })
        .collect();
    Some(SignedIn {
        name_id: name_id.value.clone(),
        name_id_format: name_id.format.clone(),
        session_index: assertion
            .authn_statements
            .iter()
            .flatten()
            .find_map(|s| s.session_index.clone()),
        attributes,
    })
}

/// This app's SP metadata, for `sesame sp add --metadata`.
async fn metadata(State(app): State<Shared>) -> Response {
    match app.sp.metadata().and_then(|m| m.to_string()) {
        Ok(xml) => (
            [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
            xml,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Signs out of this app only; the Sesame session stays (signing in again asks no password).
async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if let (Some(id), Ok(mut sessions)) = (session_id(&headers), app.sessions.lock()) {
        sessions.remove(&id);
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("marketing_session=; Path=/; Max-Age=0"),
    );
    r
}
