//! Consent for third-party clients (OIDC Core §3.1.2.4): the user sees what the app asks for,
//! allows or denies once, and the grant is remembered until the user withdraws it on
//! `/account/consents` (which also revokes that app's refresh tokens). First-party clients (the
//! organization's own apps) never ask.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::authorize::{self, Decided};
use super::form::OAuthForm;
use super::request::AuthorizeRequest;
use super::scope::Scope;
use crate::app::App;
use crate::flow::state::{Awaiting, Progress, Requirements};
use crate::flow::{self, cookies, login, session};
use crate::i18n::{Locale, Text};
use crate::store::access_revocations::Revoke;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::clients::Client;
use crate::store::sessions::Session;
use crate::store::{consents, flows, refresh};
use crate::tenant::resolve::TenantCtx;
use crate::web::{self, ClientInfo, error::PageError};

/// What each scope lets the app do, in the user's words (a catalog key).
fn describe(scope: &str) -> Option<&'static str> {
    Some(match scope {
        "openid" => "consent.scope_openid",
        "profile" => "consent.scope_profile",
        "email" => "consent.scope_email",
        "phone" => "consent.scope_phone",
        "offline_access" => "consent.scope_offline_access",
        _ => return None,
    })
}

/// Shows the consent page for `req`, in a flow of its own that remembers who is deciding.
pub async fn ask(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    client: &Client,
    session: &Session,
) -> Result<Response, PageError> {
    let needs = Requirements {
        client_id: client.client_id.clone(),
        client_name: client.name.clone(),
        app_id: client.app_id.clone(),
        channel: client.channel,
        force_login: false,
        max_age: None,
        classes: Vec::new(),
        login_hint: None,
        ui_locales: req.ui_locales.clone(),
        return_to: req.reply.redirect_uri().to_string(),
    };
    let progress = Progress::awaiting(session, Awaiting::Consent);
    let flow_id = authorize::store_flow(app, tenant, req, needs, Some(&progress)).await?;
    let (browser, set_cookie) = session::browser(app, headers);
    let locale = flow::language::locale(tenant, headers, &req.ui_locales);
    let subject = app.subject(tenant.id(), &session.user_id).await?;
    let user_name = subject
        .as_ref()
        .and_then(|s| s.user.profile.shown_name())
        .unwrap_or(&session.user_id);
    let mut response = render(
        app, tenant, req, client, user_name, &flow_id, &browser, locale,
    )?;
    if let Some(set) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    Ok(response)
}

#[expect(clippy::too_many_arguments, reason = "what one page shows")]
fn render(
    app: &App,
    tenant: &TenantCtx,
    req: &AuthorizeRequest,
    client: &Client,
    user_name: &str,
    flow_id: &str,
    browser: &str,
    locale: Locale,
) -> Result<Response, PageError> {
    let scope = Scope::parse(&req.scope).unwrap_or_default();
    let mut scopes: Vec<&str> = scope.iter().filter_map(describe).collect();
    scopes.push("consent.scope_roles");
    let html = app.templates.render_in(
        "consent.html",
        locale,
        context! {
            tenant_name => &tenant.tenant.display_name,
            client_name => &client.name,
            user_name => user_name,
            scopes => scopes,
            action => format!("{}/consent", login::tenant_path(tenant)),
            flow => flow_id,
            csrf => app.csrf.token(browser, flow_id),
        },
    )?;
    Ok(web::page(
        StatusCode::OK,
        html,
        Some(req.reply.redirect_uri()),
    ))
}

/// `POST /t/{tenant}/consent`: allow or deny.
pub async fn submit(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client_info: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let flow::FlowForm { form, flow, .. } = flow::flow_form(&app, &tenant, &headers, &body).await?;
    let Some(flow) = flow else {
        return flow::expired(&app, flow::language::locale(&tenant, &headers, &[]));
    };
    let locale = flow::language::locale(&tenant, &headers, &flow.needs.ui_locales);
    let current = session::current(&app, tenant.id(), &headers).await?;
    let Some(session) = current.filter(|s| {
        flow.progress.user_id.as_deref() == Some(&s.user_id)
            && flow.progress.awaiting == Some(Awaiting::Consent)
    }) else {
        return flow::expired(&app, locale);
    };
    let Ok(req) = serde_json::from_value::<AuthorizeRequest>(flow.resume.clone()) else {
        return flow::expired(&app, locale);
    };
    let Some(client) = app.client(tenant.id(), &req.client_id).await? else {
        return flow::expired(&app, locale);
    };
    let allow = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(PageError::Invalid(Text::new("error.choose_option"))),
    };
    let (t, fid, version, now) = (
        tenant.id().clone(),
        flow.id.clone(),
        flow.version,
        app.now(),
    );
    let (uid, cid, scope) = (
        session.user_id.clone(),
        client.client_id.clone(),
        req.scope.clone(),
    );
    // A first-party client asked only because it sent prompt=consent: nothing to remember, and
    // nothing for the account page's list of outside apps.
    let remember = allow && !client.first_party;
    let ip = client_info.ip.clone();
    let completed = app
        .store
        .run(move |c| {
            crate::store::tx::write(c, |c| {
                let done = flows::complete(c, &t, &fid, version, now)?;
                if !done {
                    return Ok(false);
                }
                if remember {
                    let earlier = consents::find(c, &t, &uid, &cid)?.unwrap_or_default();
                    let mut all: Vec<&str> = earlier.split(' ').chain(scope.split(' ')).collect();
                    all.retain(|s| !s.is_empty());
                    all.sort_unstable();
                    all.dedup();
                    consents::grant(c, &t, &uid, &cid, &all.join(" "), now)?;
                }
                // What a user let an outside app see, and when, is the audit log's to answer.
                let (action, scope) = match allow {
                    true => ("consent.grant", scope.as_str()),
                    false => ("consent.deny", ""),
                };
                let event = NewAuditEvent {
                    actor: &uid,
                    action,
                    target: Some(&cid),
                    outcome: "success",
                    ip: ip.as_deref(),
                    details: serde_json::json!({ "scope": scope }),
                };
                audit::record(c, &t, &event, now)?;
                Ok(true)
            })
        })
        .await?;
    if !completed {
        return flow::expired(&app, locale);
    }
    if !allow {
        return Ok(req.reply.error(
            &app.templates,
            "access_denied",
            "the user denied the request",
        ));
    }
    authorize::answer(
        &app,
        &tenant,
        &headers,
        &req,
        &client,
        &session,
        Decided { consented: true },
    )
    .await
}

