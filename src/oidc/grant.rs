//! The user grants of the token endpoint: `authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6)
//! and `refresh_token` (§6, RFC 9700 §4.14), and the tokens both issue: an RFC 9068 access
//! token, an ID token when `openid` was granted (OIDC Core §3.1.3.3, §12.2), and a rotated
//! refresh token for clients registered for the refresh grant.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::access_token::{self, AccessToken};
use super::claims;
use super::code::{self, CodeGrant, Presented, Redemption};
use super::error::OAuthError;
use super::form::OAuthForm;
use super::id_token::{self, IdToken};
use super::pkce::CodeChallenge;
use super::scope::Scope;
use crate::app::App;
use crate::clock::UnixTime;
use std::sync::Arc;

use crate::crypto::keys::{KeyError, Keyring};
use crate::crypto::secret::{TokenHash, random_token};
use crate::flow::{access, login};
use crate::store::access_revocations::Revoke;
use crate::store::clients::Client;
use crate::store::refresh::{self, NewRefreshToken, Once, Rotation};
use crate::store::subjects::Subject;
use crate::store::{sessions, tx};
use crate::tenant::TenantId;
use crate::tenant::resolve::TenantCtx;

const INVALID_CODE: &str = "the authorization code is invalid, expired or already used";
const INVALID_REFRESH: &str = "the refresh token is invalid, expired or revoked";

fn registered_for(client: &Client, grant: &str) -> Result<(), OAuthError> {
    if client.grant_types.iter().any(|g| g == grant) {
        Ok(())
    } else {
        Err(OAuthError::UnauthorizedClient(format!(
            "this client is not registered for the {grant} grant"
        )))
    }
}

/// The checks RFC 6749 §4.1.3 and RFC 7636 §4.6 make of a redeemed code's request.
fn check_redemption(
    grant: &CodeGrant,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    if redirect_uri != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri must be the one of the authorization request".into(),
        ));
    }
    match (&grant.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let challenge = CodeChallenge::parse(challenge, Some("S256"))
                .map_err(|_| OAuthError::InvalidGrant(INVALID_CODE.into()))?;
            match challenge.verify(verifier) {
                Ok(true) => Ok(()),
                Ok(false) => Err(OAuthError::InvalidGrant(
                    "code_verifier does not match the code_challenge".into(),
                )),
                Err(e) => Err(OAuthError::InvalidGrant(e.to_string())),
            }
        }
        (Some(_), None) => Err(OAuthError::InvalidGrant("code_verifier is missing".into())),
        // RFC 9700 §2.1.1: without a challenge, a verifier is refused, not ignored.
        (None, Some(_)) => Err(OAuthError::InvalidGrant(
            "the authorization request had no code_challenge".into(),
        )),
        (None, None) => Ok(()),
    }
}

/// What redeeming a code in its transaction came to.
enum Redeemed {
    Granted(Box<CodeGrant>),
    Refused(OAuthError),
    /// Redeemed before: the grant it started (if known) is revoked in the store.
    Replayed(Option<String>),
}

/// A new refresh-token family's sliding and absolute lifetimes, in seconds.
fn new_family_lifetimes(app: &App, client: &Client) -> (i64, i64) {
    let absolute = client
        .refresh_token_lifetime
        .unwrap_or(app.config.tokens.refresh_token_lifetime);
    (app.config.tokens.refresh_token_idle_lifetime, absolute)
}

/// Spends a sealed code (records its `once` id) and, if it was not spent before, the request
/// passed its checks and the session it came from is still live, stores the `refresh` token of
/// the family it starts: one store call (one statement on PostgreSQL), so a replay arriving
/// meanwhile always finds the family it must revoke. A refused request still spends the code: a
/// wrong PKCE verifier gets no second guess.
async fn spend_sealed(
    app: &App,
    tenant: &TenantId,
    client: &Client,
    (once, once_until): (String, UnixTime),
    grant: &CodeGrant,
    refresh: Option<TokenHash>,
    now: UnixTime,
) -> Result<Once, OAuthError> {
    let (t, cid) = (tenant.clone(), client.client_id.clone());
    let Some(hash) = refresh else {
        let sid = grant.sid.clone();
        return Ok(app
            .store
            .run_quick(move |c| refresh::spend_once(c, &t, &cid, (&once, once_until), &sid, now))
            .await?);
    };
    let (sliding, absolute) = new_family_lifetimes(app, client);
    let grant = grant.clone();
    Ok(app
        .store
        .run_quick(move |c| {
            let token = new_family(&grant, &hash, &cid, now.plus(sliding), now.plus(absolute));
            refresh::issue_once(c, &t, &once, once_until, &token, now)
        })
        .await?)
}

