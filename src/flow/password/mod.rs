//! Setting a new password: the rules a new one must meet, and what a reset does beyond storing
//! it (every session and refresh token of the user ends, a notice goes out).

pub mod change;
pub mod policy;

use crate::app::App;
use crate::clock::UnixTime;
use crate::crypto::secret::SecretString;
use crate::i18n::{Locale, Text};
use crate::notify::{self, Channel, Message};
use crate::store::access_revocations::Revoke;
use crate::store::{password_history, refresh, sessions, users};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;
use crate::web::error::PageError;

pub use policy::{MAX_LENGTH, PasswordPolicy, Rule, base_rules};

/// Why a signed-in user must choose a new password before going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// An administrator set a temporary one.
    FirstLogin,
    /// Older than the tenant's `password_max_age_days`.
    Expired,
}

impl Why {
    pub fn intro(self) -> Text {
        match self {
            Why::FirstLogin => Text::new("password.intro"),
            Why::Expired => Text::new("password.intro_expired"),
        }
    }
}

/// Whether `user` must set a new password now, and why.
pub fn must_change(tenant: &TenantCtx, user: &users::User, now: UnixTime) -> Option<Why> {
    if user.must_change_password {
        Some(Why::FirstLogin)
    } else if user.has_password
        && PasswordPolicy::of(&tenant.tenant).expired(user.password_changed_at, now)
    {
        Some(Why::Expired)
    } else {
        None
    }
}

/// Whether `new` is one of the user's last passwords (as many as the policy remembers, the
/// current one included). Costs one argon2 verification per remembered password, so callers
/// ask only once the person has proven who they are.
pub async fn reused(
    app: &App,
    tenant: &TenantCtx,
    user_id: &str,
    new: &str,
) -> Result<bool, PageError> {
    let n = PasswordPolicy::of(&tenant.tenant).history;
    let (t, uid) = (tenant.id().clone(), user_id.to_string());
    let hashes = app
        .store
        .run(move |c| password_history::recent(c, &t, &uid, n))
        .await?;
    for hash in hashes {
        let same = app
            .hasher
            .verify(hash, SecretString::new(new.to_string()))
            .await
            .map_err(|e| PageError::Internal(e.to_string()))?;
        if same {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Hashes `new` and stores it as the user's password, remembering the one it replaces as the
/// policy's history needs.
pub async fn store(
    app: &App,
    tenant: &TenantCtx,
    user_id: &str,
    new: &str,
) -> Result<(), PageError> {
    let hash = app
        .hasher
        .hash(SecretString::new(new.to_string()))
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let keep = PasswordPolicy::of(&tenant.tenant).history.saturating_sub(1);
    let (t, uid, now) = (tenant.id().clone(), user_id.to_string(), app.now());
    app.store
        .run(move |c| password_history::replace(c, &t, &uid, &hash, keep, now))
        .await?;
    Ok(())
}

/// The rules as a page lists them: each one's id, text and value, and whether `broken` names it
/// (after a refused submission), for the live checks of `/static/password.js`.
pub fn rules_for_page(
    app: &App,
    tenant: &TenantCtx,
    locale: Locale,
    broken: &[Rule],
) -> Vec<minijinja::Value> {
    let mut rules = PasswordPolicy::of(&tenant.tenant).rules();
    // Rules a page does not list until they are broken.
    rules.extend(
        broken
            .iter()
            .filter(|b| !rules.contains(b))
            .copied()
            .collect::<Vec<_>>(),
    );
    rules
        .into_iter()
        .map(|rule| {
            let (id, value) = match rule {
                Rule::Length { min } => ("length", min),
                Rule::Classes { min } => ("classes", min),
                Rule::NotAccount => ("not_account", 0),
                Rule::NotCommon => ("not_common", 0),
                Rule::NotRecent { count } => ("not_recent", count),
                Rule::Match => ("match", 0),
                Rule::TooLong { max } => ("too_long", max),
                Rule::Printable => ("printable", 0),
            };
            minijinja::context! {
                id => id,
                value => value,
                text => app.templates.text(&rule.text(), locale),
                broken => broken.contains(&rule),
            }
        })
        .collect()
}

/// A forgotten password replaced by its owner, who proved it through `proven` (the channel the
/// code or link came by): the password is stored, a temporary lock ends, the destination counts
/// as verified, every session ends (with back-channel logout to its apps) and every refresh
/// token is revoked, and a notice goes to each of the user's addresses.
pub async fn reset(
    app: &App,
    tenant: &TenantCtx,
    client: &ClientInfo,
    user_id: &str,
    proven: Channel,
    new: &str,
    locale: Locale,
) -> Result<(), PageError> {
    store(app, tenant, user_id, new).await?;
    let (t, uid, now) = (tenant.id().clone(), user_id.to_string(), app.now());
    let (user, live) = app
        .store
        .run(move |c| {
            crate::store::tx::write(c, |c| {
                users::clear_failed_passwords(c, &t, &uid)?;
                users::end_lock(c, &t, &uid)?;
                users::mark_verified(c, &t, &uid, proven, now)?;
                let live = sessions::list_for_user(c, &t, &uid, now)?;
                Ok::<_, crate::store::StoreError>((users::find(c, &t, &uid)?, live))
            })
        })
        .await?;
    for session in &live {
        crate::oidc::logout::end(app, tenant, session).await?;
    }
    // What `end` leaves: offline_access tokens, and sessions that expired meanwhile.
    let (t, uid) = (tenant.id().clone(), user_id.to_string());
    app.store
        .run(move |c| {
            refresh::revoke_for_user(c, &t, &uid, now)?;
            sessions::revoke_for_user(c, &t, &uid, now)
        })
        .await?;
    app.note_revoked(tenant.id(), Revoke::User(user_id), now);
    app.forget_subject(tenant.id(), user_id);
    super::login::record(
        app,
        tenant,
        client,
        user_id,
        "password.reset",
        Some(user_id),
        "success",
    )
    .await?;
    if let Some(user) = user {
        notify_changed(app, tenant, &user, locale).await;
    }
    Ok(())
}

/// A moment as messages show it: `2026-12-02 08:00 UTC`.
pub fn format_time(at: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(at.0)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// Tells the user, on every channel they have, that their password changed, in their own
/// language if they chose one, else the page's. Failures are
/// logged by the notifier; the reset stands either way.
pub async fn notify_changed(app: &App, tenant: &TenantCtx, user: &users::User, page: Locale) {
    let locale = user
        .profile
        .locale
        .as_deref()
        .and_then(Locale::from_tag)
        .unwrap_or(page);
    let time = format_time(app.now());
    let destinations = [
        (
            Channel::Email,
            user.profile.email.as_ref().map(|e| e.as_str()),
        ),
        (
            Channel::Sms,
            user.profile.phone.as_ref().map(|p| p.as_str()),
        ),
    ];
    for (channel, to) in destinations {
        let Some(to) = to.filter(|_| app.notifier.offers(channel)) else {
            continue;
        };
        let (subject, body) = notify::compose(
            &app.templates.catalogs,
            locale,
            channel,
            "password_changed",
            &[("tenant", &tenant.tenant.display_name), ("time", &time)],
        );
        let message = Message {
            tenant: tenant.id().clone(),
            channel,
            to: to.to_string(),
            subject,
            body,
            code: None,
            locale,
            purpose: "password.changed",
        };
        if let Err(e) = app.notifier.dispatch(message).await {
            tracing::warn!(tenant = %tenant.id(), error = %e, "the password-change notice was not sent");
        }
    }
}
