//! Setting a new password: the rules a new one must meet, and what a reset does beyond storing
//! it (every session and refresh token of the user ends, a notice goes out).

use crate::app::App;
use crate::crypto::secret::SecretString;
use crate::i18n::{Locale, Text};
use crate::notify::{self, Channel, Message};
use crate::store::{refresh, sessions, users};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;
use crate::web::error::PageError;

/// Shortest new password until per-tenant policies arrive.
pub const MIN_LENGTH: usize = 8;
/// Longest password accepted; argon2 of a megabyte is a cheap denial of service.
pub const MAX_LENGTH: usize = 1024;

/// What is wrong with `new` (typed twice, the second time as `confirm`), if anything.
pub fn problem(new: &str, confirm: Option<&str>) -> Option<Text> {
    if new.chars().count() < MIN_LENGTH || new.len() > MAX_LENGTH {
        Some(Text::new("password.too_short").with("min", MIN_LENGTH.to_string()))
    } else if confirm != Some(new) {
        Some(Text::new("password.mismatch"))
    } else {
        None
    }
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
    let hash = app
        .hasher
        .hash(SecretString::new(new.to_string()))
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let (t, uid, now) = (tenant.id().clone(), user_id.to_string(), app.now());
    let (user, live) = app
        .store
        .run(move |c| {
            crate::store::tx::write(c, |c| {
                users::set_password(c, &t, &uid, &hash, false, now)?;
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

/// Tells the user, on every channel they have, that their password changed, in their own
/// language if they chose one, else the page's. Failures are
/// logged by the notifier; the reset stands either way.
async fn notify_changed(app: &App, tenant: &TenantCtx, user: &users::User, page: Locale) {
    let locale = user
        .profile
        .locale
        .as_deref()
        .and_then(Locale::from_tag)
        .unwrap_or(page);
    let time = time::OffsetDateTime::from_unix_timestamp(app.now().0)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_password_is_long_enough_and_typed_twice() {
        assert!(problem("short", Some("short")).is_some());
        assert!(problem("long enough", Some("long enougH")).is_some());
        assert!(problem("long enough", None).is_some());
        assert!(problem(&"x".repeat(MAX_LENGTH + 1), None).is_some());
        assert_eq!(problem("long enough", Some("long enough")), None);
        assert_eq!(
            problem("密码密码密码密码", Some("密码密码密码密码")),
            None,
            "characters, not bytes"
        );
    }
}
