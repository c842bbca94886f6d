//! The browser's SSO session: found from its cookie (stored only as a hash), slid forward on use,
//! and replaced by a fresh one at every sign-in so a cookie planted before sign-in is worthless
//! after it (session fixation, OWASP ASVS 3.2.1).

use axum::http::{HeaderMap, HeaderValue};

use super::cookies::{self, CookieJar};
use crate::app::App;
use crate::clock::UnixTime;
use crate::crypto::secret::{TokenHash, random_token};
use crate::store::StoreError;
use crate::store::sessions::{self, NewSession, Session};
use crate::tenant::TenantId;
use crate::tenant::resolve::TenantCtx;

/// The authentication context of a password sign-in over TLS (SAML Authn Context §3.4.18).
pub const CLASS_PASSWORD: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
/// A one-time code sent to the user's phone or mailbox, with no password.
pub const CLASS_CODE: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileOneFactorUnregistered";
pub const CLASS_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified";
/// The classes a sign-in can reach, as discovery lists them in `acr_values_supported`.
pub const CLASSES: [&str; 2] = [CLASS_PASSWORD, CLASS_CODE];

/// How strongly the session's user was authenticated, as one class that serves as both the SAML
/// `AuthnContextClassRef` and the OpenID Connect `acr`, so an app learns the same thing over
/// either protocol. The class recorded at sign-in wins, so a session keeps what it was granted
/// if the mapping below changes; a session without one gets it from its methods.
pub fn assurance_class(session: &Session) -> &'static str {
    [CLASS_PASSWORD, CLASS_CODE, CLASS_UNSPECIFIED]
        .into_iter()
        .find(|c| session.acr.as_deref() == Some(*c))
        .unwrap_or_else(|| class_of(&session.amr))
}

/// The class a sign-in by the methods `amr` (RFC 8176 values) reaches.
pub fn class_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == "pwd") {
        CLASS_PASSWORD
    } else if amr.iter().any(|m| m == "otp" || m == "sms" || m == "email") {
        CLASS_CODE
    } else {
        CLASS_UNSPECIFIED
    }
}

/// Whether a sign-in of `class` meets `wanted`: any does when none is wanted or when
/// `unspecified` is among them.
pub fn admits(wanted: &[String], class: &str) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| w == class || w == CLASS_UNSPECIFIED)
}

/// Whether `session` reached one of the `wanted` classes.
pub fn reaches(wanted: &[String], session: &Session) -> bool {
    admits(wanted, assurance_class(session))
}

/// Whether some sign-in could reach one of the `wanted` classes, so that sending the user to the
/// sign-in page is worth it.
pub fn reachable(wanted: &[String]) -> bool {
    wanted.is_empty()
        || wanted
            .iter()
            .any(|w| CLASSES.contains(&w.as_str()) || w == CLASS_UNSPECIFIED)
}

/// A completed sign-in, ready to become a session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: String,
    pub amr: Vec<String>,
    pub auth_time: UnixTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// "Remember me" was ticked: the session lasts the tenant's `remember_me_days` on this
    /// browser (a persistent cookie), without an idle timeout.
    pub remember: bool,
}

/// The idle and absolute lifetimes of a new session, and the cookie's `Max-Age`: a remembered
/// session lasts `remember_secs` however idle, in a cookie that outlives the browser; any other
/// lives by the configured timeouts in a cookie that ends with the browser.
fn lifetimes(app: &App, remember_secs: Option<i64>) -> (i64, i64, Option<i64>) {
    match remember_secs {
        Some(secs) => (secs, secs, Some(secs)),
        None => (
            app.config.session.idle_timeout,
            app.config.session.absolute_timeout,
            None,
        ),
    }
}

pub fn jar(app: &App) -> CookieJar {
    CookieJar {
        secure: app.config.https(),
    }
}

/// The browser's CSRF binding: the cookie's value, and a `Set-Cookie` when the browser had none.
pub fn browser(app: &App, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let jar = jar(app);
    match cookies::read(headers, &jar.browser_name()) {
        Some(value) => (value, None),
        None => {
            let value = cookies::new_value();
            let set = jar.set(&jar.browser_name(), &value, None);
            (value, Some(set))
        }
    }
}

