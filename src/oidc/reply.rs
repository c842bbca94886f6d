//! The authorization response, delivered to a redirect URI already matched against the client's
//! registered ones: in the query (RFC 6749 §4.1.2), the fragment, or an auto-submitted form
//! (OAuth 2.0 Form Post Response Mode). Every response carries `iss` (RFC 9207) and the client's
//! `state`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::redirect::RedirectUri;
use crate::web::Templates;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    pub fn parse(s: &str) -> Option<ResponseMode> {
        match s {
            "query" => Some(ResponseMode::Query),
            "fragment" => Some(ResponseMode::Fragment),
            "form_post" => Some(ResponseMode::FormPost),
            _ => None,
        }
    }

    pub const SUPPORTED: [&'static str; 3] = ["query", "fragment", "form_post"];
}

/// Where the answer goes. Only built from a [`RedirectUri`], so it can never target an
/// unregistered URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
    pub iss: String,
    /// The reader's language, for the `form_post` page; set once the request is known.
    #[serde(default)]
    pub lang: Option<String>,
}

impl Reply {
    pub fn new(to: RedirectUri, mode: ResponseMode, state: Option<String>, iss: &str) -> Reply {
        Reply {
            redirect_uri: to.as_str().to_string(),
            mode,
            state,
            iss: iss.to_string(),
            lang: None,
        }
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    fn with_common(&self, params: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(state) = &self.state {
            all.push(("state".into(), state.clone()));
        }
        all.push(("iss".into(), self.iss.clone()));
        all
    }

    /// The URL carrying `params` for the query and fragment modes.
    pub fn url(&self, params: &[(&str, &str)]) -> String {
        let all = self.with_common(params);
        let encoded = || {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(all.iter())
                .finish()
        };
        if self.mode == ResponseMode::Fragment {
            return format!("{}#{}", self.redirect_uri, encoded());
        }
        match url::Url::parse(&self.redirect_uri) {
            // Keeps the registered URI's own query (RFC 6749 §3.1.2).
            Ok(mut u) => {
                u.query_pairs_mut().extend_pairs(all.iter());
                u.to_string()
            }
            Err(_) => {
                let sep = if self.redirect_uri.contains('?') {
                    '&'
                } else {
                    '?'
                };
                format!("{}{sep}{}", self.redirect_uri, encoded())
            }
        }
    }

    /// The response itself: a 303 (RFC 9700 §4.12: never a 307 that would re-post the user's
    /// credentials) or the form_post page.
    pub fn send(&self, templates: &Templates, params: &[(&str, &str)]) -> Response {
        let mut response = match self.mode {
            ResponseMode::FormPost => self.form_post(templates, params),
            _ => {
                let mut r = StatusCode::SEE_OTHER.into_response();
                if let Ok(location) = HeaderValue::from_str(&self.url(params)) {
                    r.headers_mut().insert(header::LOCATION, location);
                }
                r
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }

    /// An error response (RFC 6749 §4.1.2.1). `description` is ours, never the client's input.
    pub fn error(&self, templates: &Templates, code: &str, description: &str) -> Response {
        self.send(
            templates,
            &[("error", code), ("error_description", description)],
        )
    }

    fn form_post(&self, templates: &Templates, params: &[(&str, &str)]) -> Response {
        let all = self.with_common(params);
        let locale = self
            .lang
            .as_deref()
            .and_then(crate::i18n::Locale::from_tag)
            .unwrap_or(crate::i18n::FALLBACK);
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        crate::web::auto_post(templates, locale, &self.redirect_uri, &pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(uri: &str, mode: ResponseMode) -> Reply {
        let registered = vec![uri.to_string()];
        Reply::new(
            RedirectUri::registered(uri, &registered).unwrap(),
            mode,
            Some("s t&x".into()),
            "https://id.example.com/t/acme",
        )
    }

    #[test]
    fn query_mode_keeps_the_registered_query_and_adds_state_and_iss() {
        let url =
            reply("https://crm.example.com/cb?tab=1", ResponseMode::Query).url(&[("code", "abc")]);
        let parsed = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("tab".into(), "1".into()),
                ("code".into(), "abc".into()),
                ("state".into(), "s t&x".into()),
                ("iss".into(), "https://id.example.com/t/acme".into()),
            ]
        );
    }

    #[test]
    fn fragment_mode_and_app_schemes() {
        let url = reply("https://crm.example.com/cb", ResponseMode::Fragment).url(&[("code", "c")]);
        assert!(
            url.starts_with("https://crm.example.com/cb#code=c&state="),
            "{url}"
        );
        let app = reply("com.example.crm:/callback", ResponseMode::Query).url(&[("code", "c")]);
        assert!(app.starts_with("com.example.crm:/callback?code=c"), "{app}");
    }

    #[test]
    fn form_post_page_posts_to_the_redirect_uri_only() {
        let templates = Templates::load().unwrap();
        let r = reply("https://crm.example.com/cb", ResponseMode::FormPost)
            .send(&templates, &[("code", "<c>")]);
        assert_eq!(r.status(), 200);
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("form-action https://crm.example.com https:;"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    }
}
