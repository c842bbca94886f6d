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

/// A completed sign-in, ready to become a session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: String,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub auth_time: UnixTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
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
    let Some(value) = cookies::read(headers, &jar(app).session_name(tenant)) else {
        return Ok(None);
    };
    let (t, hash, idle, now) = (
        tenant.clone(),
        TokenHash::of(&value),
        app.config.session.idle_timeout,
        app.now(),
    );
    app.store
        .run(move |c| sessions::touch(c, &t, &hash, idle, now))
        .await
}

/// Starts a new session for `signed_in`, with a new cookie value (the caller ends the browser's
/// previous session first). Returns the session and its `Set-Cookie`.
pub async fn establish(
    app: &App,
    tenant: &TenantId,
    signed_in: SignedIn,
) -> Result<(Session, HeaderValue), StoreError> {
    let value = cookies::new_value();
    let hash = TokenHash::of(&value);
    let sid = random_token(16);
    let now = app.now();
    let idle = app.config.session.idle_timeout;
    let absolute = app.config.session.absolute_timeout;
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
                        acr: s.acr.as_deref(),
                        remember: false,
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
            amr: signed_in.amr,
            acr: signed_in.acr,
            remember: false,
            user_agent: signed_in.user_agent,
            ip: signed_in.ip,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now.plus(idle.min(absolute)),
            absolute_expires_at: now.plus(absolute),
        }
    };
    let cookie = jar(app).set(&jar(app).session_name(tenant), &value, None);
    Ok((session, cookie))
}

/// Renews `previous` (the same user signing in again) with a new cookie value, keeping its `sid`
/// so the apps signed in through it stay signed in. `None` if it ended meanwhile.
pub async fn renew(
    app: &App,
    tenant: &TenantId,
    previous: &Session,
    signed_in: &SignedIn,
) -> Result<Option<(Session, HeaderValue)>, StoreError> {
    let value = cookies::new_value();
    let hash = TokenHash::of(&value);
    let now = app.now();
    let idle = app.config.session.idle_timeout;
    let absolute = app.config.session.absolute_timeout;
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
        last_seen_at: now,
        idle_expires_at: now.plus(idle.min(absolute)),
        absolute_expires_at: now.plus(absolute),
        ..previous.clone()
    };
    let cookie = jar(app).set(&jar(app).session_name(tenant), &value, None);
    Ok(Some((session, cookie)))
}

/// Ends the request's session, if any; returns it and the `Set-Cookie` that clears the cookie.
pub async fn end(
    app: &App,
    tenant: &TenantId,
    headers: &HeaderMap,
) -> Result<(Option<Session>, HeaderValue), StoreError> {
    let clear = jar(app).clear(&jar(app).session_name(tenant));
    let Some(session) = current(app, tenant, headers).await? else {
        return Ok((None, clear));
    };
    let (t, sid, now) = (tenant.clone(), session.sid.clone(), app.now());
    app.store
        .run(move |c| sessions::revoke(c, &t, &sid, now))
        .await?;
    Ok((Some(session), clear))
}
