//! One-time verification codes ("dynamic verification codes"): six random digits sent by email
//! or SMS, valid for `codes.lifetime`, spent by their first right use, and killed by
//! `codes.max_attempts` wrong ones. Asking again is slowed by a cooldown and hourly caps per
//! destination, per account and per address, with a captcha once a cap is near.
//!
//! A request for an address that belongs to no account is answered exactly like one that does:
//! a row is stored for it too (never redeemable, nothing sent), so cooldowns and caps come out
//! the same, and delivery happens in the background so the time taken is the same.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::account::Login;
use crate::app::App;
use crate::clock::UnixTime;
use crate::config::ConfigError;
use crate::crypto::secret::TokenHash;
use crate::i18n::Locale;
use crate::notify::{self, Channel, Message};
use crate::store::users::User;
use crate::store::verification_codes::{self as store, NewCode, RecentCodes};
use crate::store::{StoreError, audit};
use crate::tenant::TenantId;

/// Digits in a code.
pub const LENGTH: usize = 6;

/// Limits of verification codes, in seconds and counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeConfig {
    /// How long a code can be used.
    pub lifetime: i64,
    /// Wrong tries that kill a code.
    pub max_attempts: i64,
    /// Seconds before another code can be sent to the same destination.
    pub resend_after: i64,
    /// Codes per hour to one email address or mobile number.
    pub per_destination_hourly: i64,
    /// Codes per hour to one account, whatever the destination.
    pub per_account_hourly: i64,
    /// Codes per hour asked for from one network address.
    pub per_address_hourly: i64,
    /// A captcha is asked once any hourly count is this close to its cap.
    pub captcha_margin: i64,
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig {
            lifetime: 300,
            max_attempts: 5,
            resend_after: 60,
            per_destination_hourly: 5,
            per_account_hourly: 10,
            per_address_hourly: 20,
            captcha_margin: 2,
        }
    }
}

impl CodeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value, range) in [
            ("codes.lifetime", self.lifetime, 30..=3600),
            ("codes.max_attempts", self.max_attempts, 1..=20),
            ("codes.resend_after", self.resend_after, 0..=3600),
            (
                "codes.per_destination_hourly",
                self.per_destination_hourly,
                1..=1000,
            ),
            (
                "codes.per_account_hourly",
                self.per_account_hourly,
                1..=1000,
            ),
            (
                "codes.per_address_hourly",
                self.per_address_hourly,
                1..=100_000,
            ),
            ("codes.captcha_margin", self.captcha_margin, 0..=1000),
        ] {
            if !range.contains(&value) {
                return Err(ConfigError::new(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                    "see docs/sign-in.md for the defaults (lifetime 300, max_attempts 5, resend_after 60, hourly caps 5/10/20)",
                ));
            }
        }
        Ok(())
    }
}

/// What a code is for; codes of one purpose never redeem another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::SignIn => "sign_in",
        }
    }
}

/// Where a code goes: an email address or a mobile number, as the store compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub channel: Channel,
    /// The address or E.164 number itself.
    pub address: String,
}

impl Destination {
    /// The destination a sign-in form names; `None` for a username, which receives nothing.
    pub fn of(login: &Login) -> Option<Destination> {
        match login {
            Login::Email(e) => Some(Destination {
                channel: Channel::Email,
                address: e.as_str().to_string(),
            }),
            Login::Phone(p) => Some(Destination {
                channel: Channel::Sms,
                address: p.as_str().to_string(),
            }),
            Login::Username(_) => None,
        }
    }

    fn key(&self) -> String {
        match self.channel {
            Channel::Email => format!("e:{}", self.address),
            Channel::Sms => format!("p:{}", self.address),
        }
    }
}

/// What a request for a code comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Seconds until another code may be sent to this destination.
    Wait(i64),
    /// An hourly cap is reached.
    Capped,
    /// A cap is near: solve a captcha first.
    NeedsCaptcha,
}

