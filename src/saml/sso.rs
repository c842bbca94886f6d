//! `GET|POST /t/{tenant}/saml/sso`: SP-initiated Web Browser SSO (SAML Profiles §4.1) in the
//! HTTP-Redirect and HTTP-POST bindings, answered by HTTP-POST.
//!
//! A request is decoded, its SP looked up by `Issuer`, its signature verified (always when the SP
//! requires it, and whenever one is present), checked against the registration, and its ID
//! remembered so it cannot be replayed. Then, as for OpenID Connect, a live SSO session that
//! satisfies it is answered at once and anything else becomes a login flow.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::schema::AuthnRequest;

use super::request::{self, Accepted, Refusal, RequestError, Status, Top};
use super::{NAMEID_ENTITY, nameid, response, signature};
use crate::app::App;
use crate::flow::state::{LoginFlow, Protocol, Requirements, session_satisfies};
use crate::flow::{self, access, login, session};
use crate::i18n::Text;
use crate::oidc::form::OAuthForm;
use crate::store::apps::Channel;
use crate::store::service_providers::{self as sps, ServiceProvider, SessionSp, Signed};
use crate::store::sessions::{self, Session};
use crate::store::{audit, jtis};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;

pub use crate::flow::session::{CLASS_CODE, CLASS_PASSWORD};

/// How long an assertion is valid when the SP's registration does not say.
pub const DEFAULT_ASSERTION_LIFETIME: i64 = 300;

/// No sign-in here reaches a class the request's `RequestedAuthnContext` lists (SAML Core
/// §3.3.2.2.1).
const NO_AUTHN_CONTEXT: Status = Status {
    code: "NoAuthnContext",
    top: Top::Responder,
    message: "the requested authentication context cannot be met",
};

fn refused(e: &RequestError) -> PageError {
    PageError::BadRequest(format!("The app's SAML request cannot be processed: {e}."))
}

/// `GET /t/{tenant}/saml/sso`: HTTP-Redirect binding.
pub async fn redirect(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = query.unwrap_or_default();
    let form = OAuthForm::parse(query.as_bytes())
        .map_err(|e| refused(&RequestError::Malformed(e.to_string())))?;
    let encoded = form
        .get("SAMLRequest")
        .ok_or_else(|| refused(&RequestError::Malformed("SAMLRequest is missing".into())))?;
    let xml = request::inflate(encoded, form.get("SAMLEncoding")).map_err(|e| refused(&e))?;
    let req = request::parse(&xml).map_err(|e| refused(&e))?;
    let sp = service_provider(&app, &tenant, &req).await?;
    if sp.settings.want_requests_signed || signature::redirect_is_signed(&query) {
        signature::verify_redirect(&query, "SAMLRequest", &sp.settings.signing_certificates)
            .map_err(|e| refused(&RequestError::Signature(e)))?;
        names_its_destination(&req)?;
    }
    proceed(&app, &tenant, &headers, &req, &sp, form.get("RelayState")).await
}

/// `POST /t/{tenant}/saml/sso`: HTTP-POST binding.
pub async fn post(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form =
        OAuthForm::parse(&body).map_err(|e| refused(&RequestError::Malformed(e.to_string())))?;
    let encoded = form
        .get("SAMLRequest")
        .ok_or_else(|| refused(&RequestError::Malformed("SAMLRequest is missing".into())))?;
    let xml = request::decode_post(encoded).map_err(|e| refused(&e))?;
    let req = request::parse(&xml).map_err(|e| refused(&e))?;
    let sp = service_provider(&app, &tenant, &req).await?;
    let req = if sp.settings.want_requests_signed || has_signature(&req) {
        // Only what the signature covers is read from here on.
        let signed = signature::verify_post(&xml, &sp.settings.signing_certificates)
            .map_err(|e| refused(&RequestError::Signature(e)))?;
        let signed = request::parse(&signed).map_err(|e| refused(&e))?;
        if issuer_of(&signed) != issuer_of(&req) {
            return Err(refused(&RequestError::Signature(
                "the signature does not cover the request's Issuer".into(),
            )));
        }
        names_its_destination(&signed)?;
        signed
    } else {
        req
    };
    proceed(&app, &tenant, &headers, &req, &sp, form.get("RelayState")).await
}

/// Bindings §3.4.5.2 and §3.5.5.2: a signed request names where it was sent (`check` compares
/// it with this endpoint), so that it cannot be replayed at another IdP's.
fn names_its_destination(req: &AuthnRequest) -> Result<(), PageError> {
    match req.destination.as_deref() {
        Some(d) if !d.is_empty() => Ok(()),
        _ => Err(refused(&RequestError::Malformed(
            "a signed request must name its Destination".into(),
        ))),
    }
}

