//! The `[email]` and `[sms]` sections: which driver delivers each channel and how to reach it.
//! Flat tables with a `driver` key, so every value can also come from the environment
//! (`SESAME_EMAIL_PASSWORD`, `SESAME_SMS_URL` …).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// How a channel's messages leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// Not delivered at all: sign-in methods that need the channel are not offered.
    #[default]
    Disabled,
    /// Kept in the database for `sesame outbox list` and the development page, never sent.
    /// For development and the demo only: anyone who can read the outbox can sign in as anyone.
    Outbox,
    /// Email over SMTP.
    Smtp,
    /// SMS through an HTTP gateway.
    Http,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: for a relay on the same host only (`127.0.0.1:25`).
    InsecurePlaintext,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub driver: Driver,
    /// The sender, e.g. `Acme Sign-in <no-reply@acme.example>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Defaults to 587 for STARTTLS, 465 for TLS and 25 without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// PEM certificates to trust for the SMTP server besides the public web roots (a relay with
    /// a certificate from the organisation's own CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Seconds one delivery attempt may take.
    pub timeout_secs: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            driver: Driver::Disabled,
            from: None,
            host: None,
            port: None,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            ca_file: None,
            timeout_secs: 10,
        }
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("driver", &self.driver)
            .field("from", &self.from)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub driver: Driver,
    /// The gateway's URL, a template like `body` (query parameters can carry `{{ to | urlencode }}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub method: String,
    /// Extra request headers, such as the gateway's API key.
    pub headers: BTreeMap<String, String>,
    pub content_type: String,
    /// A minijinja template of the request body, given `to` (E.164), `text`, `code` (for
    /// verification codes), `tenant` and `locale`.
    pub body: String,
    /// Status codes that mean "accepted", as an inclusive range.
    pub success_status: [u16; 2],
    /// When set, the response body must also contain this text (gateways that answer 200 to
    /// everything and put the outcome in the body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_body_contains: Option<String>,
    /// Seconds one delivery attempt may take.
    pub timeout_secs: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            driver: Driver::Disabled,
            url: None,
            method: "POST".into(),
            headers: BTreeMap::new(),
            content_type: "application/json".into(),
            body: r#"{"to": {{ to | tojson }}, "text": {{ text | tojson }}}"#.into(),
            success_status: [200, 299],
            success_body_contains: None,
            timeout_secs: 10,
        }
    }
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are often API keys.
        let headers: Vec<&String> = self.headers.keys().collect();
        f.debug_struct("SmsConfig")
            .field("driver", &self.driver)
            .field("url", &self.url.as_deref().map(crate::config::redact_url))
            .field("method", &self.method)
            .field("headers", &headers)
            .field("success_status", &self.success_status)
            .finish()
    }
}

impl EmailConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.driver {
            Driver::Disabled | Driver::Outbox => Ok(()),
            Driver::Http => Err(ConfigError::new(
                "email.driver",
                "is 'http', which only SMS uses",
                "use 'smtp', 'outbox' or 'disabled'",
            )),
            Driver::Smtp => {
                if self.host.as_deref().is_none_or(str::is_empty) {
                    return Err(ConfigError::new(
                        "email.host",
                        "is missing while email.driver is 'smtp'",
                        "set the SMTP server's host name, e.g. smtp.example.com",
                    ));
                }
                let from = self.from.as_deref().unwrap_or_default();
                if from.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(ConfigError::new(
                        "email.from",
                        format!("'{from}' is not a sender address"),
                        "write it as no-reply@example.com or \"Name <no-reply@example.com>\"",
                    ));
                }
                let local = self.host.as_deref().is_some_and(|h| {
                    h == "localhost"
                        || h.parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                });
                if self.security == SmtpSecurity::InsecurePlaintext
                    && self.password.is_some()
                    && !local
                {
                    return Err(ConfigError::new(
                        "email.security",
                        "is insecure_plaintext with a password for a host that is not this machine",
                        "use starttls or tls; plaintext is only for a relay on the same host",
                    ));
                }
                if self.username.is_some() != self.password.is_some() {
                    return Err(ConfigError::new(
                        "email.password",
                        "is set without email.username, or the other way round",
                        "set both (SESAME_EMAIL_PASSWORD keeps the password out of the file) or neither",
                    ));
                }
                if let Some(path) = &self.ca_file {
                    let pem = std::fs::read(path).map_err(|e| {
                        ConfigError::new(
                            "email.ca_file",
                            format!("cannot read {}: {e}", path.display()),
                            "point it at a readable PEM file of CA certificates",
                        )
                    })?;
                    if lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
                        return Err(ConfigError::new(
                            "email.ca_file",
                            format!("{} holds no PEM certificate", path.display()),
                            "point it at a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)",
                        ));
                    }
                }
                positive_timeout("email.timeout_secs", self.timeout_secs)
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::InsecurePlaintext => 25,
        })
    }
}

impl SmsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.driver {
            Driver::Disabled | Driver::Outbox => Ok(()),
            Driver::Smtp => Err(ConfigError::new(
                "sms.driver",
                "is 'smtp', which only email uses",
                "use 'http', 'outbox' or 'disabled'",
            )),
            Driver::Http => {
                let url = self.url.as_deref().unwrap_or_default();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::new(
                        "sms.url",
                        "is not an http(s) URL",
                        "set the gateway's endpoint, e.g. https://sms.example.com/send",
                    ));
                }
                if reqwest::Method::from_bytes(self.method.as_bytes()).is_err() {
                    return Err(ConfigError::new(
                        "sms.method",
                        format!("'{}' is not an HTTP method", self.method),
                        "use POST (the default), PUT or GET",
                    ));
                }
                for (key, template) in [("sms.url", url), ("sms.body", self.body.as_str())] {
                    let env = minijinja::Environment::new();
                    if let Err(e) = env.template_from_str(template) {
                        return Err(ConfigError::new(
                            key,
                            format!("is not a valid template: {e}"),
                            "see docs/sign-in.md for the variables a template gets",
                        ));
                    }
                }
                let [low, high] = self.success_status;
                if !(100..=599).contains(&low) || !(low..=599).contains(&high) {
                    return Err(ConfigError::new(
                        "sms.success_status",
                        "is not a range of HTTP status codes",
                        "write it as [FIRST, LAST], e.g. [200, 299]",
                    ));
                }
                positive_timeout("sms.timeout_secs", self.timeout_secs)
            }
        }
    }
}

fn positive_timeout(key: &str, secs: u64) -> Result<(), ConfigError> {
    if (1..=120).contains(&secs) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "must be between 1 and 120",
            "give a number of seconds (default 10)",
        ))
    }
}
