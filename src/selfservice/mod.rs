//! The account page, `/t/{tenant}/account`: a signed-in user's profile, password, email address
//! and mobile number (each changed by a code sent to the new one), and sessions. Reaching it
//! signed out starts a sign-in of its own (protocol `account`) that comes back here.
//!
//! Every form carries a CSRF token bound to the browser and to the session it was shown in, so a
//! form from a session that has ended (or another user's) is refused.

mod contact;
mod profile;
mod sessions;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;

use crate::app::App;
use crate::codes::Destination;
use crate::flow::password::{PasswordPolicy, Rule, rules_for_page};
use crate::flow::state::{Protocol, Requirements};
use crate::flow::{alerts, cookies, language, login, session};
use crate::i18n::{Locale, Text};
use crate::oidc::form::OAuthForm;
use crate::store::apps::Channel as AppChannel;
use crate::store::sessions::Session;
use crate::store::{sessions as session_store, users};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;
use crate::web::{self, ClientInfo};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/account", get(page))
        .route("/account/profile", post(profile::update))
        .route("/account/password", post(profile::change_password))
        .route("/account/contact", post(contact::send))
        .route("/account/contact/confirm", post(contact::confirm))
        .route("/account/sessions/end", post(sessions::end))
}

/// The account page as a redirect: where an account sign-in ends, and where forms that
/// succeeded go (`done` names the notice to show).
pub fn home(tenant: &TenantCtx) -> Response {
    redirect(&format!("{}/account", login::tenant_path(tenant)))
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// The signed-in user, the session they are in, and what a page for them needs.
pub(crate) struct Me {
    pub session: Session,
    pub user: users::User,
    pub browser: String,
    pub locale: Locale,
}

impl Me {
    /// The request's live session and its user, if the user may still sign in.
    async fn load(
        app: &App,
        tenant: &TenantCtx,
        headers: &HeaderMap,
    ) -> Result<Option<Me>, PageError> {
        let Some(session) = session::current(app, tenant.id(), headers).await? else {
            return Ok(None);
        };
        let (t, uid) = (tenant.id().clone(), session.user_id.clone());
        let user = app.store.run(move |c| users::find(c, &t, &uid)).await?;
        let Some(user) =
            user.filter(|u| login::check_account(u, app.now()) == login::AccountCheck::Allowed)
        else {
            return Ok(None);
        };
        let browser = cookies::read(headers, &session::jar(app).browser_name()).unwrap_or_default();
        let locale = user
            .profile
            .locale
            .as_deref()
            .and_then(Locale::from_tag)
            .unwrap_or_else(|| language::locale(tenant, headers, &[]));
        Ok(Some(Me {
            session,
            user,
            browser,
            locale,
        }))
    }

    /// A posted form of the page and who posted it: its CSRF token must be this session's.
    async fn form(
        app: &App,
        tenant: &TenantCtx,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(OAuthForm, Me), PageError> {
        let form = OAuthForm::parse(body)
            .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
        let me = Me::load(app, tenant, headers)
            .await?
            .ok_or_else(|| PageError::Refused(Text::new("account.signed_out")))?;
        if !app
            .csrf
            .verify(Some(&me.browser), &me.purpose(), form.get("csrf"))
        {
            return Err(PageError::Refused(Text::new("login.form_expired")));
        }
        Ok((form, me))
    }

    /// Whether the user signed in (with a password or a code) recently enough to change where
    /// codes and reset links go, or to set a first password: a borrowed session alone must not
    /// be enough to take the account over.
    fn fresh(&self, app: &App) -> bool {
        app.now().0 - self.session.auth_time.0 <= REAUTH_WINDOW
    }

    fn purpose(&self) -> String {
        format!("account\u{0}{}", self.session.sid)
    }
}

/// Seconds a sign-in counts as recent for [`Me::fresh`].
pub const REAUTH_WINDOW: i64 = 900;

/// The error a change asks for a recent sign-in with.
fn reauth() -> Text {
    Text::new("account.reauth")
}

/// A code was sent to a new address or number, and the page asks for it.
pub(crate) struct Pending {
    pub to: Destination,
    pub region: String,
}

/// What the page shows besides the account.
#[derive(Default)]
pub(crate) struct View<'a> {
    pub notice: Option<Text>,
    pub error: Option<Text>,
    pub pending: Option<Pending>,
    /// Password rules the last attempt broke.
    pub broken: &'a [Rule],
}

/// Notices a successful form's redirect names (`?done=…`).
const DONE: &[(&str, &str)] = &[
    ("profile", "account.done_profile"),
    ("password", "account.done_password"),
    ("email", "account.done_email"),
    ("phone", "account.done_phone"),
    ("session", "account.done_session"),
    ("sessions", "account.done_sessions"),
];

/// `GET /t/{tenant}/account`
async fn page(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = OAuthForm::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let Some(me) = Me::load(&app, &tenant, &headers).await? else {
        return sign_in_first(&app, &tenant, &headers, false).await;
    };
    // "Sign in again" before a sensitive change: a fresh sign-in of the same user keeps the
    // session and renews its sign-in time.
    if params.get("reauth") == Some("1") {
        return sign_in_first(&app, &tenant, &headers, true).await;
    }
    let notice = params
        .get("done")
        .and_then(|d| DONE.iter().find(|(k, _)| *k == d))
        .map(|(_, key)| Text::new(key));
    render(
        &app,
        &tenant,
        &me,
        View {
            notice,
            ..View::default()
        },
    )
    .await
}

/// Starts a sign-in that returns to the account page.
async fn sign_in_first(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    again: bool,
) -> Result<Response, PageError> {
    let locale = language::locale(tenant, headers, &[]);
    let needs = Requirements {
        client_id: "account".into(),
        client_name: app
            .templates
            .catalogs
            .plain(locale, "account.app_name", &[]),
        app_id: None,
        channel: AppChannel::Web,
        force_login: again,
        max_age: None,
        classes: Vec::new(),
        login_hint: None,
        ui_locales: Vec::new(),
        return_to: format!("{}/account", tenant.issuer),
    };
    let id = crate::flow::store(
        app,
        tenant,
        Protocol::Account,
        &needs,
        serde_json::json!({}),
        None,
    )
    .await?;
    Ok(crate::flow::to_sign_in(app, tenant, headers, &id))
}

/// A moment as the page shows it.
fn when(at: crate::clock::UnixTime) -> String {
    crate::flow::password::format_time(at)
}

async fn render(
    app: &App,
    tenant: &TenantCtx,
    me: &Me,
    view: View<'_>,
) -> Result<Response, PageError> {
    let (t, uid, now) = (tenant.id().clone(), me.user.id.clone(), app.now());
    let live = app
        .store
        .run(move |c| session_store::list_for_user(c, &t, &uid, now))
        .await?;
    let sessions: Vec<_> = live
        .iter()
        .map(|s| {
            context! {
                sid => &s.sid,
                current => s.sid == me.session.sid,
                browser => s.user_agent.as_deref().and_then(alerts::describe_browser),
                ip => s.ip.as_deref().unwrap_or(""),
                signed_in => when(s.auth_time),
                last_seen => when(s.last_seen_at),
                remembered => s.remember,
            }
        })
        .collect();
    let p = &me.user.profile;
    let base = login::tenant_path(tenant);
    let locale = me.locale;
    let tx = &app.templates;
    let pending = view.pending.as_ref().map(|pending| {
        context! {
            channel => pending.to.channel.as_str(),
            address => &pending.to.address,
            region => &pending.region,
        }
    });
    let region = tenant
        .tenant
        .settings
        .get("default_region")
        .and_then(|v| v.as_str())
        .unwrap_or("CN");
    let html = tx.render_in(
        "account.html",
        locale,
        context! {
            tenant_name => &tenant.tenant.display_name,
            base => &base,
            csrf => app.csrf.token(&me.browser, &me.purpose()),
            notice => view.notice.as_ref().map(|n| tx.text(n, locale)),
            error => view.error.as_ref().map(|e| tx.text(e, locale)),
            reauth_needed => view.error.as_ref().is_some_and(|e| e.key == "account.reauth"),
            display_name => &p.display_name,
            username => p.username.as_ref().map(|u| u.as_str()),
            email => p.email.as_ref().map(|e| e.as_str()),
            email_verified => me.user.email_verified,
            phone => p.phone.as_ref().map(|x| x.as_str()),
            phone_verified => me.user.phone_verified,
            employee_no => &p.employee_no,
            locale_choice => &p.locale,
            languages => Locale::ALL.iter().map(|l| context! { tag => l.tag(), name => l.native_name() }).collect::<Vec<_>>(),
            regions => login::regions(app, locale),
            region => region,
            pending => pending,
            min_length => PasswordPolicy::of(&tenant.tenant).min_length,
            rules => rules_for_page(app, tenant, locale, view.broken),
            account => p.username.as_ref().map(|u| u.as_str().to_string()).unwrap_or_default(),
            sessions => sessions,
            logout_url => format!("{base}/logout"),
            reauth_url => format!("{base}/account?reauth=1"),
            has_password => me.user.has_password,
            consents_url => format!("{base}/account/consents"),
        },
    )?;
    Ok(web::page(StatusCode::OK, html, None))
}

/// Where a form that succeeded sends the browser: the page, with its notice.
fn done(tenant: &TenantCtx, what: &str) -> Response {
    redirect(&format!(
        "{}/account?done={what}",
        login::tenant_path(tenant)
    ))
}

/// Audits what the user did to their own account.
async fn audit(
    app: &App,
    tenant: &TenantCtx,
    client: &ClientInfo,
    me: &Me,
    action: &'static str,
) -> Result<(), PageError> {
    login::record(
        app,
        tenant,
        client,
        &me.user.id,
        action,
        Some(&me.user.id),
        "success",
    )
    .await
}
