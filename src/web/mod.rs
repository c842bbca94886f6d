//! Server-rendered pages: the minijinja environment (templates embedded in the binary, so a
//! release is one file), static assets, and error pages.

pub mod envelope;
pub mod error;
pub mod proxies;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use minijinja::Environment;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::i18n::{Catalogs, Locale, Text};

/// Every template, embedded at build time.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("message.html", include_str!("../../templates/message.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "change_password.html",
        include_str!("../../templates/change_password.html"),
    ),
    (
        "form_post.html",
        include_str!("../../templates/form_post.html"),
    ),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    (
        "consents.html",
        include_str!("../../templates/consents.html"),
    ),
    ("outbox.html", include_str!("../../templates/outbox.html")),
    ("forgot.html", include_str!("../../templates/forgot.html")),
    ("account.html", include_str!("../../templates/account.html")),
    ("trial.html", include_str!("../../templates/trial.html")),
    (
        "agreement.html",
        include_str!("../../templates/agreement.html"),
    ),
    (
        "password_fields.html",
        include_str!("../../templates/password_fields.html"),
    ),
];

pub const STYLESHEET: &str = include_str!("../../templates/static/sesame.css");
/// Ticks the password rules as they are met. Pages work without it: the server checks anyway.
pub const PASSWORD_SCRIPT: &str = include_str!("../../templates/static/password.js");

/// The page templates and the text catalogs they draw on.
pub struct Templates {
    env: Environment<'static>,
    pub catalogs: Arc<Catalogs>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template error: {0}")]
    Template(#[from] minijinja::Error),
    #[error(transparent)]
    Catalog(#[from] crate::i18n::CatalogError),
}

impl Templates {
    pub fn load() -> Result<Templates, TemplateError> {
        let catalogs = Arc::new(Catalogs::load()?);
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        // `t("key", name=value, ...)`: the text in the page's language (`lang` in the context).
        let texts = catalogs.clone();
        env.add_function(
            "t",
            move |state: &minijinja::State, key: &str, kwargs: minijinja::value::Kwargs| {
                let locale = state
                    .lookup("lang")
                    .and_then(|l| l.as_str().and_then(Locale::from_tag))
                    .unwrap_or(crate::i18n::FALLBACK);
                let mut values = Vec::new();
                for name in kwargs.args() {
                    let value: minijinja::Value = kwargs.get(name)?;
                    values.push((name, value.to_string()));
                }
                let args: Vec<(&str, &str)> =
                    values.iter().map(|(n, v)| (*n, v.as_str())).collect();
                Ok::<_, minijinja::Error>(minijinja::Value::from_safe_string(
                    texts.format(locale, key, &args),
                ))
            },
        );
        Ok(Templates { env, catalogs })
    }

    /// Renders `name` in `locale`; `ctx` may hold [`Text`] values already rendered with
    /// [`Templates::text`].
    pub fn render_in(
        &self,
        name: &str,
        locale: Locale,
        ctx: minijinja::Value,
    ) -> Result<Html<String>, TemplateError> {
        let ctx = minijinja::context! { lang => locale.tag(), ..ctx };
        Ok(Html(self.env.get_template(name)?.render(ctx)?))
    }

    /// Renders `name` in the fallback language (pages with no reader to ask).
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<Html<String>, TemplateError> {
        self.render_in(name, crate::i18n::FALLBACK, ctx)
    }

    /// A message chosen by code, in `locale`, as markup for a template.
    pub fn text(&self, text: &Text, locale: Locale) -> minijinja::Value {
        text.render(&self.catalogs, locale)
    }
}

/// The one script of the auto-submitting page, allowed by its hash in the page's CSP.
const AUTO_SUBMIT: &str = "document.forms[0].submit();";

/// The CSP source that allows [`AUTO_SUBMIT`], hashed once rather than on every SAML response.
static AUTO_SUBMIT_SOURCE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(AUTO_SUBMIT.as_bytes()))
    )
});

/// A page that POSTs `params` to `action` by itself (OAuth `form_post`, the SAML HTTP-POST
/// binding). Without JavaScript the user presses its button. Its CSP allows the one script by
/// hash and form submission to `action`'s origin only.
pub fn auto_post(
    templates: &Templates,
    locale: Locale,
    action: &str,
    params: &[(&str, &str)],
) -> Response {
    // A SAML message is 10 KB or more of base64, which can hold nothing HTML would read as markup:
    // such a value goes into the page as it is rather than through the escaper. Anything else
    // (a `state` an app chose, say) is escaped.
    let params: Vec<(&str, minijinja::Value)> = params
        .iter()
        .map(|&(name, value)| {
            let value = if is_base64(value) {
                minijinja::Value::from_safe_string(value.to_string())
            } else {
                minijinja::Value::from(value)
            };
            (name, value)
        })
        .collect();
    let html = templates.render_in(
        "form_post.html",
        locale,
        minijinja::context! { action => action, params => params, script => AUTO_SUBMIT },
    );
    let Ok(html) = html else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let target = csp_source(action).unwrap_or_default();
    let mut response = (StatusCode::OK, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // Browsers hold the redirects that follow a form's submission to its `form-action` too, and
    // where the consumer sends the browser next (its app, on another host perhaps) is not ours
    // to know: any https address may follow the target.
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; script-src {script}; form-action {target} https:; \
         frame-ancestors 'none'; base-uri 'none'",
        script = *AUTO_SUBMIT_SOURCE
    )) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// Only base64's alphabet (`A-Z a-z 0-9 + / =`): nothing to escape in an attribute value.
