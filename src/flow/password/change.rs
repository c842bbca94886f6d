//! The change-password step of a sign-in: after a temporary password an administrator set, or
//! one older than the tenant's maximum age, the user chooses a new one before any token is
//! issued (`POST /t/{tenant}/login/password`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;

use super::{PasswordPolicy, Rule, Why};
use crate::app::App;
use crate::flow::state::{self, LoginFlow, Progress};
use crate::flow::{FlowForm, expired, language, login, session};
use crate::i18n::Locale;
use crate::store::{flows, users};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;
use crate::web::{self, ClientInfo};

/// Records who signed in (not yet a session) and shows the change-password step, for a user
/// [`super::must_change`] names.
pub async fn ask(
    app: &App,
    tenant: &TenantCtx,
    flow: &LoginFlow,
    browser: &str,
    locale: Locale,
    user: &users::User,
    signed_in: session::SignedIn,
) -> Result<Response, PageError> {
    let why = super::must_change(tenant, user, app.now()).unwrap_or(Why::FirstLogin);
    let progress = Progress {
        user_id: Some(user.id.clone()),
        awaiting: Some(state::Awaiting::PasswordChange),
        amr: signed_in.amr,
        auth_time: Some(signed_in.auth_time),
        remember: signed_in.remember,
    };
    let state = serde_json::to_value(&progress).unwrap_or_default();
    let (t, id, version, now, uid) = (
        tenant.id().clone(),
        flow.id.clone(),
        flow.version,
        app.now(),
        user.id.clone(),
    );
    let saved = app
        .store
        .run(move |c| flows::save(c, &t, &id, version, &state, Some(&uid), now))
        .await?;
    if !saved {
        return expired(app, locale);
    }
    render(app, tenant, flow, browser, locale, user, why, &[])
}

/// The name a password manager files the new password under.
fn account_name(user: &users::User) -> String {
    let p = &user.profile;
    p.username
        .as_ref()
        .map(|u| u.as_str().to_string())
        .or_else(|| p.email.as_ref().map(|e| e.as_str().to_string()))
        .or_else(|| p.phone.as_ref().map(|x| x.as_str().to_string()))
        .unwrap_or_default()
}

#[expect(
    clippy::too_many_arguments,
    reason = "one page's parts, each from a different place"
)]
fn render(
    app: &App,
    tenant: &TenantCtx,
    flow: &LoginFlow,
    browser: &str,
    locale: Locale,
    user: &users::User,
    why: Why,
    broken: &[Rule],
) -> Result<Response, PageError> {
    let t = &app.templates;
    let policy = PasswordPolicy::of(&tenant.tenant);
    let html = t.render_in(
        "change_password.html",
        locale,
        context! {
            tenant_name => &tenant.tenant.display_name,
            intro => t.text(&why.intro(), locale),
            action => format!("{}/login/password", login::tenant_path(tenant)),
            flow => &flow.id,
            csrf => app.csrf.token(browser, &flow.id),
            username => account_name(user),
            min_length => policy.min_length,
            rules => super::rules_for_page(app, tenant, locale, broken),
            error => broken.first().map(|r| t.text(&r.text(), locale)),
        },
    )?;
    // The form's submission ends at the app (a redirect after the POST), which form-action covers.
    Ok(web::page(StatusCode::OK, html, Some(&flow.needs.return_to)))
}

/// `POST /t/{tenant}/login/password`: the new password. No token is issued before it is set.
pub async fn submit(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let FlowForm {
        form,
        browser,
        flow,
    } = crate::flow::flow_form(&app, &tenant, &headers, &body).await?;
    let Some(flow) = flow else {
        return expired(&app, language::locale(&tenant, &headers, &[]));
    };
    let locale = language::locale(&tenant, &headers, &flow.needs.ui_locales);
    let (Some(user_id), Some(auth_time), Some(state::Awaiting::PasswordChange)) = (
        flow.progress.user_id.clone(),
        flow.progress.auth_time,
        flow.progress.awaiting,
    ) else {
        return expired(&app, locale);
    };
    let (t, uid) = (tenant.id().clone(), user_id.clone());
    let Some(user) = app.store.run(move |c| users::find(c, &t, &uid)).await? else {
        return expired(&app, locale);
    };
    let now = app.now();
    let Some(why) = super::must_change(&tenant, &user, now) else {
        return expired(&app, locale);
    };
    if login::check_account(&user, now) != login::AccountCheck::Allowed {
        return expired(&app, locale);
    }
    let new = form.get("new_password").unwrap_or_default();
    let policy = PasswordPolicy::of(&tenant.tenant);
    let mut broken = policy.check(new, form.get("confirm_password"), &user.profile);
    if broken.is_empty() && super::reused(&app, &tenant, &user.id, new).await? {
        broken.push(Rule::NotRecent {
            count: policy.history,
        });
    }
    if !broken.is_empty() {
        return render(&app, &tenant, &flow, &browser, locale, &user, why, &broken);
    }
    super::store(&app, &tenant, &user_id, new).await?;
    login::record(
        &app,
        &tenant,
        &client,
        &user_id,
        "password.change",
        Some(&user_id),
        "success",
    )
    .await?;
    let signed_in = session::SignedIn {
        user_id,
        amr: flow.progress.amr.clone(),
        auth_time,
        user_agent: client.user_agent.clone(),
        ip: client.ip.clone(),
        remember: flow.progress.remember,
    };
    crate::flow::finish(&app, &tenant, &headers, &client, flow, signed_in).await
}
