//! Login flows and the browser SSO session: where protocols and sign-in methods meet.
//!
//! A protocol stores a flow (what it requires, and what it needs to answer later), the browser is
//! sent to the sign-in page, a method advances the flow, and [`finish`] turns the completed
//! flow into a fresh SSO session and hands back to the protocol that started it. Protocols never
//! see sign-in methods, and methods never see protocols.

pub mod access;
pub mod agreement;
pub mod alerts;
pub mod captcha;
pub mod code;
pub mod cookies;
pub mod language;
pub mod login;
pub mod password;
pub mod reset;
pub mod session;
pub mod state;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use minijinja::context;

use crate::app::App;
use crate::clock::UnixTime;
use crate::i18n::{Locale, Text};
use crate::oidc::form::OAuthForm;
use crate::store::tenants::{Tenant, TenantStatus};
use crate::store::{flows, users};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;
use crate::web::{self, ClientInfo};
use state::{LoginFlow, Protocol};

/// Routes relative to a tenant.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/login", get(login::page).post(login::submit))
        .route(
            "/login/password",
            axum::routing::post(password::change::submit),
        )
        .route("/login/code", axum::routing::post(code::submit))
        .route("/agreement", axum::routing::post(agreement::submit))
        .route("/login/code/send", axum::routing::post(code::send))
        .route("/forgot-password", get(reset::ask).post(reset::send))
        .route(
            "/forgot-password/code",
            axum::routing::post(reset::with_code),
        )
        .route(
            "/reset-password",
            get(reset::link_page).post(reset::with_link),
        )
        .route("/legal/{document}", get(legal))
        .route("/language/{tag}", get(language::switch))
}

