//! Binding an email address or a mobile number: a code goes to the new one, and only the code
//! coming back changes the account, which proves the person holds it. Whether the address
//! belongs to another account is told only then, to someone who just proved they hold it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{Me, Pending, View, audit, done, render};
use crate::account::{Email, Login, Phone};
use crate::app::App;
use crate::codes::{self, Destination, Issued, Purpose};
use crate::i18n::Text;
use crate::notify::Channel;
use crate::oidc::form::OAuthForm;
use crate::store::{StoreError, users, verification_codes};
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;
use crate::web::error::PageError;

/// Longest code input looked at.
const MAX_CODE_INPUT: usize = 32;

/// The destination a contact form names: `kind=email` with `address`, or `kind=phone` with
/// `address` and `region`.
fn destination(form: &OAuthForm) -> Option<Destination> {
    let address = form.get("address").unwrap_or_default().trim();
    if address.len() > 254 {
        return None;
    }
    match form.get("kind") {
        Some("email") => Email::parse(address).map(|e| Destination {
            channel: Channel::Email,
            address: e.as_str().to_string(),
        }),
        Some("phone") => Phone::parse(address, form.get("region")).map(|p| Destination {
            channel: Channel::Sms,
            address: p.as_str().to_string(),
        }),
        _ => None,
    }
}

async fn show(
    app: &App,
    tenant: &TenantCtx,
    me: &Me,
    error: Option<Text>,
    notice: Option<Text>,
    pending: Option<Pending>,
) -> Result<Response, PageError> {
    render(
        app,
        tenant,
        me,
        View {
            error,
            notice,
            pending,
            ..View::default()
        },
    )
    .await
}

/// `POST /t/{tenant}/account/contact`: sends a code to the new address or number.
pub async fn send(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, me) = Me::form(&app, &tenant, &headers, &body).await?;
    // A borrowed session alone must not redirect codes and reset links to another address.
    if !me.fresh(&app) {
        return show(&app, &tenant, &me, Some(super::reauth()), None, None).await;
    }
    let Some(to) = destination(&form) else {
        return show(
            &app,
            &tenant,
            &me,
            Some(Text::new("account.bad_address")),
            None,
            None,
        )
        .await;
    };
    let region = form.get("region").unwrap_or("CN").to_string();
    // Signed in already: the caps and cooldown apply, a captcha does not.
    // Codes per address are counted by its rate-limit key (an IPv6 /64).
    let rate_key = client.rate_key();
    let issued = codes::issue(
        &app,
        tenant.id(),
        codes::Request {
            purpose: Purpose::Bind,
            to: &to,
            user: Some(&me.user),
            context: &me.session.sid,
            ip: rate_key.as_deref(),
            locale: me.locale,
            tenant_name: &tenant.tenant.display_name,
            captcha_solved: true,
            link_base: None,
        },
    )
    .await?;
    let error = match issued {
        Issued::Sent => {
            let notice = Text::new("account.code_sent").with("to", to.address.as_str());
            let pending = Pending { to, region };
            return show(&app, &tenant, &me, None, Some(notice), Some(pending)).await;
        }
        Issued::Wait(seconds) => Text::new("login.code_wait").with("seconds", seconds.to_string()),
        Issued::Capped | Issued::NeedsCaptcha => Text::new("login.code_capped"),
        Issued::NotOffered => Text::new("account.channel_unavailable"),
        Issued::Unavailable => Text::new("login.code_unavailable"),
    };
    show(&app, &tenant, &me, Some(error), None, None).await
}