/// The rules for a request at `now`, given the codes asked for in the last hour.
pub fn decide(
    recent: &RecentCodes,
    config: &CodeConfig,
    now: UnixTime,
    captcha_solved: bool,
) -> Decision {
    if let Some(last) = recent.last_sent_at {
        let left = last.0 + config.resend_after - now.0;
        if left > 0 {
            return Decision::Wait(left);
        }
    }
    let counts = [
        (recent.for_destination, config.per_destination_hourly),
        (recent.for_user, config.per_account_hourly),
        (recent.from_address, config.per_address_hourly),
    ];
    if counts.iter().any(|(n, cap)| n >= cap) {
        return Decision::Capped;
    }
    let near = counts
        .iter()
        .any(|(n, cap)| *n >= cap - config.captcha_margin);
    if near && !captcha_solved {
        return Decision::NeedsCaptcha;
    }
    Decision::Send
}

/// What the person asking for a code is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// A code went out, if the destination belongs to an account.
    Sent,
    Wait(i64),
    Capped,
    NeedsCaptcha,
    /// The channel has no driver.
    NotOffered,
    /// The channel is failing: try again in a while.
    Unavailable,
}

/// A request for a code to `to`, asked for from `ip` within `context` (a login flow id).
pub struct Request<'a> {
    pub purpose: Purpose,
    pub to: &'a Destination,
    /// The account the destination belongs to, if any.
    pub user: Option<&'a User>,
    pub context: &'a str,
    pub ip: Option<&'a str>,
    pub locale: Locale,
    pub tenant_name: &'a str,
    pub captcha_solved: bool,
}

/// The keyed digest a code is stored as, bound to its tenant, purpose and destination so a
/// digest copied to another row matches nothing.
fn digest(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    to: &Destination,
    code: &str,
) -> TokenHash {
    app.code_key.digest(&format!(
        "{tenant}\u{0}{}\u{0}{}\u{0}{code}",
        purpose.as_str(),
        to.key()
    ))
}

/// Sends a code when the rules allow it.
pub async fn issue(app: &App, tenant: &TenantId, req: Request<'_>) -> Result<Issued, StoreError> {
    let now = app.now();
    if !app.notifier.offers(req.to.channel) {
        return Ok(Issued::NotOffered);
    }
    if !app.notifier.ready(req.to.channel) {
        return Ok(Issued::Unavailable);
    }
    let (t, key, user_id, ip) = (
        tenant.clone(),
        req.to.key(),
        req.user.map(|u| u.id.clone()),
        req.ip.map(str::to_string),
    );
    let recent = app
        .store
        .run(move |c| {
            store::recent(
                c,
                &t,
                &key,
                user_id.as_deref(),
                ip.as_deref(),
                now.plus(-3600),
            )
        })
        .await?;
    match decide(&recent, &app.config.codes, now, req.captcha_solved) {
        Decision::Send => {}
        Decision::Wait(secs) => return Ok(Issued::Wait(secs)),
        Decision::Capped => return Ok(Issued::Capped),
        Decision::NeedsCaptcha => return Ok(Issued::NeedsCaptcha),
    }
    let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32));
    let hash = digest(app, tenant, req.purpose, req.to, &code);
    let lifetime = app.config.codes.lifetime;
    let (t, key, user_id, context, ip, purpose) = (
        tenant.clone(),
        req.to.key(),
        req.user.map(|u| u.id.clone()),
        req.context.to_string(),
        req.ip.map(str::to_string),
        req.purpose,
    );
    let id = app
        .store
        .run(move |c| {
            store::replace(
                c,
                &t,
                &NewCode {
                    purpose: purpose.as_str(),
                    destination: &key,
                    user_id: user_id.as_deref(),
                    context: &context,
                    code_hash: &hash,
                    ip: ip.as_deref(),
                    expires_at: now.plus(lifetime),
                },
                now,
            )
        })
        .await?;
    let Some(user) = req.user else {
        return Ok(Issued::Sent);
    };
    let (subject, body) = notify::code_message(
        &app.templates.catalogs,
        req.locale,
        req.to.channel,
        req.tenant_name,
        &code,
        lifetime / 60,
    );
    let message = Message {
        tenant: tenant.clone(),
        channel: req.to.channel,
        to: req.to.address.clone(),
        subject,
        body,
        code: Some(code),
        locale: req.locale,
        purpose: "sign_in.code",
    };
    match app.notifier.dispatch(message).await {
        Ok(()) => Ok(Issued::Sent),
        Err(e) => {
            tracing::error!(tenant = %tenant, error = %e, "a verification code could not be handed over");
            let (t, uid, ip) = (tenant.clone(), user.id.clone(), req.ip.map(str::to_string));
            let channel = req.to.channel.as_str();
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
                            details: serde_json::json!({ "channel": channel, "purpose": "sign_in.code" }),
                        },
                        now,
                    )
                })
                .await?;
            Ok(Issued::Unavailable)
        }
    }
}

