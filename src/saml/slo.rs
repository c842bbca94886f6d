//! `GET|POST /t/{tenant}/saml/slo`: Single Logout (SAML Profiles §4.4) through the browser.
//!
//! An SP's LogoutRequest ends the Sesame session it names, when the NameID and SessionIndex are
//! those Sesame gave that SP for that session (so no SP can end another user's session), and with
//! it the session's OIDC refresh tokens and a back-channel logout to its OIDC clients. Then the
//! browser visits every other SAML SP of the session with a LogoutRequest of Sesame's, each SP
//! answering back here, and finally the initiator gets its LogoutResponse. The walk's state lives
//! in a single-use token passed as RelayState from hop to hop. OpenID Connect logout and the
//! account page's sign-out start the same walk ([`after_logout`]).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::c14n::El;
use super::logout::{self, Message};
use super::request::{self, RequestError};
use super::{BINDING_REDIRECT, nameid, signature};
use crate::app::App;
use crate::crypto::secret::{TokenHash, random_token};
use crate::flow::{self, session};
use crate::oidc::form::OAuthForm;
use crate::store::jtis;
use crate::store::service_providers::{self as sps, Endpoint, ServiceProvider, SessionSp};
use crate::store::sessions::{self, Session};
use crate::store::tokens::{self, NewOneTimeToken};
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;

const KIND: &str = "saml_logout";
/// How long the browser may take to come back from one SP of the walk.
const HOP_LIFETIME: i64 = 300;

fn refused(e: &RequestError) -> PageError {
    PageError::BadRequest(format!(
        "The app's SAML logout message cannot be processed: {e}."
    ))
}

/// Where a walk through the session's SPs ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Finish {
    /// The SP whose LogoutRequest started it gets a LogoutResponse.
    Sp {
        sp_id: String,
        request_id: String,
        relay_state: Option<String>,
    },
    /// The browser goes to this URL (an OIDC app's post-logout redirect).
    Redirect(String),
    /// Sesame's own "signed out" page.
    Page,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Walk {
    sid: String,
    user_id: String,
    finish: Finish,
    /// SPs still to visit.
    pending: Vec<SessionSp>,
    /// The SP visited now and the ID of the LogoutRequest it was sent.
    waiting: Option<(String, String)>,
    /// Whether an SP of the session could not be told (no logout endpoint) or answered that it
    /// could not end its session: the initiator then hears `PartialLogout` (Core §3.7.3.2).
    #[serde(default)]
    partial: bool,
}

/// How the incoming message arrived, for its signature.
enum Arrival<'a> {
    Redirect { query: &'a str },
    Post,
}

/// `GET /t/{tenant}/saml/slo`: HTTP-Redirect binding.
pub async fn redirect(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = query.unwrap_or_default();
    let form = OAuthForm::parse(query.as_bytes())
        .map_err(|e| refused(&RequestError::Malformed(e.to_string())))?;
    let arrival = Arrival::Redirect { query: &query };
    let relay = form.get("RelayState");
    if let Some(encoded) = form.get("SAMLRequest") {
        let xml = request::inflate(encoded, form.get("SAMLEncoding")).map_err(|e| refused(&e))?;
        return incoming_request(&app, &tenant, &headers, &xml, arrival, relay).await;
    }
    if let Some(encoded) = form.get("SAMLResponse") {
        let xml = request::inflate(encoded, form.get("SAMLEncoding")).map_err(|e| refused(&e))?;
        return incoming_response(&app, &tenant, &headers, &xml, arrival, relay).await;
    }
    Err(refused(&RequestError::Malformed(
        "neither SAMLRequest nor SAMLResponse".into(),
    )))
}

/// `POST /t/{tenant}/saml/slo`: HTTP-POST binding.
pub async fn post(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form =
        OAuthForm::parse(&body).map_err(|e| refused(&RequestError::Malformed(e.to_string())))?;
    let relay = form.get("RelayState");
    if let Some(encoded) = form.get("SAMLRequest") {
        let xml = request::decode_post(encoded).map_err(|e| refused(&e))?;
        return incoming_request(&app, &tenant, &headers, &xml, Arrival::Post, relay).await;
    }
    if let Some(encoded) = form.get("SAMLResponse") {
        let xml = request::decode_post(encoded).map_err(|e| refused(&e))?;
        return incoming_response(&app, &tenant, &headers, &xml, Arrival::Post, relay).await;
    }
    Err(refused(&RequestError::Malformed(
        "neither SAMLRequest nor SAMLResponse".into(),
    )))
}

