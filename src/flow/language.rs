//! The language of the sign-in pages: negotiated per request, and chosen by the user through the
//! switcher (links, so it works without JavaScript) that remembers the choice in a cookie.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use crate::app::App;
use crate::i18n::{self, Locale, Preferences, Text, negotiate::COOKIE};
use crate::oidc::form::OAuthForm;
use crate::tenant::resolve::TenantCtx;
use crate::web::error::PageError;

/// How long the browser keeps the choice.
const REMEMBER_SECS: u64 = 365 * 24 * 3600;

/// The language of a page for this request; `ui_locales` are the app's, from the flow.
pub fn locale(tenant: &TenantCtx, headers: &HeaderMap, ui_locales: &[String]) -> Locale {
    let mut p = Preferences::of(headers);
    p.ui_locales = ui_locales;
    p.tenant_default = tenant
        .tenant
        .settings
        .get("default_locale")
        .and_then(|v| v.as_str());
    i18n::negotiate(&p)
}

/// The switcher's links for a page that `here` (a path with its query) shows again.
pub fn switcher(tenant: &TenantCtx, here: &str) -> Vec<minijinja::Value> {
    let back: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    let base = super::login::tenant_path(tenant);
    Locale::ALL
        .iter()
        .map(|l| {
            context! {
                tag => l.tag(),
                name => l.native_name(),
                href => format!("{base}/language/{}?return={back}", l.tag()),
            }
        })
        .collect()
}

/// `GET /t/{tenant}/language/{tag}?return=PATH`: remembers the language and shows `PATH` again.
/// Only a path under the tenant is followed, so the link cannot send anyone elsewhere.
pub async fn switch(
    State(app): State<App>,
    tenant: TenantCtx,
    Path(path): Path<std::collections::HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let tag = path.get("tag").map(String::as_str).unwrap_or_default();
    let Some(locale) = Locale::from_tag(tag).filter(|l| l.tag() == tag) else {
        return Err(PageError::NotFound);
    };
    let params = OAuthForm::parse(query.unwrap_or_default().as_bytes())
        .map_err(|_| PageError::Invalid(Text::new("error.malformed_form")))?;
    let base = super::login::tenant_path(&tenant);
    let target = params
        .get("return")
        .filter(|r| within(&base, r))
        .map(str::to_string);
    let cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age={REMEMBER_SECS}; SameSite=Lax; HttpOnly{}",
        locale.tag(),
        if app.config.https() { "; Secure" } else { "" }
    );
    let mut response = match target {
        Some(target) => (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response(),
        None => super::message(
            &app,
            locale,
            StatusCode::OK,
            &Text::new("language.changed_title"),
            &Text::new("language.changed_text"),
            None,
        )?,
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Whether `target` is a plain path under the tenant's base path: no scheme, no host, no
/// `//` or backslash a browser might read as one, no dot segments, written out or
/// percent-encoded (browsers read `%2e%2e` as `..`, WHATWG URL §4.4), and no encoded slash.
fn within(base: &str, target: &str) -> bool {
    let under = target
        .strip_prefix(base)
        .is_some_and(|rest| rest.starts_with('/'));
    let path = target.split('?').next().unwrap_or_default();
    let dot_or_slash = path.split('/').any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        decoded == ".." || decoded == "." || decoded.contains(['/', '\\'])
    });
    under
        && target.len() <= 2048
        && !target.contains("//")
        && !target.contains('\\')
        && !dot_or_slash
        && !target.split(['/', '?']).any(|s| s == ".." || s == ".")
        && target
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<' && b != b'>')
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn only_paths_under_the_tenant_are_followed() {
        assert!(within("/t/acme", "/t/acme/login?flow=abc"));
        assert!(within("", "/login?flow=abc"), "a tenant on its own host");
        assert!(!within("/t/acme", "/t/acmeevil/login"));
        assert!(!within("/t/acme", "https://evil.example/t/acme/login"));
        assert!(!within("", "//evil.example/login"));
        assert!(!within("", "/\\evil.example"));
        assert!(!within("/t/demo", "/t/demo/%2e%2e/%2E%2E/t/evil/login"));
        assert!(!within("/t/demo", "/t/demo/.%2e/x"));
        assert!(!within("/t/demo", "/t/demo/%2f%2fevil.example"));
        assert!(
            within("/t/demo", "/t/demo/login?flow=a%2eb"),
            "a query may say anything"
        );
        assert!(!within("/t/acme", "/t/acme/../other/login"));
        assert!(!within("/t/acme", "/t/acme/login\r\nSet-Cookie: x"));
    }
}
