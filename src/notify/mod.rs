//! Message delivery: verification codes and notices to users, by email over SMTP ([`smtp`]), by
//! SMS through an HTTP gateway ([`sms`]), or into the development outbox (`store::outbox`).
//!
//! Delivery runs in the background with retries, so a request never waits on a mail server and
//! the time a page takes cannot tell whether a message went out (which would show whether an
//! account exists). A channel whose last delivery failed is *failing* for a while: pages then
//! tell everyone alike "could not send, try again" instead of promising a message that will
//! not come. The texts come from the language catalogs (`[message]`), one per language.

pub mod config;
pub mod page;
pub mod sms;
pub mod smtp;

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::{SharedClock, UnixTime};
use crate::config::Config;
use crate::i18n::{Catalogs, Locale};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::{Store, StoreError, outbox};
use crate::tenant::TenantId;
use config::Driver;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// One message to one destination, already in the reader's language.
#[derive(Clone)]
pub struct Message {
    pub tenant: TenantId,
    pub channel: Channel,
    /// An email address or an E.164 mobile number.
    pub to: String,
    /// The email subject (SMS has none).
    pub subject: String,
    pub body: String,
    /// The verification code the message carries, for SMS gateways whose templates want it apart.
    pub code: Option<String>,
    pub locale: Locale,
    /// What the message is for, in the audit log (`sign_in.code`, `password.reset` …).
    pub purpose: &'static str,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may carry a code or a link that signs someone in.
        f.debug_struct("Message")
            .field("tenant", &self.tenant)
            .field("channel", &self.channel)
            .field("to", &mask(&self.to))
            .field("purpose", &self.purpose)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The channel has no driver.
    #[error("{} delivery is not configured", .0.as_str())]
    Disabled(Channel),
    /// The server or gateway refused this message for good; trying again will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// Could not be reached, or answered with a temporary failure.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NotifyError {
    fn retryable(&self) -> bool {
        matches!(self, NotifyError::Unavailable(_))
    }
}

/// A channel's driver, built once from the configuration.
enum Transport {
    Disabled,
    Outbox,
    Smtp(smtp::Smtp),
    Http(Box<sms::Gateway>),
}

/// Seconds a channel counts as failing after a failed delivery: pages say "could not send"
/// meanwhile, then let the next message try again.
pub const FAILING_FOR: i64 = 30;

/// Waits between delivery attempts; three attempts in all.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];

pub struct Notifier {
    email: Transport,
    sms: Transport,
    store: Store,
    clock: SharedClock,
    retry_delays: Vec<Duration>,
    /// When each channel last failed a delivery, while it counts as failing.
    failed_at: Mutex<[Option<UnixTime>; 2]>,
}

impl Notifier {
    pub fn new(config: &Config, store: Store, clock: SharedClock) -> anyhow::Result<Notifier> {
        let email = match config.email.driver {
            Driver::Smtp => Transport::Smtp(smtp::Smtp::new(&config.email)?),
            Driver::Outbox => Transport::Outbox,
            _ => Transport::Disabled,
        };
        let sms = match config.sms.driver {
            Driver::Http => Transport::Http(Box::new(sms::Gateway::new(&config.sms)?)),
            Driver::Outbox => Transport::Outbox,
            _ => Transport::Disabled,
        };
        for (channel, transport) in [("email", &email), ("sms", &sms)] {
            if matches!(transport, Transport::Outbox) {
                tracing::warn!(
                    channel,
                    "messages go to the outbox, readable by `sesame outbox list`: for development only"
                );
            }
        }
        Ok(Notifier {
            email,
            sms,
            store,
            clock,
            retry_delays: RETRY_DELAYS.to_vec(),
            failed_at: Mutex::new([None, None]),
        })
    }

    /// Shorter waits between attempts, for tests of the retries.
    pub fn with_retry_delays(mut self, delays: Vec<Duration>) -> Notifier {
        self.retry_delays = delays;
        self
    }

