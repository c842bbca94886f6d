//! SMS through an HTTP gateway described in configuration: URL, method, headers, a minijinja
//! template of the body, and what counts as success. Every vendor's API differs, so none is
//! built in; `docs/sign-in.md` shows the settings for a JSON API and a form-encoded one.

use std::time::Duration;

use minijinja::{Environment, context};

use super::config::SmsConfig;
use super::{Message, NotifyError};

pub struct Gateway {
    http: reqwest::Client,
    method: reqwest::Method,
    headers: Vec<(String, String)>,
    content_type: String,
    templates: Environment<'static>,
    success_status: [u16; 2],
    success_body_contains: Option<String>,
}

impl Gateway {
    pub fn new(config: &SmsConfig) -> anyhow::Result<Gateway> {
        let mut templates = Environment::new();
        templates.add_template_owned("url", config.url.clone().unwrap_or_default())?;
        templates.add_template_owned("body", config.body.clone())?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(5)))
            .timeout(Duration::from_secs(config.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sesame/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Gateway {
            http,
            method: reqwest::Method::from_bytes(config.method.as_bytes())?,
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            content_type: config.content_type.clone(),
            templates,
            success_status: config.success_status,
            success_body_contains: config.success_body_contains.clone(),
        })
    }

    fn render(&self, name: &str, message: &Message) -> Result<String, NotifyError> {
        let ctx = context! {
            to => &message.to,
            text => &message.body,
            code => &message.code,
            tenant => message.tenant.as_str(),
            locale => message.locale.tag(),
        };
        self.templates
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| NotifyError::Refused(format!("the sms.{name} template failed: {e}")))
    }

    pub async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        let url = self.render("url", message)?;
        let mut request = self.http.request(self.method.clone(), &url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if self.method != reqwest::Method::GET {
            request = request
                .header(reqwest::header::CONTENT_TYPE, &self.content_type)
                .body(self.render("body", message)?);
        }
        // Without the URL: it may carry the gateway's key, the number or the text.
        let response = request.send().await.map_err(|e| {
            NotifyError::Unavailable(format!("the SMS gateway: {}", e.without_url()))
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let [low, high] = self.success_status;
        let accepted = (low..=high).contains(&status)
            && self
                .success_body_contains
                .as_deref()
                .is_none_or(|needle| body.contains(needle));
        match status {
            _ if accepted => Ok(()),
            // Overloaded or failing: worth another try. Anything else is the gateway's "no".
            429 | 500..=599 => Err(NotifyError::Unavailable(format!(
                "the SMS gateway answered {status}"
            ))),
            // Not the reply's body: gateways echo the message, and the log would keep the code.
            _ => Err(NotifyError::Refused(format!(
                "the SMS gateway answered {status} ({} bytes)",
                body.len()
            ))),
        }
    }
}