async fn sp_by_entity(
    app: &App,
    tenant: &TenantCtx,
    entity_id: Option<&str>,
) -> Result<ServiceProvider, PageError> {
    let entity = entity_id
        .filter(|i| !i.is_empty() && i.len() <= 1024)
        .ok_or_else(|| refused(&RequestError::UnknownSp))?
        .to_string();
    let t = tenant.id().clone();
    app.store
        .run(move |c| sps::find_by_entity_id(c, &t, &entity))
        .await?
        .ok_or_else(|| refused(&RequestError::UnknownSp))
}

/// Verifies the message's signature; returns the message as the signature covers it. Logout
/// messages are always signed (SAML Profiles §4.4.4.1 and §4.4.4.2: over the front-channel
/// bindings a signature is the only way the sender authenticates): an unsigned LogoutRequest
/// naming a user's email would let any page sign that user out. An SP with no signing
/// certificate registered cannot use Single Logout.
fn verified(
    xml: &str,
    root: &str,
    field: &str,
    m: Message,
    sp: &ServiceProvider,
    arrival: &Arrival<'_>,
    endpoint: &str,
) -> Result<Message, PageError> {
    let certs = &sp.settings.signing_certificates;
    if certs.is_empty() {
        return Err(refused(&RequestError::Signature(
            "the service provider registered no signing certificate, so its logout messages \
             cannot be trusted"
                .into(),
        )));
    }
    let m = match arrival {
        Arrival::Redirect { query } => {
            signature::verify_redirect(query, field, certs)
                .map_err(|e| refused(&RequestError::Signature(e)))?;
            m
        }
        Arrival::Post => {
            let signed = signature::verify_post(xml, certs)
                .map_err(|e| refused(&RequestError::Signature(e)))?;
            let signed = logout::parse(&signed, root).map_err(|e| refused(&e))?;
            if signed.issuer != m.issuer {
                return Err(refused(&RequestError::Signature(
                    "the signature does not cover the Issuer".into(),
                )));
            }
            signed
        }
    };
    // Bindings §3.4.5.2 and §3.5.5.2: a signed message names where it was sent, so that it
    // cannot be replayed at another endpoint.
    if m.destination.as_deref() != Some(endpoint) {
        return Err(refused(&RequestError::Malformed(
            "the message's Destination is missing or is not this endpoint".into(),
        )));
    }
    Ok(m)
}