fn has_signature(req: &AuthnRequest) -> bool {
    req.signature.is_some()
}

fn issuer_of(req: &AuthnRequest) -> Option<&str> {
    req.issuer.as_ref().and_then(|i| i.value.as_deref())
}

async fn service_provider(
    app: &App,
    tenant: &TenantCtx,
    req: &AuthnRequest,
) -> Result<std::sync::Arc<ServiceProvider>, PageError> {
    // Profiles §4.1.4.1: an SP's Issuer is its entity ID, with no other Format.
    let format = req.issuer.as_ref().and_then(|i| i.format.as_deref());
    if format.is_some_and(|f| f != NAMEID_ENTITY) {
        return Err(refused(&RequestError::Malformed(
            "the Issuer's Format must be omitted or the entity format".into(),
        )));
    }
    let issuer = issuer_of(req)
        .map(str::trim)
        .filter(|i| !i.is_empty() && i.len() <= 1024)
        .ok_or_else(|| refused(&RequestError::UnknownSp))?
        .to_string();
    app.service_provider(tenant.id(), &issuer)
        .await?
        .ok_or_else(|| refused(&RequestError::UnknownSp))
}

async fn proceed(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    req: &AuthnRequest,
    sp: &ServiceProvider,
    relay_state: Option<&str>,
) -> Result<Response, PageError> {
    let now = app.now();
    let sso_url = format!("{}/saml/sso", tenant.issuer);
    let accepted = match request::check(req, sp, &sso_url, relay_state, now) {
        Ok(a) => a,
        Err(Refusal::Page(e)) => return Err(refused(&e)),
        Err(Refusal::Status { acs, status }) => {
            return fail(
                app,
                tenant,
                headers,
                &acs,
                Some(&req.id),
                relay_state,
                &status,
            )
            .await;
        }
    };
    // SAML Profiles §4.1.4.5: a request ID is accepted once. Remembered past its freshness window;
    // the browser's session is read in the same grouped write (see `store::group`).
    let record = RequestRecord {
        used: jtis::Use {
            tenant: tenant.id().clone(),
            client_id: format!("saml:{}", sp.id),
            jti: req.id.clone(),
            expires_at: crate::clock::UnixTime(req.issue_instant.timestamp())
                .plus(request::MAX_AGE + request::CLOCK_SKEW),
        },
        session: session::Lookup::of(app, tenant.id(), headers),
    };
    let (fresh, session) = app.saml_requests.submit(&app.store, record).await?;
    if !fresh {
        return Err(refused(&RequestError::Replayed));
    }
    sign_in(app, tenant, headers, &accepted, sp, session).await
}

/// An AuthnRequest to remember, and the browser's session to read with it.
pub struct RequestRecord {
    /// Its ID as used by `saml:{sp id}`: SAML request IDs share the replay table with `jti`s.
    used: jtis::Use,
    session: Option<session::Lookup>,
}

/// The grouped write of [`RequestRecord`]s: every ID remembered in one statement, then the
/// sessions of the requests not seen before read in one query.
pub fn remember_requests(
    c: &mut crate::store::Conn,
    records: &[RequestRecord],
) -> Result<Vec<(bool, Option<Session>)>, crate::store::StoreError> {
    let uses: Vec<jtis::Use> = records.iter().map(|r| r.used.clone()).collect();
    let fresh = jtis::remember_many(c, &uses)?;
    // Only a request not seen before goes on to read its session.
    let wanted: Vec<usize> = (0..records.len())
        .filter(|&i| fresh[i] && records[i].session.is_some())
        .collect();
    let touches: Vec<sessions::Touch> = wanted
        .iter()
        .filter_map(|&i| records[i].session.as_ref().map(session::Lookup::touch))
        .collect();
    let mut answers: Vec<(bool, Option<Session>)> = fresh.into_iter().map(|f| (f, None)).collect();
    for (i, found) in wanted.into_iter().zip(sessions::touch_many(c, &touches)?) {
        answers[i].1 = found;
    }
    Ok(answers)
}

