//! The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2), GET and POST.
//!
//! A request is parsed by [`super::request::parse`]; then a live SSO session that satisfies it
//! is answered at once (single sign-on), `prompt=none` without one is `login_required`, and
//! anything else becomes a login flow and a trip to the sign-in page. [`answer`] is the one
//! place that decides for a signed-in user: access to the app, consent, then the code.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::claims;
use super::code::{self, CodeGrant};
use super::consent;
use super::form::OAuthForm;
use super::request::{self, AuthorizeError, AuthorizeRequest, ResponseType};
use super::scope::Scope;
use crate::app::App;
use crate::flow::state::{LoginFlow, Protocol, Requirements, session_satisfies};
use crate::flow::{self, access, login, session};
use crate::i18n::{Locale, Text};
use crate::store::clients::Client;
use crate::store::sessions::Session;
use crate::store::{audit, consents};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;

/// Longest `client_id` looked up; longer ones are unknown without a query.
const MAX_CLIENT_ID_LEN: usize = 128;

/// `GET /t/{tenant}/authorize`
pub async fn get(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = OAuthForm::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| PageError::BadRequest(format!("The sign-in request is malformed: {e}.")))?;
    authorize(&app, &tenant, &headers, params).await
}

/// `POST /t/{tenant}/authorize` (OIDC Core §3.1.2.1: form-encoded, same parameters).
pub async fn post(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if let Some(resent) = flow::session::resend_as_get(&app, &tenant, &headers, "/authorize", &body)
    {
        return Ok(resent);
    }
    let params = OAuthForm::parse(&body)
        .map_err(|e| PageError::BadRequest(format!("The sign-in request is malformed: {e}.")))?;
    authorize(&app, &tenant, &headers, params).await
}

async fn authorize(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    params: OAuthForm,
) -> Result<Response, PageError> {
    let client = match params.get("client_id") {
        Some(id) if id.len() <= MAX_CLIENT_ID_LEN => app.client(tenant.id(), id).await?,
        _ => None,
    };
    let mut req = match request::parse(&params, client.as_deref(), &tenant.issuer) {
        Ok(req) => req,
        Err(AuthorizeError::Page(message)) => return Err(PageError::BadRequest(message)),
        Err(AuthorizeError::Redirect {
            mut reply,
            error,
            description,
        }) => {
            reply.lang = Some(
                flow::language::locale(tenant, headers, &[])
                    .tag()
                    .to_string(),
            );
            return Ok(reply.error(&app.templates, error, &description));
        }
    };
    let Some(client) = client else {
        return Err(PageError::NotFound);
    };
    let now = app.now();
    let locale = flow::language::locale(tenant, headers, &req.ui_locales);
    req.reply.lang = Some(locale.tag().to_string());
    if let Some(why) = flow::tenant_refusal(&tenant.tenant, now) {
        if req.prompt.none {
            // Error descriptions are for developers (RFC 6749 §4.1.2.1): in English.
            let description = app.templates.catalogs.plain(Locale::En, why.key, &[]);
            return Ok(req
                .reply
                .error(&app.templates, "access_denied", &description));
        }
        return flow::message(
            app,
            locale,
            StatusCode::FORBIDDEN,
            &Text::new("login.unavailable_title"),
            &why,
            None,
        );
    }
    let needs = requirements(&req, &client);
    if !session::reachable(&needs.classes) {
        return Ok(unmet(&req, app));
    }
    req.hinted_sub = match params.get("id_token_hint") {
        Some(hint) => match hinted_subject(app, tenant, hint).await? {
            Some(sub) => Some(sub),
            None => {
                return Ok(req.reply.error(
                    &app.templates,
                    "invalid_request",
                    "id_token_hint is not an ID token this issuer signed",
                ));
            }
        },
        None => None,
    };
    // OIDC Core §3.1.2.2 and §5.5.1: a session of someone other than the user the hint or the
    // `claims` request names does not count.
    let current = session::current(app, tenant.id(), headers)
        .await?
        .filter(|s| names(&req, &s.user_id));
    match current {
        Some(s) if session_satisfies(&needs, &s, now) && !req.prompt.select_account => {
            answer(app, tenant, headers, &req, &client, &s, Decided::default()).await
        }
        _ if req.prompt.none => Ok(req.reply.error(
            &app.templates,
            "login_required",
            "the user is not signed in, or must sign in again",
        )),
        _ => start_flow(app, tenant, headers, &req, needs).await,
    }
}

/// Whether `user_id` is the user the request names, if it names one: by its `id_token_hint`
/// (OIDC Core §3.1.2.1) or by a `sub` value in its `claims` (§5.5.1).
fn names(req: &AuthorizeRequest, user_id: &str) -> bool {
    req.hinted_sub.as_deref().is_none_or(|sub| sub == user_id)
        && claims::requested_sub(req.claims.as_ref()).is_none_or(|sub| sub == user_id)
}

