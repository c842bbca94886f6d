//! The profile (display name, language) and the password, changed by their owner.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;

use super::{Me, View, audit, done, render};
use crate::app::App;
use crate::crypto::secret::SecretString;
use crate::flow::password::{self, PasswordPolicy, Rule};
use crate::flow::session;
use crate::i18n::{Locale, Text};
use crate::oidc::logout;
use crate::store::access_revocations::Revoke;
use crate::store::{refresh, sessions, users};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;
use crate::web::error::PageError;

/// Longest display name accepted, in characters.
const MAX_DISPLAY_NAME: usize = 100;

/// `POST /t/{tenant}/account/profile`: display name and language.
pub async fn update(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, me) = Me::form(&app, &tenant, &headers, &body).await?;
    let name = form.get("display_name").unwrap_or_default().trim();
    if !crate::account::is_shown_name(name, MAX_DISPLAY_NAME) {
        let error = Text::new("account.bad_name").with("max", MAX_DISPLAY_NAME.to_string());
        return render(
            &app,
            &tenant,
            &me,
            View {
                error: Some(error),
                ..View::default()
            },
        )
        .await;
    }
    let locale = match form.get("locale").unwrap_or_default() {
        "" => None,
        tag => Some(
            Locale::from_tag(tag)
                .ok_or_else(|| PageError::Invalid(Text::new("error.choose_option")))?
                .tag()
                .to_string(),
        ),
    };
    let mut profile = me.user.profile.clone();
    profile.display_name = name.to_string();
    profile.locale = locale;
    let (t, uid, now) = (tenant.id().clone(), me.user.id.clone(), app.now());
    app.store
        .run(move |c| users::update_profile(c, &t, &uid, &profile, now))
        .await?;
    app.forget_subject(tenant.id(), &me.user.id);
    audit(&app, &tenant, &client, &me, "account.profile").await?;
    Ok(done(&tenant, "profile"))
}

/// `POST /t/{tenant}/account/password`: the current password, then a new one under the
/// tenant's policy. Every other session of the user ends and every refresh token is revoked;
/// this one goes on.
pub async fn change_password(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, me) = Me::form(&app, &tenant, &headers, &body).await?;
    // The current password first, counted like a sign-in's, so a borrowed session cannot be
    // used to guess it.
    // Without a password yet (an account that signs in by code), a recent sign-in stands in.
    if !me.user.has_password && !me.fresh(&app) {
        return render(
            &app,
            &tenant,
            &me,
            View {
                error: Some(super::reauth()),
                ..View::default()
            },
        )
        .await;
    }
    let current = form.get("current_password").unwrap_or_default();
    if me.user.has_password && !verify_current(&app, &tenant, &client, &me, current).await? {
        let error = Text::new("account.wrong_password");
        return render(
            &app,
            &tenant,
            &me,
            View {
                error: Some(error),
                ..View::default()
            },
        )
        .await;
    }
    let new = form.get("new_password").unwrap_or_default();
    let policy = PasswordPolicy::of(&tenant.tenant);
    let mut broken = policy.check(new, form.get("confirm_password"), &me.user.profile);
    if broken.is_empty() && password::reused(&app, &tenant, &me.user.id, new).await? {
        broken.push(Rule::NotRecent {
            count: policy.history,
        });
    }
    if let Some(first) = broken.first() {
        return render(
            &app,
            &tenant,
            &me,
            View {
                error: Some(first.text()),
                broken: &broken,
                ..View::default()
            },
        )
        .await;
    }
    password::store(&app, &tenant, &me.user.id, new).await?;
    let (t, uid, now) = (tenant.id().clone(), me.user.id.clone(), app.now());
    let others = app
        .store
        .run(move |c| sessions::list_for_user(c, &t, &uid, now))
        .await?;
    for session in others.iter().filter(|s| s.sid != me.session.sid) {
        logout::end(&app, &tenant, session).await?;
    }
    let (t, uid) = (tenant.id().clone(), me.user.id.clone());
    app.store
        .run(move |c| refresh::revoke_for_user(c, &t, &uid, now))
        .await?;
    app.note_revoked(tenant.id(), Revoke::User(&me.user.id), now);
    audit(&app, &tenant, &client, &me, "password.change").await?;
    password::notify_changed(&app, &tenant, &me.user, me.locale).await;
    let mut response = done(&tenant, "password");
    if let Some(cookie) = session::replace_cookie(&app, tenant.id(), &me.session).await? {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Whether `given` is the user's password; a wrong one counts against the account as at
/// sign-in (and can lock it).
async fn verify_current(
    app: &App,
    tenant: &TenantCtx,
    client: &ClientInfo,
    me: &Me,
    given: &str,
) -> Result<bool, PageError> {
    let (t, uid) = (tenant.id().clone(), me.user.id.clone());
    let stored = app
        .store
        .run(move |c| users::password_hash(c, &t, &uid))
        .await?;
    let right = match (
        stored,
        given.is_empty() || given.len() > password::MAX_LENGTH,
    ) {
        (Some(hash), false) => app
            .hasher
            .verify(hash, SecretString::new(given.to_string()))
            .await
            .map_err(|e| PageError::Internal(e.to_string()))?,
        _ => false,
    };
    if !right {
        let (t, uid, sign_in, now) = (
            tenant.id().clone(),
            me.user.id.clone(),
            app.config.sign_in.clone(),
            app.now(),
        );
        let threshold = i32::try_from(sign_in.lockout_threshold).unwrap_or(i32::MAX);
        let locked = app
            .store
            .run(move |c| {
                users::record_failed_password(c, &t, &uid, threshold, sign_in.lockout_duration, now)
            })
            .await?;
        if let Some(until) = locked {
            tracing::warn!(tenant = %tenant.id(), user = %me.user.id, until = until.0, "account locked after wrong current passwords");
            crate::flow::login::record(
                app,
                tenant,
                client,
                "system",
                "user.locked",
                Some(&me.user.id),
                "success",
            )
            .await?;
        }
    }
    Ok(right)
}
