//! Cookies the sign-in pages use, and CSRF tokens bound to the browser.
//!
//! Over HTTPS every cookie carries the `__Host-` prefix (RFC 6265bis §4.1.3.2: `Secure`, `Path=/`,
//! no `Domain`), so a sibling subdomain cannot plant or overwrite it. All are `HttpOnly` and
//! `SameSite=Lax`: the session must survive the top-level redirect back from an app, but no
//! cross-site subrequest carries it.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::secret::{DigestKey, constant_time_eq, random_token};
use crate::tenant::TenantId;

/// Cookie names and attributes for one deployment (HTTP on a laptop, HTTPS in production).
#[derive(Debug, Clone, Copy)]
pub struct CookieJar {
    pub secure: bool,
}

/// Cookie values Sesame issues are base64url; anything longer than this is not ours.
const MAX_VALUE_LEN: usize = 128;

impl CookieJar {
    fn prefix(self) -> &'static str {
        if self.secure { "__Host-" } else { "" }
    }

    /// One SSO session cookie per tenant, so tenants reached by path on one host stay apart.
    pub fn session_name(self, tenant: &TenantId) -> String {
        format!("{}sesame-session-{tenant}", self.prefix())
    }

    /// The browser's CSRF binding, shared by every tenant on the host.
    pub fn browser_name(self) -> String {
        format!("{}sesame-browser", self.prefix())
    }

    /// `Set-Cookie` for `name=value`; `max_age` `None` makes a browser-session cookie.
    pub fn set(self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={}", age.max(0)));
        }
        // Names and values are built from tenant slugs and base64url, always valid header text.
        HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static(""))
    }

    /// `Set-Cookie` that deletes `name`.
    pub fn clear(self, name: &str) -> HeaderValue {
        self.set(name, "", Some(0))
    }
}

/// The value of cookie `name` in the request, if present and plausibly one of ours.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_VALUE_LEN
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A new random cookie value (256 bits).
pub fn new_value() -> String {
    random_token(32)
}

/// CSRF tokens: a keyed digest of the browser cookie and the form's purpose (for sign-in forms,
/// the flow id). A page from another browser, another flow, or a forged form without the
/// cookie fails; nothing is stored, so any node can check a token another node issued.
#[derive(Clone)]
pub struct Csrf(DigestKey);

impl Csrf {
    pub fn new(key: DigestKey) -> Csrf {
        Csrf(key)
    }

    pub fn token(&self, browser: &str, purpose: &str) -> String {
        let digest = self.0.digest(&format!("csrf\u{0}{browser}\u{0}{purpose}"));
        URL_SAFE_NO_PAD.encode(digest.as_bytes())
    }

    pub fn verify(&self, browser: Option<&str>, purpose: &str, presented: Option<&str>) -> bool {
        match (browser, presented) {
            (Some(browser), Some(presented)) => constant_time_eq(
                self.token(browser, purpose).as_bytes(),
                presented.as_bytes(),
            ),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let jar = CookieJar { secure: true };
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(jar.session_name(&acme), "__Host-sesame-session-acme");
        let set = jar.set(&jar.session_name(&acme), "v", None);
        let set = set.to_str().unwrap();
        for part in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set.contains("Domain"));
        let plain = CookieJar { secure: false }.set("sesame-browser", "v", Some(60));
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(plain.to_str().unwrap().contains("Max-Age=60"));
    }

    #[test]
    fn reads_only_well_formed_values() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; b=x y; c=ok_-9"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("d=second"));
        assert_eq!(read(&h, "a").as_deref(), Some("1"));
        assert_eq!(read(&h, "b"), None);
        assert_eq!(read(&h, "c").as_deref(), Some("ok_-9"));
        assert_eq!(read(&h, "d").as_deref(), Some("second"));
        assert_eq!(read(&h, "e"), None);
    }

    #[test]
    fn csrf_tokens_bind_browser_and_purpose() {
        let csrf = Csrf::new(DigestKey::new([3; 32]));
        let t = csrf.token("browser-1", "flow-1");
        assert!(csrf.verify(Some("browser-1"), "flow-1", Some(&t)));
        assert!(!csrf.verify(Some("browser-2"), "flow-1", Some(&t)));
        assert!(!csrf.verify(Some("browser-1"), "flow-2", Some(&t)));
        assert!(!csrf.verify(None, "flow-1", Some(&t)));
        assert!(!csrf.verify(Some("browser-1"), "flow-1", None));
    }
}