/// The refusal of a code whose session ended between its issue and its redemption: a logout or
/// a password reset in that minute must not be undone by a code still in flight.
fn session_ended() -> OAuthError {
    OAuthError::InvalidGrant("the sign-in this code came from has ended".into())
}

/// Revokes a grant: its refresh-token family and the access tokens issued under it.
async fn revoke_grant(
    app: &App,
    tenant: &TenantId,
    family: &str,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let (t, f) = (tenant.clone(), family.to_string());
    app.store
        .run(move |c| refresh::revoke_family(c, &t, &f, now))
        .await?;
    app.note_revoked(tenant, Revoke::Grant(family), now);
    Ok(())
}

/// The first refresh token of the family a code's redemption starts: it carries the sign-in's
/// facts forward, so the ID tokens of later refreshes state them too (OIDC Core §12.2).
fn new_family<'a>(
    grant: &'a CodeGrant,
    hash: &'a TokenHash,
    client_id: &'a str,
    expires_at: UnixTime,
    family_expires_at: UnixTime,
) -> NewRefreshToken<'a> {
    NewRefreshToken {
        hash,
        family_id: &grant.family_id,
        client_id,
        user_id: Some(&grant.user_id),
        sid: Some(&grant.sid),
        scope: &grant.scope,
        auth_time: Some(grant.auth_time),
        amr: &grant.amr,
        acr: grant.acr.as_deref(),
        claims: grant.claims.as_ref().map(Value::to_string),
        expires_at,
        family_expires_at,
    }
}

