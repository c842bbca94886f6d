//! Email over SMTP with lettre: STARTTLS (required, never opportunistic) or implicit TLS, with
//! optional authentication, or plaintext to a relay on the same host.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message as Email};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{EmailConfig, SmtpSecurity};
use super::{Message, NotifyError};

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    pub fn new(config: &EmailConfig) -> anyhow::Result<Smtp> {
        let host = config.host.as_deref().unwrap_or_default();
        let mut tls = TlsParameters::builder(host.to_string());
        if let Some(path) = &config.ca_file {
            tls = tls.add_root_certificate(Certificate::from_pem(&std::fs::read(path)?)?);
        }
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
        let builder = match config.security {
            // Required, never opportunistic: a server that does not offer STARTTLS gets nothing,
            // the password included.
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls.build()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls.build()?)),
            SmtpSecurity::InsecurePlaintext => {
                if !is_loopback(host) {
                    tracing::warn!(
                        host,
                        "email.security is insecure_plaintext for a host that is not this machine: codes cross the network unencrypted"
                    );
                }
                builder
            }
        };
        let mut builder = builder
            .port(config.port())
            .timeout(Some(Duration::from_secs(config.timeout_secs)));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = config
            .from
            .as_deref()
            .unwrap_or_default()
            .parse::<Mailbox>()?;
        Ok(Smtp {
            transport: builder.build(),
            from,
        })
    }

    pub async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|e| NotifyError::Refused(format!("not an email address: {e}")))?;
        let email = Email::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| NotifyError::Refused(e.to_string()))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(NotifyError::Refused(e.to_string())),
            Err(e) => Err(NotifyError::Unavailable(e.to_string())),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