/// The live session the request's cookie names, if any; its idle expiry slides forward.
pub async fn current(
    app: &App,
    tenant: &TenantId,
    headers: &HeaderMap,
) -> Result<Option<Session>, StoreError> {
    match Lookup::of(app, tenant, headers) {
        Some(lookup) => app.store.run_quick(move |c| lookup.run(c)).await,
        None => Ok(None),
    }
}

/// Longest form body [`resend_as_get`] moves into a URL: longer ones stay POSTs.
const MAX_RESENT_QUERY: usize = 4096;

/// For a protocol endpoint that takes the same parameters by GET and POST (authorization,
/// RP-initiated logout): a POST from another site carries no `SameSite=Lax` session cookie, so
/// the user would look signed out. The same request as a top-level GET does carry it, so such a
/// POST is answered with a 303 to `{issuer}{endpoint}?{body}`. Only when the browser says the
/// request is cross-site (`Sec-Fetch-Site`) and brought no session cookie.
pub fn resend_as_get(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    endpoint: &str,
    body: &[u8],
) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if !cross_site
        || body.len() > MAX_RESENT_QUERY
        || Lookup::of(app, tenant.id(), headers).is_some()
    {
        return None;
    }
    let query = std::str::from_utf8(body).ok()?;
    // A form body is already URL-encoded; anything that is not stays a POST and fails there.
    let plain = query
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%+=&*".contains(&b));
    if !plain {
        return None;
    }
    let location = HeaderValue::from_str(&format!("{}{endpoint}?{query}", tenant.issuer)).ok()?;
    Some(
        (
            axum::http::StatusCode::SEE_OTHER,
            [(axum::http::header::LOCATION, location)],
        )
            .into_response(),
    )
}

/// [`current`] as a step of a larger store call, for a handler that must write something anyway
/// and saves a round trip by reading the session in the same call.
pub struct Lookup {
    tenant: TenantId,
    hash: TokenHash,
    idle: i64,
    now: UnixTime,
}

impl Lookup {
    /// `None` when the request carries no session cookie for `tenant`.
    pub fn of(app: &App, tenant: &TenantId, headers: &HeaderMap) -> Option<Lookup> {
        let value = cookies::read(headers, &jar(app).session_name(tenant))?;
        Some(Lookup {
            tenant: tenant.clone(),
            hash: TokenHash::of(&value),
            idle: app.config.session.idle_timeout,
            now: app.now(),
        })
    }

    pub fn run(&self, c: &mut crate::store::Conn) -> Result<Option<Session>, StoreError> {
        sessions::touch(c, &self.tenant, &self.hash, self.idle, self.now)
    }

    /// The same read, to be made with others ([`sessions::touch_many`]).
    pub fn touch(&self) -> sessions::Touch {
        sessions::Touch {
            tenant: self.tenant.clone(),
            cookie_hash: self.hash.clone(),
            idle: self.idle,
            now: self.now,
        }
    }
}

/// Starts a new session for `signed_in`, with a new cookie value (the caller ends the browser's
/// previous session first). Returns the session and its `Set-Cookie`.
pub async fn establish(
    app: &App,
    tenant: &TenantCtx,
    signed_in: SignedIn,
) -> Result<(Session, HeaderValue), StoreError> {
    let value = cookies::new_value();
    let hash = TokenHash::of(&value);
    let sid = random_token(16);
    let now = app.now();
    let remember = remember_secs(tenant).filter(|_| signed_in.remember);
    let (idle, absolute, max_age) = lifetimes(app, remember);
    let tenant = tenant.id();
    let t = tenant.clone();
    let session = {
        let stored_sid = sid.clone();
        let s = signed_in.clone();
        app.store
            .run(move |c| {
                sessions::create(
                    c,
                    &t,
                    &NewSession {
                        cookie_hash: &hash,
                        sid: &stored_sid,
                        user_id: &s.user_id,
                        auth_time: s.auth_time,
                        amr: &s.amr,
                        acr: Some(class_of(&s.amr)),
                        remember: remember.is_some(),
                        user_agent: s.user_agent.as_deref(),
                        ip: s.ip.as_deref(),
                        idle_expires_at: now.plus(idle),
                        absolute_expires_at: now.plus(absolute),
                    },
                    now,
                )
            })
            .await?;
        Session {
            sid,
            user_id: signed_in.user_id,
            auth_time: signed_in.auth_time,
            acr: Some(class_of(&signed_in.amr).to_string()),
            amr: signed_in.amr,
            remember: remember.is_some(),
            user_agent: signed_in.user_agent,
            ip: signed_in.ip,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now.plus(idle.min(absolute)),
            absolute_expires_at: now.plus(absolute),
        }
    };
    let cookie = jar(app).set(&jar(app).session_name(tenant), &value, max_age);
    Ok((session, cookie))
}

