//! The Service Agreement and Privacy Policy. A tenant publishes one version of the pair
//! (setting `agreement_version`, default `1`); ticking the box on the sign-in form accepts the
//! current version, and the acceptance (user, version, time, address) is recorded when the
//! sign-in completes. When the tenant publishes a new version, a user who is still signed in is
//! asked again, on a page of its own, before any app gets a code (`POST /t/{tenant}/agreement`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use minijinja::context;

use super::state::{Awaiting, Protocol, Requirements};
use super::{FlowForm, expired, language, login, session};
use crate::app::App;
use crate::i18n::{Locale, Text};
use crate::store::agreements;
use crate::store::subjects::Subject;
use crate::store::{StoreError, flows};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;
use crate::web::{self, ClientInfo};

/// The version of the agreement the tenant publishes now.
pub fn current_version(tenant: &TenantCtx) -> String {
    match tenant.tenant.settings.get("agreement_version") {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => "1".to_string(),
    }
}

/// Whether `subject` accepted the version the tenant publishes now.
pub fn accepted(tenant: &TenantCtx, subject: &Subject) -> bool {
    let current = current_version(tenant);
    subject.agreed_versions.contains(&current)
}

/// Records that `user_id` accepts the current version (once per version), from `client`'s
/// address, and forgets this node's copy of the user so the next check sees it.
pub async fn record(
    app: &App,
    tenant: &TenantCtx,
    user_id: &str,
    client: &ClientInfo,
) -> Result<(), StoreError> {
    let (t, uid, version, ip, now) = (
        tenant.id().clone(),
        user_id.to_string(),
        current_version(tenant),
        client.ip.clone(),
        app.now(),
    );
    app.store
        .run(move |c| agreements::accept(c, &t, &uid, &version, ip.as_deref(), now))
        .await?;
    app.forget_subject(tenant.id(), user_id);
    Ok(())
}

/// The page asking a signed-in user to accept a new version, for the stored flow `flow_id`.
/// For a user signed in as `session` who has not accepted the tenant's current agreement: a
/// flow that resumes `protocol` with `resume` once they do, and its agreement page.
pub async fn ask(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    protocol: super::state::Protocol,
    needs: &Requirements,
    resume: serde_json::Value,
    session: &crate::store::sessions::Session,
) -> Result<Response, PageError> {
    let progress = super::state::Progress::awaiting(session, Awaiting::Agreement);
    let flow_id = super::store(app, tenant, protocol, needs, resume, Some(&progress)).await?;
    page(app, tenant, headers, &flow_id, needs, None)
}

pub fn page(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    flow_id: &str,
    needs: &Requirements,
    error: Option<&Text>,
) -> Result<Response, PageError> {
    let locale = language::locale(tenant, headers, &needs.ui_locales);
    let (browser, set_cookie) = session::browser(app, headers);
    let base = login::tenant_path(tenant);
    let t = &app.templates;
    let html = t.render_in(
        "agreement.html",
        locale,
        context! {
            tenant_name => &tenant.tenant.display_name,
            client_name => &needs.client_name,
            version => current_version(tenant),
            action => format!("{base}/agreement"),
            flow => flow_id,
            csrf => app.csrf.token(&browser, flow_id),
            terms_url => format!("{base}/legal/terms"),
            privacy_url => format!("{base}/legal/privacy"),
            error => error.map(|e| t.text(e, locale)),
        },
    )?;
    let mut response = web::page(StatusCode::OK, html, Some(&needs.return_to));
    if let Some(set) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    Ok(response)
}

/// `POST /t/{tenant}/agreement`: accept (with the box ticked) or decline.
pub async fn submit(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let FlowForm { form, flow, .. } = super::flow_form(&app, &tenant, &headers, &body).await?;
    let Some(flow) = flow else {
        return expired(&app, language::locale(&tenant, &headers, &[]));
    };
    let locale: Locale = language::locale(&tenant, &headers, &flow.needs.ui_locales);
    let current = session::current(&app, tenant.id(), &headers).await?;
    let Some(session) = current.filter(|s| {
        flow.progress.user_id.as_deref() == Some(&s.user_id)
            && flow.progress.awaiting == Some(Awaiting::Agreement)
    }) else {
        return expired(&app, locale);
    };
    let accept = match form.get("decision") {
        Some("accept") => true,
        Some("decline") => false,
        _ => return Err(PageError::BadRequest("Choose Agree or Decline.".into())),
    };
    if accept && form.get("agree") != Some("yes") {
        return page(
            &app,
            &tenant,
            &headers,
            &flow.id,
            &flow.needs,
            Some(&Text::new("login.must_agree")),
        );
    }
    let (t, fid, version, now) = (
        tenant.id().clone(),
        flow.id.clone(),
        flow.version,
        app.now(),
    );
    let completed = app
        .store
        .run(move |c| flows::complete(c, &t, &fid, version, now))
        .await?;
    if !completed {
        return expired(&app, locale);
    }
    if accept {
        record(&app, &tenant, &session.user_id, &client).await?;
    }
    match flow.protocol {
        Protocol::Account => Ok(crate::selfservice::home(&tenant)),
        Protocol::Oidc => match accept {
            true => crate::oidc::authorize::resume(&app, &tenant, &headers, &flow, &session).await,
            false => crate::oidc::authorize::decline(&app, &flow),
        },
        Protocol::Saml => match accept {
            true => crate::saml::sso::resume(&app, &tenant, &headers, &flow, &session).await,
            false => crate::saml::sso::decline(&app, &tenant, &headers, &flow).await,
        },
    }
}
