//! RP-Initiated Logout 1.0 (`end_session_endpoint`, GET and POST) and ending a session for every
//! app it signed into: session-bound refresh tokens are revoked and each client that registered a
//! `backchannel_logout_uri` gets a logout token (Back-Channel Logout 1.0, [`super::backchannel`]).
//!
//! A request whose valid `id_token_hint` is of the browser's own session is carried out at once.
//! Otherwise anybody's page could sign the user out, so the user confirms on a CSRF-protected
//! form first (RP-Initiated Logout §2: the OP SHOULD ask, and MUST when the hint is of another
//! session or user). Only the browser's own session ever ends here. `post_logout_redirect_uri`
//! must exactly match one the client registered, or the user sees a page instead of a redirect.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde_json::{Map, Value};

use super::backchannel;
use super::form::OAuthForm;
use super::redirect::RedirectUri;
use crate::app::App;
use crate::flow::{self, login, session};
use crate::i18n::{Locale, Text};
use crate::store::access_revocations::Revoke;
use crate::store::clients::Client;
use crate::store::sessions::{self, Session};
use crate::store::{StoreError, refresh};
use crate::tenant::resolve::TenantCtx;
use crate::web::{self, error::PageError};

/// The CSRF purpose of the confirmation form.
const CONFIRM: &str = "logout";

/// A logout request, checked: where to go afterwards and which session the hint names.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutRequest {
    pub client: Option<Client>,
    /// Registered, exactly matched.
    pub redirect: Option<RedirectUri>,
    pub state: Option<String>,
    /// The verified hint's `sub` and `sid`.
    pub hinted: Option<(String, Option<String>)>,
    /// The languages the app would like the pages in (§2 `ui_locales`), most preferred first.
    pub ui_locales: Vec<String>,
}

/// More language tags than any page needs to choose one.
const MAX_UI_LOCALES: usize = 8;

/// Pure checks of RP-Initiated Logout §2 and §3; `hint` is the verified hint's claims (`None`
/// when absent), `client` the client the request names (by `client_id` or the hint's `aud`).
pub fn check(
    params: &OAuthForm,
    hint: Option<&Map<String, Value>>,
    issuer: &str,
    client: Option<&Client>,
) -> Result<LogoutRequest, String> {
    let hinted = match hint {
        Some(claims) => {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
                return Err("The sign-out request names a token from another issuer.".into());
            }
            let sub = claims
                .get("sub")
                .and_then(Value::as_str)
                .ok_or("The sign-out request's token names nobody.")?;
            let sid = claims
                .get("sid")
                .and_then(Value::as_str)
                .map(str::to_string);
            Some((sub.to_string(), sid))
        }
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        Some(uri) => {
            let client = client
                .ok_or("The app asked to return to an address, but did not say which app it is.")?;
            Some(
                RedirectUri::registered(uri, &client.post_logout_redirect_uris)
                    .ok_or("The app asked to return to an address it has not registered.")?,
            )
        }
        None => None,
    };
    Ok(LogoutRequest {
        client: client.cloned(),
        redirect,
        state: params.get("state").map(str::to_string),
        hinted,
        ui_locales: params
            .get("ui_locales")
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .take(MAX_UI_LOCALES)
            .map(str::to_string)
            .collect(),
    })
}

/// The client a logout request names: `client_id`, which must agree with the hint's `aud`.
fn named_client_id<'a>(
    params: &'a OAuthForm,
    hint: Option<&'a Map<String, Value>>,
) -> Result<Option<&'a str>, String> {
    let aud = hint.and_then(|c| match c.get("aud") {
        Some(Value::String(a)) => Some(a.as_str()),
        Some(Value::Array(list)) if list.len() == 1 => list[0].as_str(),
        _ => None,
    });
    match (params.get("client_id"), aud) {
        (Some(id), Some(aud)) if id != aud => {
            Err("The sign-out request names two different apps.".into())
        }
        (Some(id), _) => Ok(Some(id)),
        (None, aud) => Ok(aud),
    }
}

