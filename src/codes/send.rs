//! Sending a code or a link: the rules of [`super::decide`], then a stored digest, then the
//! message handed to the notifier.

use rand::Rng;

use super::{Decision, Issued, Purpose, Request, digest};
use crate::app::App;
use crate::crypto::secret::random_token;
use crate::notify::{self, Message};
use crate::store::verification_codes::{self as store, Keep, NewCode};
use crate::store::{StoreError, audit, new_id};
use crate::tenant::TenantId;

/// Sends a code (or a link) when the rules allow it.
pub async fn issue(app: &App, tenant: &TenantId, req: Request<'_>) -> Result<Issued, StoreError> {
    let now = app.now();
    if !app.notifier.offers(req.to.channel) {
        return Ok(Issued::NotOffered);
    }
    if !app.notifier.ready(req.to.channel) {
        return Ok(Issued::Unavailable);
    }
    let config = app.config.codes.clone();
    let (secret, lifetime) = match req.link_base {
        Some(_) => (random_token(32), config.link_lifetime),
        None => (
            format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32)),
            config.lifetime,
        ),
    };
    let id = new_id();
    let hash = digest(app, tenant, req.purpose, &req.to.key(), &secret);
    let (t, key, user_id, context, ip, purpose, row, solved) = (
        tenant.clone(),
        req.to.key(),
        req.user.map(|u| u.id.clone()),
        req.context.to_string(),
        req.ip.map(str::to_string),
        req.purpose,
        id.clone(),
        req.captcha_solved,
    );
    let decision = app
        .store
        .run(move |c| {
            store::store_if(
                c,
                &t,
                &NewCode {
                    id: &row,
                    purpose: purpose.as_str(),
                    destination: &key,
                    user_id: user_id.as_deref(),
                    context: &context,
                    code_hash: &hash,
                    ip: ip.as_deref(),
                    expires_at: now.plus(lifetime),
                },
                now.plus(-3600),
                |recent| {
                    let decision = super::decide(recent, &config, now, solved);
                    let keep = match decision {
                        Decision::Send => Keep::Code,
                        Decision::Quiet => Keep::Unredeemable,
                        _ => Keep::Nothing,
                    };
                    (decision, keep)
                },
                now,
            )
        })
        .await?;
    match decision {
        Decision::Send => {}
        Decision::Quiet => return Ok(Issued::Sent),
        Decision::Wait(secs) => return Ok(Issued::Wait(secs)),
        Decision::Capped => return Ok(Issued::Capped),
        Decision::NeedsCaptcha => return Ok(Issued::NeedsCaptcha),
    }
    let Some(user) = req.user else {
        return Ok(Issued::Sent);
    };
    let minutes = (lifetime / 60).to_string();
    let (kind, link) = match (req.purpose, req.link_base) {
        (Purpose::PasswordReset, Some(base)) => ("reset_link", format!("{base}{id}.{secret}")),
        (Purpose::PasswordReset, None) => ("reset_code", String::new()),
        (Purpose::SignIn, _) => ("code", String::new()),
        (Purpose::Bind, _) => ("bind_code", String::new()),
    };
    let (subject, body) = notify::compose(
        &app.templates.catalogs,
        req.locale,
        req.to.channel,
        kind,
        &[
            ("tenant", req.tenant_name),
            ("code", &secret),
            ("link", &link),
            ("minutes", &minutes),
        ],
    );
    let message = Message {
        tenant: tenant.clone(),
        channel: req.to.channel,
        to: req.to.address.clone(),
        subject,
        body,
        code: req.link_base.is_none().then_some(secret),
        locale: req.locale,
        purpose: req.purpose.as_str(),
    };
    match app.notifier.dispatch(message).await {
        Ok(()) => Ok(Issued::Sent),
        Err(e) => {
            tracing::error!(tenant = %tenant, error = %e, "a verification code could not be handed over");
            let (t, uid, ip) = (tenant.clone(), user.id.clone(), req.ip.map(str::to_string));
            let (channel, purpose) = (req.to.channel.as_str(), req.purpose.as_str());
            app.store
                .run(move |c| {
                    store::retire(c, &t, &id, now)?;
                    audit::record(
                        c,
                        &t,
                        &audit::NewAuditEvent {
                            actor: "system",
                            action: "notify.failed",
                            target: Some(&uid),
                            outcome: "failure",
                            ip: ip.as_deref(),
                            details: serde_json::json!({ "channel": channel, "purpose": purpose }),
                        },
                        now,
                    )
                })
                .await?;
            Ok(Issued::Unavailable)
        }
    }
}

/// A link for `user` to set a password, outside the cooldowns and caps (an administrator's
/// action, not a request from the page): `{base}{id}.{secret}`, valid for `lifetime` seconds.
pub async fn link(
    app: &App,
    tenant: &TenantId,
    user_id: &str,
    to: &super::Destination,
    base: &str,
    lifetime: i64,
) -> Result<String, StoreError> {
    let now = app.now();
    let (id, secret) = (new_id(), random_token(32));
    let purpose = Purpose::PasswordReset;
    let hash = digest(app, tenant, purpose, &to.key(), &secret);
    let (t, key, uid, row) = (tenant.clone(), to.key(), user_id.to_string(), id.clone());
    app.store
        .run(move |c| {
            store::replace(
                c,
                &t,
                &NewCode {
                    id: &row,
                    purpose: purpose.as_str(),
                    destination: &key,
                    user_id: Some(&uid),
                    context: "",
                    code_hash: &hash,
                    ip: None,
                    expires_at: now.plus(lifetime),
                },
                now,
            )
        })
        .await?;
    Ok(format!("{base}{id}.{secret}"))
}