/// The CSRF purpose of the withdrawal forms, bound to the session they were shown in.
fn manage_purpose(session: &Session) -> String {
    format!("consents\u{0}{}", session.sid)
}

/// `GET /t/{tenant}/account/consents`: the third-party apps the signed-in user allowed.
pub async fn list(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let locale = flow::language::locale(&tenant, &headers, &[]);
    let Some(session) = session::current(&app, tenant.id(), &headers).await? else {
        return flow::message(
            &app,
            locale,
            StatusCode::UNAUTHORIZED,
            &Text::new("consents.signed_out_title"),
            &Text::new("consents.signed_out_text"),
            None,
        );
    };
    let (t, uid) = (tenant.id().clone(), session.user_id.clone());
    let granted = app
        .store
        .run(move |c| consents::list_for_user(c, &t, &uid))
        .await?;
    let mut rows = Vec::new();
    for (client_id, scope, _) in granted {
        let name = app
            .client(tenant.id(), &client_id)
            .await?
            .map_or_else(|| client_id.clone(), |c| c.name.clone());
        rows.push(context! { client_id => client_id, name => name, scope => scope });
    }
    let (browser, set_cookie) = session::browser(&app, &headers);
    let html = app.templates.render_in(
        "consents.html",
        locale,
        context! {
            tenant_name => &tenant.tenant.display_name,
            consents => rows,
            action => format!("{}/account/consents/revoke", login::tenant_path(&tenant)),
            csrf => app.csrf.token(&browser, &manage_purpose(&session)),
        },
    )?;
    let mut response = web::page(StatusCode::OK, html, None);
    if let Some(set) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    Ok(response)
}

/// `POST /t/{tenant}/account/consents/revoke`: withdraws one app's access.
pub async fn revoke(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client_info: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = OAuthForm::parse(&body)
        .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
    let Some(session) = session::current(&app, tenant.id(), &headers).await? else {
        return Err(PageError::Refused(Text::new("account.signed_out")));
    };
    let browser = cookies::read(&headers, &session::jar(&app).browser_name());
    if !app.csrf.verify(
        browser.as_deref(),
        &manage_purpose(&session),
        form.get("csrf"),
    ) {
        return Err(PageError::Refused(Text::new("login.form_expired")));
    }
    let client_id = form
        .get("client_id")
        .ok_or_else(|| PageError::Invalid(Text::new("error.choose_option")))?
        .to_string();
    let (t, uid, now) = (tenant.id().clone(), session.user_id.clone(), app.now());
    let (cid, ip) = (client_id.clone(), client_info.ip.clone());
    let withdrawn = app
        .store
        .run(move |c| {
            // One transaction: a consent gone with its tokens still live could not be withdrawn
            // again to revoke them.
            crate::store::tx::write(c, |c| {
                let withdrawn = consents::revoke(c, &t, &uid, &cid)?;
                if withdrawn {
                    refresh::revoke_for_user_client(c, &t, &uid, &cid, now)?;
                    let event = NewAuditEvent {
                        actor: &uid,
                        action: "consent.withdraw",
                        target: Some(&cid),
                        outcome: "success",
                        ip: ip.as_deref(),
                        details: serde_json::json!({}),
                    };
                    audit::record(c, &t, &event, now)?;
                }
                Ok(withdrawn)
            })
        })
        .await?;
    if withdrawn {
        let (user, client) = (session.user_id.as_str(), client_id.as_str());
        app.note_revoked(tenant.id(), Revoke::UserClient { user, client }, now);
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) =
        HeaderValue::from_str(&format!("{}/account/consents", login::tenant_path(&tenant)))
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}