/// `GET`/`POST /t/{tenant}/logout`
pub async fn end_session(
    State(app): State<App>,
    tenant: TenantCtx,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageError> {
    let raw = if method == Method::POST {
        if let Some(resent) =
            flow::session::resend_as_get(&app, &tenant, &headers, "/logout", &body)
        {
            return Ok(resent);
        }
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    let params = OAuthForm::parse(&raw)
        .map_err(|e| PageError::BadRequest(format!("The sign-out request is malformed: {e}.")))?;
    let req = checked(&app, &tenant, &params).await?;
    let current = session::current(&app, tenant.id(), &headers).await?;
    // Only this browser's own session can end here, and at once only when the hint is of that
    // session (RP-Initiated Logout §2: the OP MUST ask otherwise). A hint alone never ends a
    // session elsewhere: every app of the tenant holds its users' ID tokens, expired ones are
    // accepted, and a GET would sign anyone out of every app. A HEAD (which axum routes here
    // with the GET) is safe by definition (RFC 9110 §9.2.1): it gets the page that asks, and
    // ends nothing.
    let ends_now = |s: &Session| {
        method != Method::HEAD && req.hinted.as_ref().is_some_and(|hint| is_of(hint, s))
    };
    let target = match current {
        Some(s) if ends_now(&s) => Some(s),
        Some(s) => return confirm_page(&app, &tenant, &headers, &req, &s).await,
        None => None,
    };
    let locale = flow::language::locale(&tenant, &headers, &req.ui_locales);
    finish(&app, &tenant, &headers, &req, target, locale).await
}

/// Whether the hint's `(sub, sid)` is of `session`: its user, and its `sid` when the hint has
/// one.
fn is_of((sub, sid): &(String, Option<String>), session: &Session) -> bool {
    session.user_id == *sub && sid.as_ref().is_none_or(|sid| *sid == session.sid)
}

/// `POST /t/{tenant}/logout/confirm`: the user confirmed on the page.
pub async fn confirm(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = OAuthForm::parse(&body)
        .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
    let browser = flow::cookies::read(&headers, &session::jar(&app).browser_name());
    if !app
        .csrf
        .verify(browser.as_deref(), CONFIRM, params.get("csrf"))
    {
        return Err(PageError::Refused(Text::new("login.form_expired")));
    }
    let req = checked(&app, &tenant, &params).await?;
    let current = session::current(&app, tenant.id(), &headers).await?;
    let locale = flow::language::locale(&tenant, &headers, &req.ui_locales);
    finish(&app, &tenant, &headers, &req, current, locale).await
}

async fn checked(
    app: &App,
    tenant: &TenantCtx,
    params: &OAuthForm,
) -> Result<LogoutRequest, PageError> {
    let hint = match params.get("id_token_hint") {
        Some(token) => {
            let ring = app.keyring(tenant.id()).await?;
            // Expired hints are fine: they still say who signed in where (§2).
            Some(ring.verify(token, "JWT").ok_or_else(|| {
                PageError::BadRequest(
                    "The app sent a sign-out request with an invalid token.".into(),
                )
            })?)
        }
        None => None,
    };
    let hint = hint.as_deref();
    let client_id = named_client_id(params, hint).map_err(PageError::BadRequest)?;
    let client = match client_id {
        Some(id) if id.len() <= 128 => app.client(tenant.id(), id).await?,
        _ => None,
    };
    if client_id.is_some() && client.is_none() {
        return Err(PageError::BadRequest(
            "The app that sent you here is not registered with this organization.".into(),
        ));
    }
    check(params, hint, &tenant.issuer, client.as_deref()).map_err(PageError::BadRequest)
}

async fn confirm_page(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    req: &LogoutRequest,
    session: &Session,
) -> Result<Response, PageError> {
    let slo_urls = crate::saml::slo::logout_endpoints(app, tenant, session).await?;
    let (browser, set_cookie) = session::browser(app, headers);
    // The app goes along by its id even when only the hint named it, so that the confirmed
    // request can still return to it.
    let ui_locales = req.ui_locales.join(" ");
    let carried: Vec<(&str, &str)> = [
        (
            "client_id",
            req.client.as_ref().map(|c| c.client_id.as_str()),
        ),
        (
            "post_logout_redirect_uri",
            req.redirect.as_ref().map(RedirectUri::as_str),
        ),
        ("state", req.state.as_deref()),
        (
            "ui_locales",
            Some(ui_locales.as_str()).filter(|l| !l.is_empty()),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    let html = app.templates.render_in(
        "logout.html",
        flow::language::locale(tenant, headers, &req.ui_locales),
        context! {
            tenant_name => &tenant.tenant.display_name,
            action => format!("{}/logout/confirm", login::tenant_path(tenant)),
            csrf => app.csrf.token(&browser, CONFIRM),
            params => carried,
        },
    )?;
    // Confirming may send the browser on to the session's SAML apps' logout endpoints.
    let targets: Vec<&str> = req
        .redirect
        .as_ref()
        .map(RedirectUri::as_str)
        .into_iter()
        .chain(slo_urls.iter().map(String::as_str))
        .collect();
    let mut response = web::page_to(StatusCode::OK, html, &targets);
    if let Some(set) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    Ok(response)
}

/// Ends `target` (if any), which is this browser's session, clears its cookie, and goes where the
/// app asked or says goodbye.
async fn finish(
    app: &App,
    tenant: &TenantCtx,
    headers: &HeaderMap,
    req: &LogoutRequest,
    target: Option<Session>,
    locale: Locale,
) -> Result<Response, PageError> {
    let done = req.redirect.as_ref().map(|uri| {
        let mut url = uri.as_str().to_string();
        if let Some(state) = &req.state
            && let Ok(mut u) = url::Url::parse(uri.as_str())
        {
            u.query_pairs_mut().append_pair("state", state);
            url = u.to_string();
        }
        url
    });
    // The session's SAML SPs are visited first, through the browser; the walk ends where this
    // logout would have.
    let mut walk = None;
    if let Some(s) = &target {
        end(app, tenant, s).await?;
        walk = crate::saml::slo::after_logout(app, tenant, headers, s, done.clone()).await?;
    }
    let mut response = match (walk, &done) {
        (Some(walk), _) => walk,
        (None, Some(url)) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(url) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        (None, None) => flow::message(
            app,
            locale,
            StatusCode::OK,
            &Text::new("logout.done_title"),
            &Text::new("logout.done_text").with("tenant", &tenant.tenant.display_name),
            None,
        )?,
    };
    let jar = session::jar(app);
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        jar.clear(&jar.session_name(tenant.id())),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Ends `session` everywhere: the session itself, the access tokens issued in it, its refresh
/// tokens (all but offline_access), and a back-channel logout to every client that signed in
/// through it. The notifications run in the background; the user never waits for an app.
pub async fn end(app: &App, tenant: &TenantCtx, session: &Session) -> Result<(), StoreError> {
    let (t, sid, now) = (tenant.id().clone(), session.sid.clone(), app.now());
    let clients = app
        .store
        .run(move |c| {
            // One transaction: a session ended with its tokens still live could not be ended
            // again to revoke them.
            crate::store::tx::write(c, |c| {
                sessions::revoke(c, &t, &sid, now)?;
                refresh::revoke_for_session(c, &t, &sid, now)?;
                sessions::clients_of(c, &t, &sid)
            })
        })
        .await?;
    // A code redeemed at this moment (its statement holds the session row, so ours waited for
    // it) signs its tokens after its commit: the revocation counts from after ours too. Moments
    // are whole seconds, so this writes again only when a second passed meanwhile.
    let after = app.now();
    if after.0 > now.0 {
        let (t, sid) = (tenant.id().clone(), session.sid.clone());
        app.store
            .run(move |c| {
                crate::store::access_revocations::record(c, &t, Revoke::Session(&sid), after)
            })
            .await?;
    }
    app.note_revoked(tenant.id(), Revoke::Session(&session.sid), after);
    for client_id in clients {
        if let Some(client) = app.client(tenant.id(), &client_id).await?
            && client.backchannel_logout_uri.is_some()
        {
            backchannel::notify(
                app.clone(),
                tenant.clone(),
                (*client).clone(),
                session.clone(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://id.example.com/t/acme";

    fn client() -> Client {
        Client {
            post_logout_redirect_uris: vec!["https://crm.example.com/bye".into()],
            ..Client::for_tests("crm", crate::store::clients::AuthMethod::ClientSecretBasic)
        }
    }

    fn form(q: &str) -> OAuthForm {
        OAuthForm::parse(q.as_bytes()).unwrap()
    }

    #[test]
    fn post_logout_redirects_must_be_registered_exactly() {
        let c = client();
        let ok = check(
            &form("post_logout_redirect_uri=https%3A%2F%2Fcrm.example.com%2Fbye&state=s"),
            None,
            ISS,
            Some(&c),
        )
        .unwrap();
        assert_eq!(ok.redirect.unwrap().as_str(), "https://crm.example.com/bye");
        assert_eq!(ok.state.as_deref(), Some("s"));
        for bad in [
            "https%3A%2F%2Fcrm.example.com%2Fbye%2F",
            "https%3A%2F%2Fevil.example%2Fbye",
            "https%3A%2F%2Fcrm.example.com%2Fbye%3Fnext%3Dhttps%3A%2F%2Fevil.example",
        ] {
            let q = format!("post_logout_redirect_uri={bad}");
            assert!(check(&form(&q), None, ISS, Some(&c)).is_err(), "{bad}");
        }
        assert!(
            check(
                &form("post_logout_redirect_uri=https%3A%2F%2Fcrm.example.com%2Fbye"),
                None,
                ISS,
                None
            )
            .is_err(),
            "no client named"
        );
    }

    #[test]
    fn hints_must_come_from_this_issuer_and_agree_with_client_id() {
        let mut hint = Map::new();
        hint.insert("iss".into(), json!(ISS));
        hint.insert("sub".into(), json!("u1"));
        hint.insert("aud".into(), json!("crm"));
        hint.insert("sid".into(), json!("s1"));
        let r = check(&form(""), Some(&hint), ISS, None).unwrap();
        assert_eq!(r.hinted, Some(("u1".into(), Some("s1".into()))));
        assert!(check(&form(""), Some(&hint), "https://other.example", None).is_err());
        assert_eq!(
            named_client_id(&form(""), Some(&hint)).unwrap(),
            Some("crm")
        );
        assert!(named_client_id(&form("client_id=wiki"), Some(&hint)).is_err());
    }
}