    fn transport(&self, channel: Channel) -> &Transport {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
        }
    }

    /// Whether `channel` has a driver at all: methods that need it are offered only then.
    pub fn offers(&self, channel: Channel) -> bool {
        !matches!(self.transport(channel), Transport::Disabled)
    }

    /// Whether the outbox holds this channel's messages (the development page shows them).
    pub fn uses_outbox(&self) -> bool {
        matches!(self.email, Transport::Outbox) || matches!(self.sms, Transport::Outbox)
    }

    /// Whether a message on `channel` can be promised now: it has a driver and did not fail in
    /// the last [`FAILING_FOR`] seconds.
    pub fn ready(&self, channel: Channel) -> bool {
        self.offers(channel)
            && self.failed_at.lock().map_or(true, |f| {
                f[channel as usize].is_none_or(|at| self.clock.now().0 - at.0 >= FAILING_FOR)
            })
    }

    /// Notes how a delivery went. Only an unreachable server or gateway makes the channel
    /// failing: a refusal concerns one message (an address the server does not know), and must
    /// not stop codes to everyone else.
    fn mark(&self, channel: Channel, outcome: &Result<(), NotifyError>) {
        let failed = match outcome {
            Ok(()) => false,
            Err(NotifyError::Unavailable(_)) => true,
            Err(_) => return,
        };
        if let Ok(mut f) = self.failed_at.lock() {
            f[channel as usize] = failed.then(|| self.clock.now());
        }
    }

    /// Hands `message` over for delivery. The outbox stores it at once; SMTP and the SMS gateway
    /// deliver in the background, retrying a temporary failure twice, and a message that could
    /// not be delivered is logged and audited (`notify.failed`).
    pub async fn dispatch(
        self: &std::sync::Arc<Self>,
        message: Message,
    ) -> Result<(), NotifyError> {
        match self.transport(message.channel) {
            Transport::Disabled => Err(NotifyError::Disabled(message.channel)),
            Transport::Outbox => {
                let (store, now) = (self.store.clone(), self.clock.now());
                store
                    .run(move |c| {
                        outbox::insert(
                            c,
                            &message.tenant,
                            &outbox::NewMessage {
                                channel: message.channel.as_str(),
                                destination: &message.to,
                                subject: &message.subject,
                                body: &message.body,
                            },
                            now,
                        )
                    })
                    .await?;
                Ok(())
            }
            Transport::Smtp(_) | Transport::Http(_) => {
                let this = self.clone();
                tokio::spawn(async move { this.deliver_with_retries(message).await });
                Ok(())
            }
        }
    }

    /// Delivers `message` and waits for the outcome, retries included: for commands, which end
    /// when they return and so cannot leave a delivery in the background.
    pub async fn send_now(
        self: &std::sync::Arc<Self>,
        message: Message,
    ) -> Result<(), NotifyError> {
        match self.transport(message.channel) {
            Transport::Smtp(_) | Transport::Http(_) => self.deliver_with_retries(message).await,
            Transport::Outbox | Transport::Disabled => self.dispatch(message).await,
        }
    }

    /// Delivers now, retrying temporary failures; the outcome of the last attempt.
    pub async fn deliver_with_retries(&self, message: Message) -> Result<(), NotifyError> {
        let mut attempt = 0;
        loop {
            let outcome = self.deliver_once(&message).await;
            self.mark(message.channel, &outcome);
            match outcome {
                Ok(()) => {
                    tracing::info!(channel = message.channel.as_str(), to = %mask(&message.to), purpose = message.purpose, attempt, "message delivered");
                    return Ok(());
                }
                Err(e) if e.retryable() && attempt < self.retry_delays.len() => {
                    tracing::warn!(channel = message.channel.as_str(), to = %mask(&message.to), attempt, error = %e, "delivery failed; trying again");
                    tokio::time::sleep(self.retry_delays[attempt]).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::error!(channel = message.channel.as_str(), to = %mask(&message.to), purpose = message.purpose, error = %e, "message not delivered");
                    self.audit_failure(&message, &e).await;
                    return Err(e);
                }
            }
        }
    }

    async fn deliver_once(&self, message: &Message) -> Result<(), NotifyError> {
        match self.transport(message.channel) {
            Transport::Smtp(smtp) => smtp.send(message).await,
            Transport::Http(gateway) => gateway.send(message).await,
            Transport::Outbox | Transport::Disabled => Err(NotifyError::Disabled(message.channel)),
        }
    }

    async fn audit_failure(&self, message: &Message, error: &NotifyError) {
        let (tenant, now) = (message.tenant.clone(), self.clock.now());
        let details = serde_json::json!({
            "channel": message.channel.as_str(),
            "to": mask(&message.to),
            "purpose": message.purpose,
            "error": error.to_string(),
        });
        let recorded = self
            .store
            .run(move |c| {
                audit::record(
                    c,
                    &tenant,
                    &NewAuditEvent {
                        actor: "system",
                        action: "notify.failed",
                        target: None,
                        outcome: "failure",
                        ip: None,
                        details,
                    },
                    now,
                )
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "the failed delivery could not be audited");
        }
    }
}