/// Redeems `code` for the destination within `context`: the account it was sent to, once.
/// Every call counts one attempt against the live code, right or wrong, whatever the input.
pub async fn redeem(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    to: &Destination,
    context: &str,
    code: &str,
) -> Result<Option<String>, StoreError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let now = app.now();
    let (t, key) = (tenant.clone(), to.key());
    let max = i32::try_from(app.config.codes.max_attempts).unwrap_or(5);
    let candidates = app
        .store
        .run(move |c| store::attempt(c, &t, purpose.as_str(), &key, max, now))
        .await?;
    let well_formed = code.len() == LENGTH && code.bytes().all(|b| b.is_ascii_digit());
    let expected = digest(app, tenant, purpose, to, &code);
    let Some(hit) = candidates.into_iter().find(|c| {
        well_formed
            && crate::crypto::secret::constant_time_eq(c.code_hash.as_bytes(), expected.as_bytes())
            && c.context == context
    }) else {
        return Ok(None);
    };
    let (t, id) = (tenant.clone(), hit.id.clone());
    let spent = app
        .store
        .run(move |c| store::consume(c, &t, &id, now))
        .await?;
    Ok(hit.user_id.filter(|_| spent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent(last: Option<i64>, d: i64, u: i64, a: i64) -> RecentCodes {
        RecentCodes {
            last_sent_at: last.map(UnixTime),
            for_destination: d,
            for_user: u,
            from_address: a,
        }
    }

    #[test]
    fn a_cooldown_then_a_captcha_near_the_cap_then_the_cap() {
        let c = CodeConfig::default();
        let now = UnixTime(10_000);
        assert_eq!(
            decide(&recent(None, 0, 0, 0), &c, now, false),
            Decision::Send
        );
        assert_eq!(
            decide(&recent(Some(9_970), 1, 1, 1), &c, now, false),
            Decision::Wait(30)
        );
        assert_eq!(
            decide(&recent(Some(9_940), 1, 1, 1), &c, now, false),
            Decision::Send
        );
        // Within `captcha_margin` of the destination cap (5): a captcha first.
        assert_eq!(
            decide(&recent(Some(9_000), 3, 3, 3), &c, now, false),
            Decision::NeedsCaptcha
        );
        assert_eq!(
            decide(&recent(Some(9_000), 3, 3, 3), &c, now, true),
            Decision::Send
        );
        assert_eq!(
            decide(&recent(Some(9_000), 5, 5, 5), &c, now, true),
            Decision::Capped
        );
        // The address cap applies across destinations.
        assert_eq!(
            decide(&recent(None, 0, 0, 20), &c, now, true),
            Decision::Capped
        );
        assert_eq!(
            decide(&recent(None, 0, 0, 18), &c, now, false),
            Decision::NeedsCaptcha
        );
    }

    #[test]
    fn only_email_addresses_and_mobile_numbers_receive_codes() {
        let email = Login::parse("Alice@Acme.test", None).unwrap();
        let to = Destination::of(&email).unwrap();
        assert_eq!(to.channel, Channel::Email);
        let phone = Login::parse("138 0013-8000", Some("CN")).unwrap();
        assert_eq!(Destination::of(&phone).unwrap().address, "+8613800138000");
        let name = Login::parse("alice", None).unwrap();
        assert_eq!(Destination::of(&name), None);
    }

    #[test]
    fn the_defaults_are_valid_and_bad_values_name_their_key() {
        CodeConfig::default().validate().unwrap();
        let bad = CodeConfig {
            max_attempts: 0,
            ..CodeConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "codes.max_attempts");
    }
}