/// RFC 6749 §4.1.3.
pub async fn authorization_code(
    app: &App,
    tenant: &TenantCtx,
    client: &Client,
    form: &OAuthForm,
) -> Result<Response, OAuthError> {
    registered_for(client, "authorization_code")?;
    let presented = form.require("code")?.to_string();
    let redirect_uri = form.get("redirect_uri").map(str::to_string);
    let verifier = form.get("code_verifier").map(str::to_string);
    let refresh_token = client
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
        .then(|| random_token(32));
    let refresh_hash = refresh_token.as_deref().map(TokenHash::of);
    let (t, now, cid) = (tenant.id().clone(), app.now(), client.client_id.clone());
    let redeemed = match code::open_presented(&app.code_seal, &t, &cid, &presented, now) {
        Presented::Invalid => return Err(OAuthError::InvalidGrant(INVALID_CODE.into())),
        Presented::Sealed { id, exp, grant } => {
            let checked = check_redemption(&grant, redirect_uri.as_deref(), verifier.as_deref());
            let issue = refresh_hash.filter(|_| checked.is_ok());
            let spent = spend_sealed(app, &t, client, (id, exp), &grant, issue, now).await?;
            match (spent, checked) {
                (Once::Issued, Ok(())) => Redeemed::Granted(grant),
                (Once::Issued | Once::SessionEnded, Err(e)) => Redeemed::Refused(e),
                (Once::SessionEnded, Ok(())) => Redeemed::Refused(session_ended()),
                (Once::Used, _) => {
                    // §4.1.2: a code used twice revokes what its first use issued.
                    let (t, family) = (t.clone(), grant.family_id.clone());
                    app.store
                        .run(move |c| refresh::revoke_family(c, &t, &family, now))
                        .await?;
                    Redeemed::Replayed(Some(grant.family_id))
                }
            }
        }
        // The code is consumed and its refresh token stored in one transaction, so a replay
        // arriving meanwhile always finds the family it must revoke. A refused request still
        // spends the code.
        Presented::Stored => {
            let t = t.clone();
            let (sliding, absolute) = new_family_lifetimes(app, client);
            app.store
                .run(move |c| {
                    tx::write(c, |c| {
                        match code::redeem_stored(c, &t, &cid, &presented, now)? {
                            Redemption::Live(grant) => {
                                if let Err(e) = check_redemption(
                                    &grant,
                                    redirect_uri.as_deref(),
                                    verifier.as_deref(),
                                ) {
                                    return Ok(Redeemed::Refused(e));
                                }
                                if !sessions::is_live(c, &t, &grant.sid, now)? {
                                    return Ok(Redeemed::Refused(session_ended()));
                                }
                                if let Some(hash) = &refresh_hash {
                                    let (expires, family_expires) =
                                        (now.plus(sliding), now.plus(absolute));
                                    let token =
                                        new_family(&grant, hash, &cid, expires, family_expires);
                                    refresh::issue(c, &t, &token, now)?;
                                }
                                Ok(Redeemed::Granted(grant))
                            }
                            Redemption::Replayed { family_id } => {
                                // §4.1.2: a code used twice revokes what its first use issued.
                                if let Some(family) = &family_id {
                                    refresh::revoke_family(c, &t, family, now)?;
                                }
                                Ok(Redeemed::Replayed(family_id))
                            }
                            Redemption::Invalid => Ok(Redeemed::Refused(OAuthError::InvalidGrant(
                                INVALID_CODE.into(),
                            ))),
                        }
                    })
                })
                .await?
        }
    };
    let grant = match redeemed {
        Redeemed::Granted(grant) => grant,
        Redeemed::Refused(e) => return Err(e),
        Redeemed::Replayed(family) => {
            if let Some(family) = family {
                app.note_revoked(tenant.id(), Revoke::Grant(&family), now);
            }
            tracing::warn!(client_id = %client.client_id, "an authorization code was presented twice; its tokens are revoked");
            return Err(OAuthError::InvalidGrant(INVALID_CODE.into()));
        }
    };
    let subject = match usable_subject(app, tenant.id(), client, &grant.user_id).await {
        Ok(s) => s,
        Err(e) => {
            // The refresh token stored with the code must not outlive this refusal.
            if refresh_token.is_some() {
                revoke_grant(app, tenant.id(), &grant.family_id, now).await?;
            }
            return Err(e);
        }
    };
    let scope = Scope::parse(&grant.scope).unwrap_or_default();
    let context = TokenContext {
        subject: &subject,
        scope: &scope,
        nonce: grant.nonce.as_deref(),
        auth_time: grant.auth_time,
        amr: &grant.amr,
        acr: grant.acr.as_deref(),
        sid: Some(&grant.sid),
        claims: grant.claims.as_ref(),
        grant: &grant.family_id,
        offline: false,
    };
    let mut body = sign_tokens(app, tenant, client, &context, form.get("resource")).await?;
    if let Some(token) = refresh_token {
        body.insert("refresh_token".into(), json!(token));
    }
    Ok(super::no_store(Json(Value::Object(body)).into_response()))
}

/// RFC 6749 §6 with rotation: every use returns a new refresh token, and the one presented
/// cannot be used again (a second use revokes the family).
pub async fn refresh_token(
    app: &App,
    tenant: &TenantCtx,
    client: &Client,
    form: &OAuthForm,
) -> Result<Response, OAuthError> {
    registered_for(client, "refresh_token")?;
    let presented = TokenHash::of(form.require("refresh_token")?);
    let narrowed = match form.get("scope") {
        Some(s) => Some(
            Scope::parse(s).ok_or_else(|| OAuthError::InvalidScope("scope is malformed".into()))?,
        ),
        None => None,
    };
    let next = random_token(32);
    let next_hash = TokenHash::of(&next);
    let (t, now) = (tenant.id().clone(), app.now());
    let sliding = app.config.tokens.refresh_token_idle_lifetime;
    // The consume comes first, in one store call: on the usual path a refresh costs one round
    // trip. Of two racing uses of a token exactly one rotates it; the other is reuse.
    let rotation = {
        let (t, cid) = (t.clone(), client.client_id.clone());
        let (presented, next_hash) = (presented.clone(), next_hash.clone());
        app.store
            .run_quick(move |c| refresh::rotate(c, &t, &cid, &presented, &next_hash, sliding, now))
            .await?
    };
    let live = match rotation {
        Rotation::Rotated(live) => live,
        Rotation::Reused { family_id } => {
            // The store revoked the family as it found the reuse.
            app.note_revoked(&t, Revoke::Grant(&family_id), now);
            tracing::warn!(client_id = %client.client_id, family_id = %family_id, "a rotated refresh token was presented again; its family is revoked");
            return Err(OAuthError::InvalidGrant(INVALID_REFRESH.into()));
        }
        Rotation::Invalid => return Err(OAuthError::InvalidGrant(INVALID_REFRESH.into())),
    };
    match tokens_for(app, tenant, client, form, &live, narrowed).await {
        Ok(mut body) => {
            body.insert("refresh_token".into(), json!(next));
            Ok(super::no_store(Json(Value::Object(body)).into_response()))
        }
        Err(Refused::EndsFamily(e)) => {
            revoke_grant(app, &t, &live.family_id, now).await?;
            Err(e)
        }
        // A refused request or an outage must leave the presented token usable: a client that
        // retries must not look like a thief. `next` was never handed out.
        Err(Refused::KeepsToken(e)) => {
            app.store
                .run(move |c| refresh::restore(c, &t, &presented, &next_hash, now))
                .await?;
            Err(e)
        }
    }
}