fn is_base64(value: &str) -> bool {
    // Without short-circuiting, so that the compiler checks many bytes at once: a SAML message
    // is kilobytes long, and nearly every value passes.
    value.bytes().fold(true, |ok, b| {
        ok & (b.is_ascii_alphanumeric() | (b == b'+') | (b == b'/') | (b == b'='))
    })
}

/// A public document served from cached bytes (discovery, JWKS, SAML metadata): cacheable for
/// `cache_control`, readable from any origin. The header map is sized once for these and the
/// envelope's security headers, so the hottest responses never grow it.
pub fn public_document(
    body: bytes::Bytes,
    content_type: &'static str,
    cache_control: &'static str,
) -> Response {
    let mut headers = axum::http::HeaderMap::with_capacity(12);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    let mut response = Response::new(axum::body::Body::from(body));
    *response.headers_mut() = headers;
    response
}

/// A page as a response with `status`, never cached (it may carry a CSRF token or a user's data),
/// and with `form_action` added to the page's `form-action` policy when its form, or a redirect
/// after it, ends at another origin (an app's redirect URI).
pub fn page(status: StatusCode, html: Html<String>, form_action: Option<&str>) -> Response {
    page_to(status, html, form_action.as_slice())
}

/// [`page`] for a form whose redirects may end at any of several origins (a logout that walks
/// through apps' logout endpoints): browsers apply `form-action` to every redirect after a form.
pub fn page_to(status: StatusCode, html: Html<String>, form_actions: &[&str]) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut targets: Vec<String> = form_actions.iter().filter_map(|a| csp_source(a)).collect();
    targets.sort();
    targets.dedup();
    if !targets.is_empty()
        && let Ok(value) = HeaderValue::from_str(&format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
             form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
            targets.join(" ")
        ))
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The CSP source expression that admits `uri`: its origin for http(s), its scheme for an app's
/// private-use scheme (`com.example.app:`). `None` for anything that is not a plain URI.
pub fn csp_source(uri: &str) -> Option<String> {
    let parsed = url::Url::parse(uri).ok()?;
    let source = match parsed.scheme() {
        "http" | "https" => parsed.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    // Origins and schemes never hold spaces, quotes or semicolons; refuse rather than inject.
    source
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'' | b'"'))
        .then_some(source)
}

/// Who is calling, for the audit log and session list: the peer address and the browser.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The key the caller is rate-limited under (see [`proxies::rate_key`]).
    pub fn rate_key(&self) -> Option<String> {
        self.ip.as_deref().map(proxies::rate_key)
    }
}

/// A user agent longer than this is cut; nothing legitimate needs more.
const MAX_USER_AGENT: usize = 256;

impl FromRequestParts<crate::app::App> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &crate::app::App,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| {
                app.trusted_proxies
                    .client(addr.ip(), &parts.headers)
                    .to_string()
            });
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Ok(ClientInfo { ip, user_agent })
    }
}

/// `GET /static/password.js`
pub async fn password_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PASSWORD_SCRIPT,
    )
        .into_response()
}

/// `GET /static/sesame.css`
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_sources_for_redirect_uris() {
        assert_eq!(
            csp_source("https://crm.example.com:8443/cb?x=1").as_deref(),
            Some("https://crm.example.com:8443")
        );
        assert_eq!(
            csp_source("com.example.crm:/callback").as_deref(),
            Some("com.example.crm:")
        );
        assert_eq!(csp_source("not a uri"), None);
    }

    #[tokio::test]
    async fn auto_post_escapes_all_but_base64() {
        use http_body_util::BodyExt;
        let t = Templates::load().unwrap();
        let response = auto_post(
            &t,
            Locale::En,
            "https://sp.example.com/acs",
            &[
                ("SAMLResponse", "PHNhbWxwOlJlc3BvbnNlLz4+/w=="),
                ("RelayState", "\"><script>alert(1)</script>"),
                ("state", "a&b"),
            ],
        );
        // The page's one script, allowed by its SHA-256 (computed outside Rust) and nothing else.
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'sha256-8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ='; "),
            "{csp}"
        );
        assert!(
            csp.contains("form-action https://sp.example.com https:;"),
            "{csp}"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            html.contains(&format!("<script>{AUTO_SUBMIT}</script>")),
            "{html}"
        );
        assert!(
            html.contains(r#"value="PHNhbWxwOlJlc3BvbnNlLz4+/w==""#),
            "{html}"
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
        assert!(html.contains("a&amp;b"), "{html}");
        assert!(!is_base64("a b") && !is_base64("a\"") && is_base64("aZ09+/="));
    }

    #[test]
    fn templates_parse_and_escape() {
        let t = Templates::load().unwrap();
        let html = t
            .render(
                "error.html",
                minijinja::context! { title => "Oops", message => "<script>x</script>" },
            )
            .unwrap()
            .0;
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
    }
}
