//! One-time verification codes ("dynamic verification codes"): six random digits sent by email
//! or SMS, valid for `codes.lifetime`, spent by their first right use, and killed by
//! `codes.max_attempts` wrong ones. Asking again is slowed by a cooldown and hourly caps per
//! destination, per account and per address, with a captcha once a cap is near.
//!
//! A request for an address that belongs to no account is answered exactly like one that does:
//! a row is stored for it too (never redeemable, nothing sent), so cooldowns and caps come out
//! the same, and delivery happens in the background so the time taken is the same.
//!
//! A password reset by email sends a link instead (`link_base`): a 256-bit secret behind the
//! row's id, valid for `codes.link_lifetime`, under the same cooldowns and caps.

mod redeem;
mod send;

pub use redeem::{Redeemed, Verified, peek_link, redeem, spend, verify, verify_link};
pub use send::{issue, link};

use serde::{Deserialize, Serialize};

use crate::account::Login;
use crate::app::App;
use crate::clock::UnixTime;
use crate::config::ConfigError;
use crate::crypto::secret::TokenHash;
use crate::i18n::Locale;
use crate::notify::Channel;
use crate::store::users::User;
use crate::store::verification_codes::RecentCodes;
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
    /// How long a password-reset link works.
    pub link_lifetime: i64,
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
            link_lifetime: 1800,
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
            ("codes.link_lifetime", self.link_lifetime, 60..=86_400),
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
    PasswordReset,
    /// Proving a new email address or mobile number before it replaces the account's.
    Bind,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::SignIn => "sign_in",
            Purpose::PasswordReset => "password_reset",
            Purpose::Bind => "bind",
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

    /// The form the store keeps: `e:` and an address, or `p:` and a number.
    pub fn key(&self) -> String {
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
    /// Only the account's own cap is reached: answered like a send, but nothing goes out, so
    /// the answer is the one an address of no account gets.
    Quiet,
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
    // The per-account count exists only for real accounts, so hitting that cap alone must
    // look like a send: a "too many" there would tell that the address has an account.
    let counts = [
        (recent.for_destination, config.per_destination_hourly),
        (recent.from_address, config.per_address_hourly),
    ];
    if counts.iter().any(|(n, cap)| n >= cap) {
        return Decision::Capped;
    }
    if recent.for_user >= config.per_account_hourly {
        return Decision::Quiet;
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

/// A request for a code to `to`, asked for from `ip` within `context` (a login flow id, or a
/// digest of the browser's binding).
pub struct Request<'a> {
    pub purpose: Purpose,
    pub to: &'a Destination,
    /// Send a link to follow instead of digits to type: the URL the secret is appended to
    /// (`…/reset-password?token=`).
    /// The account the destination belongs to, if any.
    pub user: Option<&'a User>,
    pub context: &'a str,
    pub ip: Option<&'a str>,
    pub locale: Locale,
    pub tenant_name: &'a str,
    pub captcha_solved: bool,
    pub link_base: Option<&'a str>,
}

/// The keyed digest a code or link secret is stored as, bound to its tenant, purpose and
/// destination (in its stored form) so a digest copied to another row matches nothing.
fn digest(
    app: &App,
    tenant: &TenantId,
    purpose: Purpose,
    destination_key: &str,
    secret: &str,
) -> TokenHash {
    app.code_key.digest(&format!(
        "{tenant}\u{0}{}\u{0}{destination_key}\u{0}{secret}",
        purpose.as_str()
    ))
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
        // The account's own cap: quiet, not "too many".
        assert_eq!(
            decide(&recent(None, 0, 10, 0), &c, now, true),
            Decision::Quiet
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