/// The `sub` of an ID token this tenant signed (expired ones too: a hint names a user, it grants
/// nothing), or `None` when the token is not one.
async fn hinted_subject(
    app: &App,
    tenant: &TenantCtx,
    hint: &str,
) -> Result<Option<String>, PageError> {
    let ring = app.keyring(tenant.id()).await?;
    Ok(ring.verify(hint, "JWT").and_then(|claims| {
        let iss = claims.get("iss").and_then(serde_json::Value::as_str);
        let sub = claims.get("sub").and_then(serde_json::Value::as_str);
        (iss == Some(&*tenant.issuer))
            .then(|| sub.map(str::to_string))
            .flatten()
    }))
}

fn requirements(req: &AuthorizeRequest, client: &Client) -> Requirements {
    Requirements {
        client_id: client.client_id.clone(),
        client_name: client.name.clone(),
        app_id: client.app_id.clone(),
        channel: client.channel,
        // No account chooser yet: choosing an account means signing in.
        force_login: req.prompt.login || req.prompt.select_account,
        max_age: req.max_age,
        classes: claims::essential_acr(req.claims.as_ref()),
        login_hint: req.login_hint.clone(),
        ui_locales: req.ui_locales.clone(),
        return_to: req.reply.redirect_uri().to_string(),
    }
}

/// Stores a flow for `req`; returns its id.
pub async fn store_flow(
    app: &App,
    tenant: &TenantCtx,
    req: &AuthorizeRequest,
    needs: Requirements,
    progress: Option<&crate::flow::state::Progress>,
) -> Result<String, PageError> {
    let resume = serde_json::to_value(req).unwrap_or_default();
    flow::store(app, tenant, Protocol::Oidc, &needs, resume, progress).await
}

async fn start_flow(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    needs: Requirements,
) -> Result<Response, PageError> {
    let id = store_flow(app, tenant, req, needs, None).await?;
    Ok(flow::to_sign_in(app, tenant, headers, &id))
}

/// What the user already decided in this request, so [`answer`] does not ask twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct Decided {
    /// The user just approved the consent page.
    pub consented: bool,
}