async fn incoming_request(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    xml: &str,
    arrival: Arrival<'_>,
    relay_state: Option<&str>,
) -> Result<Response, PageError> {
    let m = logout::parse(xml, "LogoutRequest").map_err(|e| refused(&e))?;
    let sp = sp_by_entity(app, tenant, m.issuer.as_deref()).await?;
    let slo_url = format!("{}/saml/slo", tenant.issuer);
    let m = verified(
        xml,
        "LogoutRequest",
        "SAMLRequest",
        m,
        &sp,
        &arrival,
        &slo_url,
    )?;
    let now = app.now();
    let fresh = m
        .issue_instant
        .is_some_and(|t| t >= now.0 - request::MAX_AGE && t <= now.0 + request::CLOCK_SKEW);
    if !fresh {
        return Err(refused(&RequestError::Stale));
    }
    if m.not_on_or_after.is_some_and(|t| t <= now.0) {
        return Err(refused(&RequestError::Expired));
    }
    if relay_state.is_some_and(|r| r.len() > request::MAX_RELAY_STATE) {
        return Err(refused(&RequestError::RelayStateTooLong));
    }
    // An SP with no logout endpoint cannot be answered, but its user still asked to sign out:
    // the session ends all the same, and the walk ends on Sesame's "signed out" page.
    let slo = sp.settings.slo.clone();
    let (t, issuer, id) = (
        tenant.id().clone(),
        format!("saml-slo:{}", sp.id),
        m.id.clone(),
    );
    let until = now.plus(request::MAX_AGE + request::CLOCK_SKEW);
    if !app
        .store
        .run(move |c| jtis::remember(c, &t, &issuer, &id, until))
        .await?
    {
        return Err(refused(&RequestError::Replayed));
    }
    let finish = match &slo {
        Some(_) => Finish::Sp {
            sp_id: sp.id.clone(),
            request_id: m.id.clone(),
            relay_state: relay_state.map(str::to_string),
        },
        None => Finish::Page,
    };
    // Core §4.1.2: a request of a version Sesame does not speak is answered as such, not read as
    // if it were 2.0.
    let Some(version) = m.version.as_deref() else {
        return Err(refused(&RequestError::Malformed(
            "the logout request has no Version".into(),
        )));
    };
    if version != "2.0" {
        let Some(slo) = &slo else {
            return Err(refused(&RequestError::Malformed(
                "only SAML 2.0 logout requests are supported".into(),
            )));
        };
        let code = match version.starts_with("1.") {
            true => "RequestVersionDeprecated",
            false => "RequestVersionTooHigh",
        };
        let refusal = Some(("VersionMismatch", code));
        return finish_walk(app, tenant, headers, &finish, slo, refusal).await;
    }
    let current = session::current(app, tenant.id(), headers).await?;
    // The session named by SessionIndex, or the browser's when the SP names none. Each SP holds
    // its own SessionIndex per session (`nameid::session_index`): the candidates are the
    // sessions this SP was given this NameID in, and the browser's. An index that is none of
    // theirs is taken as a session id, as SPs were given before (the ownership check below
    // still applies).
    let named = match m.session_indexes.first() {
        Some(index) => {
            let mut candidates = match &m.name_id {
                Some(name_id) => {
                    let (t, sp_id, name_id) = (tenant.id().clone(), sp.id.clone(), name_id.clone());
                    app.store
                        .run(move |c| sps::sessions_of(c, &t, &sp_id, &name_id))
                        .await?
                }
                None => Vec::new(),
            };
            candidates.extend(current.as_ref().map(|s| s.sid.clone()));
            let key = &app.session_index_key;
            Some(
                candidates
                    .into_iter()
                    .find(|sid| nameid::session_index(key, sid, &sp.id) == *index)
                    .unwrap_or_else(|| index.clone()),
            )
        }
        None => None,
    };
    let sid = named.or_else(|| current.as_ref().map(|s| s.sid.clone()));
    let target = match sid {
        Some(sid) => {
            let t = tenant.id().clone();
            app.store
                .run(move |c| {
                    let Some(session) = sessions::find_by_sid(c, &t, &sid, now)? else {
                        return Ok(None);
                    };
                    let records = sps::of_session(c, &t, &sid)?;
                    Ok(Some((session, records)))
                })
                .await?
        }
        None => None,
    };
    let Some((session, records)) = target else {
        // Nothing live to end: the user is signed out already, which is what the SP asked for.
        return match &slo {
            Some(slo) => finish_walk(app, tenant, headers, &finish, slo, None).await,
            None => finish_walk_without_sp(app, tenant, headers, &finish),
        };
    };
    let own = records
        .iter()
        .any(|r| r.sp_id == sp.id && Some(&r.name_id) == m.name_id.as_ref());
    if !own {
        tracing::warn!(sp = %sp.id, "a LogoutRequest named a session this SP's user does not hold; refused");
        let Some(slo) = &slo else {
            return Err(refused(&RequestError::Malformed(
                "the logout request names a session this service provider's user does not hold"
                    .into(),
            )));
        };
        let denied = Some(("Requester", "RequestDenied"));
        return finish_walk(app, tenant, headers, &finish, slo, denied).await;
    }
    crate::oidc::logout::end(app, tenant, &session).await?;
    let clear = current.as_ref().is_some_and(|c| c.sid == session.sid);
    let walk = Walk {
        sid: session.sid.clone(),
        user_id: session.user_id.clone(),
        finish,
        pending: records.into_iter().filter(|r| r.sp_id != sp.id).collect(),
        waiting: None,
        partial: false,
    };
    let mut response = next_hop(app, tenant, headers, walk).await?;
    if clear {
        clear_cookie(app, tenant, &mut response);
    }
    Ok(response)
}

fn clear_cookie(app: &App, tenant: &TenantCtx, response: &mut Response) {
    let jar = session::jar(app);
    response.headers_mut().append(
        header::SET_COOKIE,
        jar.clear(&jar.session_name(tenant.id())),
    );
}