/// Answers `accepted` from the browser's `session` if it satisfies it, or sends the user to the
/// sign-in page (or, for a passive request, tells the SP no one is signed in).
async fn sign_in(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    accepted: &Accepted,
    sp: &ServiceProvider,
    session: Option<Session>,
) -> Result<Response, PageError> {
    let now = app.now();
    if let Some(why) = flow::tenant_refusal(&tenant.tenant, now) {
        let locale = flow::language::locale(tenant, headers, &[]);
        return flow::message(
            app,
            locale,
            StatusCode::FORBIDDEN,
            &Text::new("login.unavailable_title"),
            &why,
            None,
        );
    }
    if !session::reachable(&accepted.requested_classes) {
        return refuse(app, tenant, headers, accepted, &NO_AUTHN_CONTEXT).await;
    }
    let needs = requirements(accepted, sp);
    match session {
        Some(s) if session_satisfies(&needs, &s, now) => {
            answer(app, tenant, headers, accepted, sp, &s).await
        }
        _ if accepted.is_passive => {
            let status = Status {
                code: "NoPassive",
                top: Top::Responder,
                message: "the user is not signed in",
            };
            refuse(app, tenant, headers, accepted, &status).await
        }
        _ => start_flow(app, tenant, headers, accepted, needs).await,
    }
}

/// `GET /t/{tenant}/saml/launch/{sp}`: IdP-initiated sign-in (SAML Profiles §4.1.5), the "More
/// Apps" tile. Only an SP registered for it (`--idp-initiated`) gets an unsolicited Response, at
/// its default consumer URL; `RelayState` in the query is passed on (80 bytes at most).
pub async fn launch(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    axum::extract::Path(params): axum::extract::Path<Vec<(String, String)>>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let id = params
        .iter()
        .find(|(k, _)| k == "sp")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let (t, lookup) = (tenant.id().clone(), id.clone());
    let sp = match id.len() {
        1..=64 => app.store.run(move |c| sps::find(c, &t, &lookup)).await?,
        _ => None,
    };
    let Some(sp) = sp.filter(|sp| sp.settings.idp_initiated) else {
        return Err(PageError::NotFound);
    };
    let form = OAuthForm::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| refused(&RequestError::Malformed(e.to_string())))?;
    let relay_state = form.get("RelayState");
    if relay_state.is_some_and(|r| r.len() > request::MAX_RELAY_STATE) {
        return Err(refused(&RequestError::RelayStateTooLong));
    }
    let acs = sp
        .settings
        .acs
        .iter()
        .find(|e| e.is_default)
        .or(sp.settings.acs.first())
        .map(|e| e.url.clone())
        .ok_or_else(|| refused(&RequestError::UnregisteredAcs))?;
    let accepted = Accepted {
        sp_id: sp.id.clone(),
        request_id: None,
        acs,
        relay_state: relay_state.map(str::to_string),
        force_authn: false,
        is_passive: false,
        requested_classes: Vec::new(),
        requested_subject: None,
    };
    let session = session::current(&app, tenant.id(), &headers).await?;
    sign_in(&app, &tenant, &headers, &accepted, &sp, session).await
}

fn requirements(accepted: &Accepted, sp: &ServiceProvider) -> Requirements {
    Requirements {
        client_id: sp.id.clone(),
        client_name: sp.name.clone(),
        app_id: sp.app_id.clone(),
        channel: Channel::Web,
        force_login: accepted.force_authn,
        max_age: None,
        classes: accepted.requested_classes.clone(),
        login_hint: None,
        ui_locales: Vec::new(),
        return_to: accepted.acs.clone(),
    }
}

async fn start_flow(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    accepted: &Accepted,
    needs: Requirements,
) -> Result<Response, PageError> {
    let resume = serde_json::to_value(accepted).unwrap_or_default();
    let id = flow::store(app, tenant, Protocol::Saml, &needs, resume, None).await?;
    Ok(flow::to_sign_in(app, tenant, headers, &id))
}

/// Continues a flow this module started, once the user has signed in.
pub async fn resume(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    flow: &LoginFlow,
    session: &Session,
) -> Result<Response, PageError> {
    let Ok(accepted) = serde_json::from_value::<Accepted>(flow.resume.clone()) else {
        return flow::expired(app, flow::language::locale(tenant, headers, &[]));
    };
    let (t, id) = (tenant.id().clone(), accepted.sp_id.clone());
    let Some(sp) = app.store.run(move |c| sps::find(c, &t, &id)).await? else {
        return Err(PageError::Invalid(Text::new("error.app_gone")));
    };
    answer(app, tenant, headers, &accepted, &sp, session).await
}