/// `POST /t/{tenant}/account/contact/confirm`: the code; the account takes the new address.
pub async fn confirm(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, me) = Me::form(&app, &tenant, &headers, &body).await?;
    // The change is what needs a recent sign-in, not only the asking for a code: a code asked
    // for at the window's end outlives it. The code is not tried, so it is not used up.
    if !me.fresh(&app) {
        return show(&app, &tenant, &me, Some(super::reauth()), None, None).await;
    }
    let Some(to) = destination(&form) else {
        return show(
            &app,
            &tenant,
            &me,
            Some(Text::new("account.bad_address")),
            None,
            None,
        )
        .await;
    };
    let region = form.get("region").unwrap_or("CN").to_string();
    let code = form.get("code").unwrap_or_default();
    let verified = match code.len() <= MAX_CODE_INPUT {
        true => codes::verify(&app, tenant.id(), Purpose::Bind, &to, &me.session.sid, code).await?,
        false => None,
    };
    let Some(verified) = verified.filter(|v| v.user_id.as_deref() == Some(me.user.id.as_str()))
    else {
        let pending = Pending { to, region };
        let error = Text::new("forgot.code_wrong");
        return show(&app, &tenant, &me, Some(error), None, Some(pending)).await;
    };
    let login = match to.channel {
        Channel::Email => Email::parse(&to.address).map(Login::Email),
        Channel::Sms => Phone::parse(&to.address, None).map(Login::Phone),
    };
    let Some(login) = login else {
        return show(
            &app,
            &tenant,
            &me,
            Some(Text::new("account.bad_address")),
            None,
            None,
        )
        .await;
    };
    let t = tenant.id().clone();
    let holder = app
        .store
        .run(move |c| users::find_by_login(c, &t, &login))
        .await?;
    if holder.is_some_and(|h| h.id != me.user.id) {
        let error = Text::new("account.address_taken");
        return show(&app, &tenant, &me, Some(error), None, None).await;
    }
    if codes::spend(&app, tenant.id(), verified).await?.is_none() {
        let error = Text::new("forgot.code_wrong");
        return show(&app, &tenant, &me, Some(error), None, None).await;
    }
    let mut profile = me.user.profile.clone();
    let (what, action) = match to.channel {
        Channel::Email => {
            profile.email = Email::parse(&to.address);
            ("email", "account.email")
        }
        Channel::Sms => {
            profile.phone = Phone::parse(&to.address, None);
            ("phone", "account.phone")
        }
    };
    let (t, uid, channel, now) = (
        tenant.id().clone(),
        me.user.id.clone(),
        to.channel,
        app.now(),
    );
    let changed = app
        .store
        .run(move |c| {
            crate::store::tx::write(c, |c| {
                users::update_profile(c, &t, &uid, &profile, now)?;
                users::mark_verified(c, &t, &uid, channel, now)?;
                // Reset links and codes sent to the old address stop working.
                verification_codes::retire_for_user(c, &t, &uid, now)
            })
        })
        .await;
    match changed {
        Ok(()) => {}
        // Taken by another account since the check above (an import, a race).
        Err(StoreError::Conflict(_)) => {
            let error = Text::new("account.address_taken");
            return show(&app, &tenant, &me, Some(error), None, None).await;
        }
        Err(e) => return Err(e.into()),
    }
    app.forget_subject(tenant.id(), &me.user.id);
    audit(&app, &tenant, &client, &me, action).await?;
    tell_the_old_address(&app, &tenant, &me, &to).await;
    Ok(done(&tenant, what))
}

/// Tells the address or number that was replaced, so an owner who did not make the change
/// hears of it where they still read.
async fn tell_the_old_address(app: &App, tenant: &TenantCtx, me: &Me, new: &Destination) {
    let p = &me.user.profile;
    let old = match new.channel {
        Channel::Email => p.email.as_ref().map(|e| e.as_str().to_string()),
        Channel::Sms => p.phone.as_ref().map(|x| x.as_str().to_string()),
    };
    let Some(old) = old.filter(|o| *o != new.address && app.notifier.offers(new.channel)) else {
        return;
    };
    let time = crate::flow::password::format_time(app.now());
    let (subject, body) = crate::notify::compose(
        &app.templates.catalogs,
        me.locale,
        new.channel,
        "contact_changed",
        &[
            ("tenant", &tenant.tenant.display_name),
            ("time", &time),
            ("link", &format!("{}/account", tenant.issuer)),
        ],
    );
    let message = crate::notify::Message {
        tenant: tenant.id().clone(),
        channel: new.channel,
        to: old,
        subject,
        body,
        code: None,
        locale: me.locale,
        purpose: "account.contact_changed",
    };
    if let Err(e) = app.notifier.dispatch(message).await {
        tracing::warn!(tenant = %tenant.id(), error = %e, "the change notice was not sent");
    }
}