/// After an OIDC logout or the account page's sign-out ended `session`: the walk through its SAML
/// SPs, ending at `done` (or Sesame's page), or `None` when it had no SAML SP with a logout
/// endpoint.
pub async fn after_logout(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    session: &Session,
    done: Option<String>,
) -> Result<Option<Response>, PageError> {
    let (t, sid) = (tenant.id().clone(), session.sid.clone());
    let records = app.store.run(move |c| sps::of_session(c, &t, &sid)).await?;
    if records.is_empty() {
        return Ok(None);
    }
    let walk = Walk {
        sid: session.sid.clone(),
        user_id: session.user_id.clone(),
        finish: done.map_or(Finish::Page, Finish::Redirect),
        pending: records,
        waiting: None,
        partial: false,
    };
    Ok(Some(next_hop(app, tenant, headers, walk).await?))
}

/// The logout endpoints of `session`'s SAML SPs: where confirming its logout may send the
/// browser next.
pub async fn logout_endpoints(
    app: &App,
    tenant: &TenantCtx,
    session: &Session,
) -> Result<Vec<String>, PageError> {
    let (t, sid) = (tenant.id().clone(), session.sid.clone());
    Ok(app
        .store
        .run(move |c| {
            let mut urls = Vec::new();
            for record in sps::of_session(c, &t, &sid)? {
                if let Some(slo) = sps::find(c, &t, &record.sp_id)?.and_then(|sp| sp.settings.slo) {
                    urls.push(slo.url);
                }
            }
            Ok(urls)
        })
        .await?)
}

/// Sends the browser to the next SP of the walk that has a logout endpoint, or ends the walk.
async fn next_hop(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    mut walk: Walk,
) -> Result<Response, PageError> {
    let now = app.now();
    let idp = super::metadata::entity_id(&tenant.issuer);
    while let Some(next) = walk.pending.pop() {
        let (t, id) = (tenant.id().clone(), next.sp_id.clone());
        let Some(sp) = app.store.run(move |c| sps::find(c, &t, &id)).await? else {
            continue;
        };
        let Some(slo) = sp.settings.slo.clone() else {
            walk.partial = true;
            continue;
        };
        let (request_id, message) = logout::request(
            &idp,
            &slo.url,
            &next.name_id,
            &next.name_id_format,
            &sp.entity_id,
            &nameid::session_index(&app.session_index_key, &walk.sid, &sp.id),
            now,
        );
        walk.waiting = Some((sp.id.clone(), request_id));
        let token = random_token(32);
        let (t, hash, subject) = (
            tenant.id().clone(),
            TokenHash::of(&token),
            walk.user_id.clone(),
        );
        let payload = serde_json::to_value(&walk).unwrap_or_default();
        let expires_at = now.plus(HOP_LIFETIME);
        app.store
            .run(move |c| {
                tokens::insert(
                    c,
                    &t,
                    NewOneTimeToken {
                        hash: &hash,
                        kind: KIND,
                        subject: &subject,
                        payload,
                        expires_at,
                    },
                    now,
                )
            })
            .await?;
        return send(
            app,
            tenant,
            headers,
            &slo,
            "SAMLRequest",
            message,
            Some(&token),
        )
        .await;
    }
    let slo = match &walk.finish {
        Finish::Sp { sp_id, .. } => {
            let (t, id) = (tenant.id().clone(), sp_id.clone());
            app.store
                .run(move |c| sps::find(c, &t, &id))
                .await?
                .and_then(|sp| sp.settings.slo)
        }
        _ => None,
    };
    let status = walk.partial.then_some(("Success", "PartialLogout"));
    match slo {
        Some(slo) => finish_walk(app, tenant, headers, &walk.finish, &slo, status).await,
        None => finish_walk_without_sp(app, tenant, headers, &walk.finish),
    }
}

/// Answers the SP that asked (a LogoutResponse with `status`, success when `None`).
async fn finish_walk(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    finish: &Finish,
    slo: &Endpoint,
    status: Option<(&str, &str)>,
) -> Result<Response, PageError> {
    let Finish::Sp {
        request_id,
        relay_state,
        ..
    } = finish
    else {
        return finish_walk_without_sp(app, tenant, headers, finish);
    };
    let idp = super::metadata::entity_id(&tenant.issuer);
    let to = slo.for_responses();
    let message = logout::response(&idp, &to.url, request_id, status, app.now());
    send(
        app,
        tenant,
        headers,
        &to,
        "SAMLResponse",
        message,
        relay_state.as_deref(),
    )
    .await
}