/// Why a rotated refresh token's request was refused after all.
enum Refused {
    /// The user may no longer have tokens for this app: the family ends here.
    EndsFamily(OAuthError),
    /// The request was at fault, or the server: the rotation is undone.
    KeepsToken(OAuthError),
}

/// The access and ID tokens of a refresh of `live`, narrowed to the `narrowed` scope if asked.
async fn tokens_for(
    app: &App,
    tenant: &TenantCtx,
    client: &Client,
    form: &OAuthForm,
    live: &refresh::RefreshGrant,
    narrowed: Option<Scope>,
) -> Result<Map<String, Value>, Refused> {
    let granted = Scope::parse(&live.scope).unwrap_or_default();
    if narrowed
        .as_ref()
        .is_some_and(|asked| !asked.is_subset_of(&granted))
    {
        return Err(Refused::KeepsToken(OAuthError::InvalidScope(
            "a refresh can only ask for scopes granted before".into(),
        )));
    }
    let Some(user_id) = live.user_id.as_deref() else {
        return Err(Refused::EndsFamily(OAuthError::InvalidGrant(
            INVALID_REFRESH.into(),
        )));
    };
    let subject = match usable_subject(app, tenant.id(), client, user_id).await {
        Ok(s) => s,
        Err(e @ OAuthError::InvalidGrant(_)) => return Err(Refused::EndsFamily(e)),
        Err(e) => return Err(Refused::KeepsToken(e)),
    };
    let offline = granted.contains("offline_access");
    let scope = narrowed.unwrap_or(granted);
    // The claims the sign-in asked for go on being released as they were (OIDC Core §12.2).
    let requested: Option<Value> = live
        .claims
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok());
    let context = TokenContext {
        subject: &subject,
        scope: &scope,
        nonce: None,
        auth_time: live.auth_time.unwrap_or(app.now()),
        amr: &live.amr,
        acr: live.acr.as_deref(),
        sid: live.sid.as_deref(),
        claims: requested.as_ref(),
        grant: &live.family_id,
        offline,
    };
    sign_tokens(app, tenant, client, &context, form.get("resource"))
        .await
        .map_err(Refused::KeepsToken)
}

/// The user a grant is for, if they may still sign in and use the client's app; otherwise the
/// grant is `invalid_grant` (a disabled user's tokens stop working at the next refresh).
async fn usable_subject(
    app: &App,
    tenant: &TenantId,
    client: &Client,
    user_id: &str,
) -> Result<Arc<Subject>, OAuthError> {
    let subject = app.subject(tenant, user_id).await?;
    let app_record = match &client.app_id {
        Some(id) => app.app_record(tenant, id).await?,
        None => None,
    };
    let now = app.now();
    match subject {
        Some(s)
            if login::check_account(&s.user, now) == login::AccountCheck::Allowed
                && access::may_use(app_record.as_deref(), client.channel, &s) =>
        {
            Ok(s)
        }
        _ => Err(OAuthError::InvalidGrant(
            "the user can no longer use this app".into(),
        )),
    }
}

/// What the issued tokens say about the sign-in behind them.
pub struct TokenContext<'a> {
    pub subject: &'a Subject,
    pub scope: &'a Scope,
    pub nonce: Option<&'a str>,
    pub auth_time: UnixTime,
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub claims: Option<&'a Value>,
    /// The grant (refresh-token family) the tokens are issued under.
    pub grant: &'a str,
    /// The access token is for use while the user is away (a refresh of an `offline_access`
    /// grant, OIDC Core §11): it does not name the browser session, whose end must not revoke it.
    pub offline: bool,
}