/// The Response for a user who declined a step of the flow (a new agreement).
pub async fn decline(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    flow: &LoginFlow,
) -> Result<Response, PageError> {
    let Ok(accepted) = serde_json::from_value::<Accepted>(flow.resume.clone()) else {
        return flow::expired(app, flow::language::locale(tenant, headers, &[]));
    };
    let status = Status {
        code: "RequestDenied",
        top: Top::Responder,
        message: "the user declined the tenant's agreement",
    };
    refuse(app, tenant, headers, &accepted, &status).await
}

/// Answers `accepted` for the signed-in `session`: the user must still be allowed in and may use
/// the SP's app, the requested authentication context must be met, then the assertion goes out.
pub async fn answer(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    accepted: &Accepted,
    sp: &ServiceProvider,
    session: &Session,
) -> Result<Response, PageError> {
    let now = app.now();
    let relay = accepted.relay_state.as_deref();
    let irt = accepted.request_id.as_deref();
    let subject = app.subject(tenant.id(), &session.user_id).await?;
    let Some(subject) =
        subject.filter(|s| login::check_account(&s.user, now) == login::AccountCheck::Allowed)
    else {
        let status = Status {
            code: "RequestDenied",
            top: Top::Responder,
            message: "the signed-in account can no longer sign in",
        };
        return refuse(app, tenant, headers, accepted, &status).await;
    };
    let app_record = match &sp.app_id {
        Some(id) => app.app_record(tenant.id(), id).await?,
        None => None,
    };
    if !access::may_use(app_record.as_deref(), Channel::Web, &subject) {
        record_denial(app, tenant, &subject.user.id, sp).await?;
        // A passive request must not take over the browser (Core §3.4.1): the SP is told. Any
        // other gets the page, which tells the user why (the SP could only say "failed").
        if accepted.is_passive {
            let status = Status {
                code: "RequestDenied",
                top: Top::Responder,
                message: "the user may not use this service provider's app",
            };
            return refuse(app, tenant, headers, accepted, &status).await;
        }
        let locale = flow::language::locale(tenant, headers, &[]);
        let text = Text::new("login.no_access_text").with(
            "app",
            app_record
                .as_ref()
                .map(|a| a.name.as_str())
                .unwrap_or(&sp.name),
        );
        return flow::message(
            app,
            locale,
            StatusCode::FORBIDDEN,
            &Text::new("login.no_access_title"),
            &text,
            None,
        );
    }
    // A new version of the tenant's agreement is accepted before any app hears of the user.
    if !flow::agreement::accepted(tenant, &subject) {
        if accepted.is_passive {
            let status = Status {
                code: "NoPassive",
                top: Top::Responder,
                message: "the user must accept the tenant's updated agreement",
            };
            return refuse(app, tenant, headers, accepted, &status).await;
        }
        let needs = requirements(accepted, sp);
        let resume = serde_json::to_value(accepted).unwrap_or_default();
        return flow::agreement::ask(
            app,
            tenant,
            headers,
            Protocol::Saml,
            &needs,
            resume,
            session,
        )
        .await;
    }
    let class = session::assurance_class(session);
    // A sign-in the user just made may still miss the requested class.
    if !session::reaches(&accepted.requested_classes, session) {
        return refuse(app, tenant, headers, accepted, &NO_AUTHN_CONTEXT).await;
    }
    let Some(name_id) = nameid::value(
        sp,
        &subject,
        &app.pseudonym_key,
        &session.sid,
        session.auth_time,
    ) else {
        let status = Status {
            code: "InvalidNameIDPolicy",
            top: Top::Responder,
            message: "the user has no value for the NameID this service provider uses",
        };
        return refuse(app, tenant, headers, accepted, &status).await;
    };
    // Core §3.4.1.4: a request that names its subject gets an assertion about that principal or
    // none, whoever is signed in here.
    if let Some(requested) = &accepted.requested_subject
        && !nameid::names(sp, requested, &name_id)
    {
        let status = Status {
            code: "RequestDenied",
            top: Top::Responder,
            message: "the signed-in user is not the subject the request names",
        };
        return refuse(app, tenant, headers, accepted, &status).await;
    }
    let format = nameid::format_of(sp.settings.name_id);
    let session_index = nameid::session_index(&app.session_index_key, &session.sid, &sp.id);
    let attributes = nameid::attributes(sp, &subject, sp.app_id.as_deref());
    let ring = app.keyring(tenant.id()).await?;
    let key = ring
        .saml_key()
        .ok_or_else(|| PageError::Internal("the tenant has no SAML signing key".into()))?;
    let idp = super::metadata::entity_id(&tenant.issuer);
    let statement = response::Statement {
        idp_entity_id: &idp,
        sp_entity_id: &sp.entity_id,
        acs: &accepted.acs,
        in_response_to: irt,
        name_id_format: format,
        name_id: &name_id,
        session_index: &session_index,
        authn_instant: session.auth_time,
        session_not_on_or_after: session.absolute_expires_at,
        authn_class: class,
        attributes: &attributes,
        now,
        lifetime: sp
            .settings
            .assertion_lifetime
            .unwrap_or(DEFAULT_ASSERTION_LIFETIME),
    };
    // An encrypted assertion's own signature is out of sight until the SP decrypts it, and many
    // SPs check the message first: with encryption the Response is always signed too.
    let encrypted = sp.settings.encryption_certificate.is_some();
    let signing = response::Signing {
        assertion: matches!(sp.settings.signed, Signed::Assertion | Signed::Both),
        response: encrypted || matches!(sp.settings.signed, Signed::Response | Signed::Both),
    };
    let encryption_cert = match &sp.settings.encryption_certificate {
        Some(b64) => Some(
            STANDARD
                .decode(b64)
                .map_err(|_| PageError::Internal("the SP's encryption certificate".into()))?,
        ),
        None => None,
    };
    let encrypt_for = encryption_cert
        .as_deref()
        .map(|c| (c, sp.settings.encryption));
    let xml = response::success(&statement, key, signing, encrypt_for)
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let record = SessionSp {
        sp_id: sp.id.clone(),
        name_id: name_id.clone(),
        name_id_format: format.to_string(),
    };
    // An SP signing in again through the same session with the same NameID is already on
    // record: skip the write. (A transient NameID changes when the user signs in again.)
    let recorded = (
        tenant.id().clone(),
        session.sid.clone(),
        format!("saml:{}\u{0}{name_id}", sp.id),
    );
    if app.recorded_session_clients.get(&recorded, now).is_none() {
        let (t, sid) = (tenant.id().clone(), session.sid.clone());
        app.store
            .run(move |c| sps::add_to_session(c, &t, &sid, &record, now))
            .await?;
        app.recorded_session_clients.put(recorded, (), now);
    }
    Ok(post_to(app, tenant, headers, &accepted.acs, &xml, relay))
}