fn finish_walk_without_sp(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    finish: &Finish,
) -> Result<Response, PageError> {
    match finish {
        Finish::Redirect(url) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(url) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
        _ => flow::message(
            app,
            flow::language::locale(tenant, headers, &[]),
            StatusCode::OK,
            &crate::i18n::Text::new("logout.done_title"),
            &crate::i18n::Text::new("logout.done_text").with("tenant", &tenant.tenant.display_name),
            None,
        ),
    }
}

/// An SP's answer to a LogoutRequest of the walk: the walk goes on, whatever the SP's status
/// (the Sesame session is over either way; a failure is logged).
async fn incoming_response(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    xml: &str,
    arrival: Arrival<'_>,
    relay_state: Option<&str>,
) -> Result<Response, PageError> {
    let m = logout::parse(xml, "LogoutResponse").map_err(|e| refused(&e))?;
    let token = relay_state
        .ok_or_else(|| refused(&RequestError::Malformed("RelayState is missing".into())))?;
    let (t, hash, now) = (tenant.id().clone(), TokenHash::of(token), app.now());
    let expired = || flow::expired(app, flow::language::locale(tenant, headers, &[]));
    let peeked = {
        let (t, hash) = (t.clone(), hash.clone());
        app.store
            .run(move |c| tokens::peek(c, &t, KIND, &hash, now))
            .await?
    };
    let Some(walk) = peeked.and_then(|p| serde_json::from_value::<Walk>(p).ok()) else {
        return expired();
    };
    let Some((sp_id, request_id)) = walk.waiting.clone() else {
        return expired();
    };
    // Checked before the walk's token is spent, so a forged answer cannot end the walk.
    let sp = sp_by_entity(app, tenant, m.issuer.as_deref()).await?;
    if sp.id != sp_id || m.in_response_to.as_deref() != Some(request_id.as_str()) {
        return Err(refused(&RequestError::Malformed(
            "the LogoutResponse does not answer the request Sesame sent".into(),
        )));
    }
    let slo_url = format!("{}/saml/slo", tenant.issuer);
    let m = verified(
        xml,
        "LogoutResponse",
        "SAMLResponse",
        m,
        &sp,
        &arrival,
        &slo_url,
    )?;
    let spent = app
        .store
        .run(move |c| tokens::consume(c, &t, KIND, &hash, now))
        .await?;
    if spent.is_none() {
        return expired();
    }
    let mut walk = walk;
    if !logout::succeeded(&m) {
        tracing::warn!(sp = %sp.id, status = ?m.status, "a service provider could not end its session");
        walk.partial = true;
    }
    next_hop(app, tenant, headers, walk).await
}

/// `message` to `endpoint` in its binding: a Redirect signed on the query string, or the message
/// with an enveloped signature, posted by the browser.
async fn send(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    endpoint: &Endpoint,
    field: &str,
    message: El,
    relay_state: Option<&str>,
) -> Result<Response, PageError> {
    let ring = app.keyring(tenant.id()).await?;
    let key = ring
        .saml_key()
        .ok_or_else(|| PageError::Internal("the tenant has no SAML signing key".into()))?;
    if endpoint.binding == BINDING_REDIRECT {
        let xml = message.canonical();
        let url = logout::redirect_url(&endpoint.url, field, &xml, relay_state, key)
            .map_err(|e| PageError::Internal(e.to_string()))?;
        let mut r = StatusCode::SEE_OTHER.into_response();
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&url) {
            h.insert(header::LOCATION, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(r);
    }
    let signed = message
        .signed(key)
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let encoded = STANDARD.encode(signed.canonical());
    let mut params = vec![(field, encoded.as_str())];
    if let Some(r) = relay_state {
        params.push(("RelayState", r));
    }
    let locale = flow::language::locale(tenant, headers, &[]);
    Ok(crate::web::auto_post(
        &app.templates,
        locale,
        &endpoint.url,
        &params,
    ))
}