/// Renews `previous` (the same user signing in again) with a new cookie value, keeping its `sid`
/// so the apps signed in through it stay signed in. `None` if it ended meanwhile.
pub async fn renew(
    app: &App,
    tenant: &TenantCtx,
    previous: &Session,
    signed_in: &SignedIn,
) -> Result<Option<(Session, HeaderValue)>, StoreError> {
    let value = cookies::new_value();
    let hash = TokenHash::of(&value);
    let now = app.now();
    let remember = remember_secs(tenant).filter(|_| signed_in.remember);
    let (idle, absolute, max_age) = lifetimes(app, remember);
    let tenant = tenant.id();
    let (t, sid, amr, auth_time) = (
        tenant.clone(),
        previous.sid.clone(),
        signed_in.amr.clone(),
        signed_in.auth_time,
    );
    let renewed = app
        .store
        .run(move |c| {
            sessions::renew(
                c,
                &t,
                &sid,
                &hash,
                auth_time,
                &amr,
                class_of(&amr),
                remember.is_some(),
                now.plus(idle),
                now.plus(absolute),
                now,
            )
        })
        .await?;
    if !renewed {
        return Ok(None);
    }
    let session = Session {
        auth_time: signed_in.auth_time,
        amr: signed_in.amr.clone(),
        acr: Some(class_of(&signed_in.amr).to_string()),
        remember: remember.is_some(),
        last_seen_at: now,
        idle_expires_at: now.plus(idle.min(absolute)),
        absolute_expires_at: now.plus(absolute),
        ..previous.clone()
    };
    let cookie = jar(app).set(&jar(app).session_name(tenant), &value, max_age);
    Ok(Some((session, cookie)))
}

/// A new cookie value for `session`, keeping everything else about it: after a password
/// change, so a cookie copied from the browser before it stops working (OWASP session
/// management: renew the id when privileges change). `None` if the session ended meanwhile.
pub async fn replace_cookie(
    app: &App,
    tenant: &TenantId,
    session: &Session,
) -> Result<Option<HeaderValue>, StoreError> {
    let value = cookies::new_value();
    let hash = TokenHash::of(&value);
    let (t, sid) = (tenant.clone(), session.sid.clone());
    let replaced = app
        .store
        .run(move |c| sessions::replace_cookie(c, &t, &sid, &hash))
        .await?;
    // A remembered session's cookie outlives the browser until the session's absolute end;
    // any other ends with the browser, as when it was set.
    let max_age = session
        .remember
        .then(|| (session.absolute_expires_at.0 - app.now().0).max(0));
    Ok(replaced.then(|| jar(app).set(&jar(app).session_name(tenant), &value, max_age)))
}

/// How long "Remember me" keeps a session (tenant setting `remember_me_days`, 0 to 365, default
/// 30); `None` when the tenant does not offer it.
pub fn remember_secs(tenant: &TenantCtx) -> Option<i64> {
    let days = tenant
        .tenant
        .settings
        .get("remember_me_days")
        .and_then(serde_json::Value::as_i64)
        .filter(|d| (0..=365).contains(d))
        .unwrap_or(DEFAULT_REMEMBER_DAYS);
    (days > 0).then_some(days * 86_400)
}

pub const DEFAULT_REMEMBER_DAYS: i64 = 30;