/// Audits a user refused an SP because it belongs to an app outside their access scope.
async fn record_denial(
    app: &App,
    tenant: &TenantCtx,
    user_id: &str,
    sp: &ServiceProvider,
) -> Result<(), PageError> {
    let (t, now) = (tenant.id().clone(), app.now());
    let (uid, target) = (user_id.to_string(), format!("saml:{}", sp.id));
    app.store
        .run(move |c| {
            let event = audit::NewAuditEvent {
                actor: &uid,
                action: "saml.access_denied",
                target: Some(&target),
                outcome: "refused",
                ip: None,
                details: serde_json::json!({ "reason": "outside the app's access scope" }),
            };
            audit::record(c, &t, &event, now)
        })
        .await?;
    Ok(())
}

/// [`fail`] for an accepted request: its consumer URL, ID and RelayState.
async fn refuse(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    accepted: &Accepted,
    status: &Status,
) -> Result<Response, PageError> {
    let irt = accepted.request_id.as_deref();
    let relay = accepted.relay_state.as_deref();
    fail(app, tenant, headers, &accepted.acs, irt, relay, status).await
}

/// A signed Response refusing the request, posted to the SP's consumer URL.
async fn fail(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    acs: &str,
    in_response_to: Option<&str>,
    relay_state: Option<&str>,
    status: &Status,
) -> Result<Response, PageError> {
    let ring = app.keyring(tenant.id()).await?;
    let key = ring
        .saml_key()
        .ok_or_else(|| PageError::Internal("the tenant has no SAML signing key".into()))?;
    let idp = super::metadata::entity_id(&tenant.issuer);
    let xml = response::failure(&idp, acs, in_response_to, status, key, app.now())
        .map_err(|e| PageError::Internal(e.to_string()))?;
    Ok(post_to(app, tenant, headers, acs, &xml, relay_state))
}

/// The HTTP-POST binding (SAML Bindings §3.5): the Response base64-encoded in a form that posts
/// itself to the consumer URL, RelayState returned as received.
fn post_to(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    acs: &str,
    xml: &str,
    relay_state: Option<&str>,
) -> Response {
    let encoded = STANDARD.encode(xml);
    let mut params = vec![("SAMLResponse", encoded.as_str())];
    if let Some(r) = relay_state {
        params.push(("RelayState", r));
    }
    let locale = flow::language::locale(tenant, headers, &[]);
    crate::web::auto_post(&app.templates, locale, acs, &params)
}