/// Answers `req` for the signed-in `session`: the user must still be allowed to sign in and to
/// use the client's app, a third-party client needs the user's consent, then the code goes back.
pub async fn answer(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    client: &Client,
    session: &Session,
    decided: Decided,
) -> Result<Response, PageError> {
    let now = app.now();
    let subject = app.subject(tenant.id(), &session.user_id).await?;
    let app_record = match &client.app_id {
        Some(id) => app.app_record(tenant.id(), id).await?,
        None => None,
    };
    // First-party clients never ask, so only third-party ones look up a consent.
    let consented_scope = if client.first_party {
        None
    } else {
        let (t, uid, cid) = (
            tenant.id().clone(),
            session.user_id.clone(),
            client.client_id.clone(),
        );
        app.store
            .run(move |c| consents::find(c, &t, &uid, &cid))
            .await?
    };
    let Some(subject) =
        subject.filter(|s| login::check_account(&s.user, now) == login::AccountCheck::Allowed)
    else {
        if req.prompt.none {
            return Ok(req.reply.error(
                &app.templates,
                "login_required",
                "the signed-in account can no longer sign in",
            ));
        }
        // The sign-in page tells the user why, with their account's own message.
        return start_flow(app, tenant, headers, req, requirements(req, client)).await;
    };
    // A sign-in the user just made may still miss the class an essential `acr` demands (a code
    // where the app asked for a password): OIDC Core §5.5.1.1 makes that a failed sign-in.
    if !session::reaches(&claims::essential_acr(req.claims.as_ref()), session) {
        return Ok(unmet(req, app));
    }
    // A request naming a user is answered only for that user, whoever signed in.
    if !names(req, &session.user_id) {
        return Ok(req.reply.error(
            &app.templates,
            "login_required",
            "the signed-in user is not the one the request names",
        ));
    }
    if !access::may_use(app_record.as_deref(), client.channel, &subject) {
        record_denial(app, tenant, &subject.user.id, client).await?;
        let denied = || {
            req.reply.error(
                &app.templates,
                "access_denied",
                "the user may not use this app",
            )
        };
        if req.prompt.none || req.reply.mode == super::reply::ResponseMode::FormPost {
            return Ok(denied());
        }
        let back = req.reply.url(&[
            ("error", "access_denied"),
            ("error_description", "the user may not use this app"),
        ]);
        let text = Text::new("login.no_access_text").with(
            "app",
            app_record
                .as_ref()
                .map(|a| a.name.as_str())
                .unwrap_or(&client.name),
        );
        let locale = flow::language::locale(tenant, headers, &req.ui_locales);
        return flow::message(
            app,
            locale,
            StatusCode::FORBIDDEN,
            &Text::new("login.no_access_title"),
            &text,
            Some((&back, &Text::new("login.return_to_app"))),
        );
    }
    if !flow::agreement::accepted(tenant, &subject) {
        if req.prompt.none {
            return Ok(req.reply.error(
                &app.templates,
                "interaction_required",
                "the user must accept the tenant's updated agreement",
            ));
        }
        let needs = requirements(req, client);
        let resume = serde_json::to_value(req).unwrap_or_default();
        return flow::agreement::ask(
            app,
            tenant,
            headers,
            Protocol::Oidc,
            &needs,
            resume,
            session,
        )
        .await;
    }
    // First-party clients skip consent unless the client asks for it (OIDC Core §3.1.2.1:
    // `prompt=consent` SHOULD prompt).
    if !decided.consented && (!client.first_party || req.prompt.consent) {
        let wanted = Scope::parse(&req.scope).unwrap_or_default();
        let covered = consented_scope
            .and_then(|s| Scope::parse(&s))
            .is_some_and(|granted| wanted.is_subset_of(&granted));
        if !covered || req.prompt.consent {
            if req.prompt.none {
                return Ok(req.reply.error(
                    &app.templates,
                    "consent_required",
                    "the user has not granted this app access",
                ));
            }
            return consent::ask(app, tenant, headers, req, client, session).await;
        }
    }
    match req.response_type {
        ResponseType::None => Ok(req.reply.send(&app.templates, &[])),
        ResponseType::Code => {
            let grant = CodeGrant {
                client_id: client.client_id.clone(),
                redirect_uri: req.reply.redirect_uri().to_string(),
                scope: req.scope.clone(),
                nonce: req.nonce.clone(),
                code_challenge: req.code_challenge.clone(),
                claims: req.claims.clone(),
                user_id: session.user_id.clone(),
                sid: session.sid.clone(),
                auth_time: session.auth_time,
                amr: session.amr.clone(),
                acr: Some(session::assurance_class(session).to_string()),
                family_id: CodeGrant::new_family_id(),
            };
            let code = code::issue(app, tenant.id(), &grant).await?;
            Ok(req.reply.send(&app.templates, &[("code", &code)]))
        }
    }
}

/// The answer to a request whose essential `acr` no sign-in here meets (OpenID Connect Core Error
/// Code `unmet_authentication_requirements`).
fn unmet(req: &AuthorizeRequest, app: &App) -> Response {
    req.reply.error(
        &app.templates,
        "unmet_authentication_requirements",
        "the sign-in does not reach the authentication class the claims request demands",
    )
}

/// Continues a flow this module started, once the user has signed in.
pub async fn resume(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    flow: &LoginFlow,
    session: &Session,
) -> Result<Response, PageError> {
    let Ok(req) = serde_json::from_value::<AuthorizeRequest>(flow.resume.clone()) else {
        return flow::expired(
            app,
            flow::language::locale(tenant, headers, &flow.needs.ui_locales),
        );
    };
    let Some(client) = app.client(tenant.id(), &req.client_id).await? else {
        return Err(PageError::Invalid(Text::new("error.app_gone")));
    };
    answer(
        app,
        tenant,
        headers,
        &req,
        &client,
        session,
        Decided::default(),
    )
    .await
}

/// The answer to the app when the user declines a step of `flow` (a new agreement).
pub fn decline(app: &App, flow: &LoginFlow) -> Result<Response, PageError> {
    let Ok(req) = serde_json::from_value::<AuthorizeRequest>(flow.resume.clone()) else {
        return flow::expired(app, crate::i18n::FALLBACK);
    };
    Ok(req.reply.error(
        &app.templates,
        "access_denied",
        "the user declined the tenant's agreement",
    ))
}

async fn record_denial(
    app: &App,
    tenant: &TenantCtx,
    user_id: &str,
    client: &Client,
) -> Result<(), PageError> {
    let (t, now) = (tenant.id().clone(), app.now());
    let (uid, cid) = (user_id.to_string(), client.client_id.clone());
    app.store
        .run(move |c| {
            audit::record(
                c,
                &t,
                &audit::NewAuditEvent {
                    actor: &uid,
                    action: "authorize.access_denied",
                    target: Some(&cid),
                    outcome: "refused",
                    ip: None,
                    details: serde_json::json!({ "reason": "outside the app's access scope" }),
                },
                now,
            )
        })
        .await?;
    Ok(())
}