/// A destination as logs and pages show it: `a***@example.com`, `+86******8000`.
pub fn mask(to: &str) -> String {
    match to.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => {
            let chars: Vec<char> = to.chars().collect();
            let keep_start = chars.len().min(3);
            let keep_end = chars.len().saturating_sub(keep_start).min(4);
            let hidden = chars.len() - keep_start - keep_end;
            let mut shown: String = chars[..keep_start].iter().collect();
            shown.push_str(&"*".repeat(hidden));
            shown.extend(&chars[chars.len() - keep_end..]);
            shown
        }
    }
}

/// The texts of a message of `kind` (`code`, `reset_code`, `reset_link`, `password_changed`)
/// in `locale`, from the catalogs' `[message]` table: `(subject, body)` for email, the body alone
/// for SMS (its subject stays empty). Placeholders are filled as they are: plain text, not HTML.
pub fn compose(
    catalogs: &Catalogs,
    locale: Locale,
    channel: Channel,
    kind: &str,
    args: &[(&str, &str)],
) -> (String, String) {
    match channel {
        Channel::Email => (
            catalogs.plain(locale, &format!("message.{kind}_subject"), args),
            catalogs.plain(locale, &format!("message.{kind}_email"), args),
        ),
        Channel::Sms => (
            String::new(),
            catalogs.plain(locale, &format!("message.{kind}_sms"), args),
        ),
    }
}

/// Every kind of message [`compose`] makes, for the completeness test.
pub const KINDS: [&str; 9] = [
    "code",
    "reset_code",
    "reset_link",
    "password_changed",
    "login_alert",
    "bind_code",
    "trial_received",
    "trial_ready",
    "contact_changed",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_masked() {
        assert_eq!(mask("alice@acme.test"), "a***@acme.test");
        assert_eq!(mask("+8613800138000"), "+86*******8000");
        assert_eq!(mask("+1"), "+1");
    }

    #[test]
    fn every_message_exists_in_every_language_and_carries_its_values() {
        let catalogs = Catalogs::load().unwrap();
        let args = [
            ("tenant", "Acme <&>"),
            ("code", "123456"),
            ("link", "https://id.example/t/acme/reset-password?token=abc"),
            ("minutes", "5"),
            ("time", "2026-12-02 08:00 UTC"),
            ("browser", "Chrome on Linux"),
            ("ip", "203.0.113.7"),
            ("company", "Acme <&>"),
            ("name", "Acme <&>"),
            ("until", "2026-12-31 00:00 UTC"),
            ("days", "7"),
            ("email", "a@acme.test"),
        ];
        for locale in Locale::ALL {
            for kind in KINDS {
                for channel in [Channel::Email, Channel::Sms] {
                    let (subject, body) = compose(&catalogs, locale, channel, kind, &args);
                    assert!(!body.starts_with("message."), "{kind} {locale:?}: {body}");
                    // The trial's acknowledgement echoes nothing an applicant typed.
                    assert!(
                        kind == "trial_received"
                            || body.contains("Acme <&>")
                            || subject.contains("Acme <&>"),
                        "plain text, not escaped: {subject} {body}"
                    );
                    match kind {
                        "code" | "reset_code" | "bind_code" => {
                            assert!(body.contains("123456"), "{body}")
                        }
                        "reset_link" if channel == Channel::Email => {
                            assert!(body.contains("token=abc"), "{body}")
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