/// Claims asked for one by one (OIDC Core §5.5). Only first-party clients get them beyond their
/// scopes: a third-party client's user consented to scopes, and nothing more is released to it.
fn requested(client: &Client, request: Option<&Value>, place: &str) -> Vec<String> {
    if client.first_party {
        claims::requested_names(request, place)
    } else {
        Vec::new()
    }
}

pub(crate) async fn keyring(
    app: &App,
    tenant: &TenantId,
) -> Result<std::sync::Arc<Keyring>, OAuthError> {
    app.keyring(tenant).await.map_err(|e| match e {
        KeyError::Store(s) => OAuthError::from(s),
        other => {
            tracing::error!(error = %other, "keyring unavailable");
            OAuthError::ServerError
        }
    })
}

/// The access token, and the ID token when `openid` is granted; the token response body without
/// the refresh token.
async fn sign_tokens(
    app: &App,
    tenant: &TenantCtx,
    client: &Client,
    ctx: &TokenContext<'_>,
    resource: Option<&str>,
) -> Result<Map<String, Value>, OAuthError> {
    let ring = keyring(app, tenant.id()).await?;
    let now = app.now();
    let lifetime = client
        .access_token_lifetime
        .unwrap_or(app.config.tokens.access_token_lifetime);
    let audience = super::token::audience(client, &tenant.issuer, resource)?;
    let jti = access_token::new_jti(Some(ctx.grant));
    let user_id = &ctx.subject.user.id;
    let mut at_claims = AccessToken {
        issuer: &tenant.issuer,
        audience: &audience,
        subject: user_id,
        client_id: &client.client_id,
        scope: ctx.scope,
        issued_at: now,
        lifetime,
        jti: &jti,
    }
    .claims();
    at_claims.insert("auth_time".into(), json!(ctx.auth_time.0));
    if let Some(sid) = ctx.sid.filter(|_| !ctx.offline) {
        at_claims.insert("sid".into(), json!(sid));
    }
    at_claims.insert("tenant".into(), json!(tenant.id().as_str()));
    // OIDC Core §5.5: claims requested for UserInfo travel with the token UserInfo receives.
    let for_userinfo = requested(client, ctx.claims, "userinfo");
    if !for_userinfo.is_empty() {
        at_claims.insert(claims::USERINFO_CLAIMS.into(), json!(for_userinfo));
    }
    at_claims.insert(
        "roles".into(),
        json!(ctx.subject.roles_for_app(client.app_id.as_deref())),
    );
    let access_token = ring
        .sign(access_token::alg_for(client), access_token::TYP, at_claims)
        .map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            OAuthError::ServerError
        })?;
    let mut body = Map::new();
    if ctx.scope.contains("openid") {
        let user = claims::user_claims(
            ctx.subject,
            tenant.id(),
            client.app_id.as_deref(),
            ctx.scope,
            &requested(client, ctx.claims, "id_token"),
        );
        let alg = client
            .id_token_alg
            .as_deref()
            .and_then(|a| a.parse::<crate::crypto::keys::Alg>().ok())
            .unwrap_or(id_token::DEFAULT_ALG);
        let id = IdToken {
            issuer: &tenant.issuer,
            subject: user_id,
            audience: &client.client_id,
            issued_at: now,
            lifetime: client
                .id_token_lifetime
                .unwrap_or(app.config.tokens.id_token_lifetime),
            auth_time: ctx.auth_time,
            nonce: ctx.nonce,
            acr: ctx.acr,
            amr: ctx.amr,
            sid: ctx.sid,
            at_hash: Some(id_token::half_hash(alg, &access_token)),
        }
        .claims(user);
        let signed = ring.sign(alg, "JWT", id).map_err(|e| {
            tracing::error!(error = %e, "signing an ID token failed");
            OAuthError::ServerError
        })?;
        body.insert("id_token".into(), json!(signed));
    }
    body.insert("access_token".into(), json!(access_token));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("expires_in".into(), json!(lifetime));
    if !ctx.scope.is_empty() {
        body.insert("scope".into(), json!(ctx.scope.to_string()));
    }
    Ok(body)
}