/// Flow ids are 256-bit base64url values; anything else is not looked up.
pub(crate) fn plausible_id(id: &str) -> bool {
    (16..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The pending flow `id` names, if it is live.
pub async fn load(
    app: &App,
    tenant: &TenantCtx,
    id: Option<&str>,
) -> Result<Option<LoginFlow>, PageError> {
    let Some(id) = id.filter(|id| plausible_id(id)) else {
        return Ok(None);
    };
    let (t, id, now) = (tenant.id().clone(), id.to_string(), app.now());
    let found = app.store.run(move |c| flows::find(c, &t, &id, now)).await?;
    Ok(found.and_then(LoginFlow::from_stored))
}

/// A form posted on a flow's page: parsed, its CSRF token checked against this browser and the
/// flow, and the flow loaded (`None` when it is gone: the caller shows [`expired`]).
pub struct FlowForm {
    pub form: OAuthForm,
    /// The browser's CSRF binding (verified, so present).
    pub browser: String,
    pub flow: Option<LoginFlow>,
}

pub async fn flow_form(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<FlowForm, PageError> {
    let form = OAuthForm::parse(body)
        .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
    let browser = cookies::read(headers, &session::jar(app).browser_name());
    let flow_id = form.get("flow").unwrap_or_default().to_string();
    let browser = browser
        .filter(|b| app.csrf.verify(Some(b), &flow_id, form.get("csrf")))
        .ok_or(PageError::Refused(Text::new("login.form_expired")))?;
    let flow = load(app, tenant, Some(&flow_id)).await?;
    Ok(FlowForm {
        form,
        browser,
        flow,
    })
}

/// Why nobody of `tenant` can sign in at `now`, if so.
pub fn tenant_refusal(tenant: &Tenant, now: UnixTime) -> Option<Text> {
    match tenant.status {
        TenantStatus::Suspended => Some(Text::new("login.tenant_suspended")),
        TenantStatus::Trial if tenant.trial_expires_at.is_none_or(|t| t <= now) => {
            Some(Text::new("login.trial_ended"))
        }
        _ => None,
    }
}

/// The page for a sign-in whose flow is gone (expired, completed, or never existed).
pub fn expired(app: &App, locale: Locale) -> Result<Response, PageError> {
    message(
        app,
        locale,
        StatusCode::BAD_REQUEST,
        &Text::new("login.expired_title"),
        &Text::new("login.expired_text"),
        None,
    )
}

/// A page with a title, a sentence and optionally one link, in `locale`.
pub fn message(
    app: &App,
    locale: Locale,
    status: StatusCode,
    title: &Text,
    text: &Text,
    link: Option<(&str, &Text)>,
) -> Result<Response, PageError> {
    let t = &app.templates;
    let html = t.render_in(
        "message.html",
        locale,
        context! {
            title => t.text(title, locale),
            message => t.text(text, locale),
            link_url => link.map(|l| l.0),
            link_text => link.map(|l| t.text(l.1, locale)),
        },
    )?;
    Ok(web::page(status, html, link.map(|l| l.0)))
}

/// The flow is done: start a fresh SSO session, mark the flow complete (once), and let the
/// protocol that started it answer.
pub async fn finish(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    client: &ClientInfo,
    flow: LoginFlow,
    signed_in: session::SignedIn,
) -> Result<Response, PageError> {
    let locale = language::locale(tenant, headers, &flow.needs.ui_locales);
    // Every sign-in gets a new cookie value. The same user signing in again keeps the session
    // (and its apps); another user's previous session in this browser ends everywhere, with its
    // refresh tokens and a back-channel logout to its apps, as if that user had signed out.
    let previous = session::current(app, tenant.id(), headers).await?;
    let renewed = match &previous {
        Some(p) if p.user_id == signed_in.user_id => {
            session::renew(app, tenant, p, &signed_in).await?
        }
        Some(p) => {
            crate::oidc::logout::end(app, tenant, p).await?;
            None
        }
        None => None,
    };
    let (session, cookie) = match renewed {
        Some(renewed) => renewed,
        None => session::establish(app, tenant, signed_in).await?,
    };
    let (t, id, version, now) = (
        tenant.id().clone(),
        flow.id.clone(),
        flow.version,
        app.now(),
    );
    let user_id = session.user_id.clone();
    let completed = app
        .store
        .run(move |c| {
            let done = flows::complete(c, &t, &id, version, now)?;
            if done {
                users::record_login(c, &t, &user_id, now)?;
            }
            Ok(done)
        })
        .await?;
    let mut response = if completed {
        // Every sign-in form requires the agreement's box: the acceptance of the current version
        // is recorded once per version.
        let subject = app.subject(tenant.id(), &session.user_id).await?;
        if subject.is_some_and(|s| !agreement::accepted(tenant, &s)) {
            agreement::record(app, tenant, &session.user_id, client).await?;
        }
        alerts::after_sign_in(app, tenant, headers, client, &session.user_id, locale).await?;
        login::record(
            app,
            tenant,
            client,
            &session.user_id,
            "sign_in",
            Some(&session.user_id),
            "success",
        )
        .await?;
        match flow.protocol {
            Protocol::Account => crate::selfservice::home(tenant),
            Protocol::Oidc => {
                crate::oidc::authorize::resume(app, tenant, headers, &flow, &session).await?
            }
            Protocol::Saml => {
                crate::saml::sso::resume(app, tenant, headers, &flow, &session).await?
            }
        }
    } else {
        // A second tab or a double submit: the user is signed in, but this flow answered already.
        expired(app, locale)?
    };
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// `GET /t/{tenant}/legal/{terms|privacy}`: the tenant's Service Agreement or Privacy Policy, from
/// the tenant's settings (`terms_text`, `privacy_text`).
async fn legal(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    axum::extract::Path(params): axum::extract::Path<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let document = params
        .iter()
        .find(|(k, _)| k == "document")
        .map(|(_, v)| v.as_str());
    let version = agreement::current_version(&tenant);
    let (title, key) = match document {
        Some("terms") => (
            Text::new("legal.terms_title").with("version", version),
            "terms_text",
        ),
        Some("privacy") => (
            Text::new("legal.privacy_title").with("version", version),
            "privacy_text",
        ),
        _ => return Err(PageError::NotFound),
    };
    // The tenant's own document, as written; the page around it follows the reader's language.
    let text = match tenant.tenant.settings.get(key).and_then(|v| v.as_str()) {
        Some(body) => Text::new("common.verbatim").with("text", body),
        None => Text::new("legal.none").with("tenant", &tenant.tenant.display_name),
    };
    let locale = language::locale(&tenant, &headers, &[]);
    message(&app, locale, StatusCode::OK, &title, &text, None)
}

/// Stores a login flow for `protocol` that resumes with `resume` once `needs` are met, starting
/// from `progress` when part of it is done already; returns the flow's id.
pub async fn store(
    app: &App,
    tenant: &TenantCtx,
    protocol: Protocol,
    needs: &state::Requirements,
    resume: serde_json::Value,
    progress: Option<&state::Progress>,
) -> Result<String, PageError> {
    let id = crate::crypto::secret::random_token(32);
    let now = app.now();
    let expires_at = now.plus(app.config.session.login_flow_lifetime);
    let request = LoginFlow::request_json(needs, resume);
    let state = progress.map(|p| serde_json::to_value(p).unwrap_or_default());
    let user_id = progress.and_then(|p| p.user_id.clone());
    let (t, fid) = (tenant.id().clone(), id.clone());
    app.store
        .run(move |c| {
            flows::create(c, &t, &fid, protocol.as_str(), &request, expires_at, now)?;
            if let Some(state) = state {
                flows::save(c, &t, &fid, 0, &state, user_id.as_deref(), now)?;
            }
            Ok(())
        })
        .await?;
    Ok(id)
}

/// The redirect to the sign-in page of flow `id`, giving the browser its id cookie if it has
/// none yet.
pub fn to_sign_in(app: &App, tenant: &TenantCtx, headers: &HeaderMap, id: &str) -> Response {
    use axum::http::HeaderValue;
    use axum::response::IntoResponse;
    let (_, set_cookie) = session::browser(app, headers);
    let location = format!("{}/login?flow={id}", login::tenant_path(tenant));
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(set) = set_cookie {
        h.append(header::SET_COOKIE, set);
    }
    response
}
