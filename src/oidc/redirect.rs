//! Rules for redirect URIs a client may register (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §4.1),
//! and the one way to obtain a URI Sesame may redirect to.

/// A redirect URI that exactly equals one the client registered. RFC 9700 §4.1.3: compare as
/// strings, with no normalization or patterns, so no near-miss (another port, path, query or host
/// case) can ever receive a code. The only constructor is [`RedirectUri::registered`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn registered(requested: &str, registered: &[String]) -> Option<RedirectUri> {
        registered
            .iter()
            .find(|r| r.as_str() == requested)
            .map(|r| RedirectUri(r.clone()))
    }

    /// For native apps (public clients): as [`RedirectUri::registered`], and a loopback IP
    /// redirect (`http://127.0.0.1` or `http://[::1]`) also matches on any port, because the app
    /// picks a free port at each run (RFC 8252 §7.3). Everything but the port must be equal.
    pub fn registered_native(requested: &str, registered: &[String]) -> Option<RedirectUri> {
        if let Some(exact) = RedirectUri::registered(requested, registered) {
            return Some(exact);
        }
        let asked = url::Url::parse(requested).ok()?;
        if asked.scheme() != "http" || !matches!(asked.host_str(), Some("127.0.0.1" | "[::1]")) {
            return None;
        }
        let without_port = |u: &url::Url| {
            let mut u = u.clone();
            u.set_port(None).ok()?;
            Some(u.to_string())
        };
        let asked_bare = without_port(&asked)?;
        registered.iter().find_map(|r| {
            let reg = url::Url::parse(r).ok()?;
            (reg.scheme() == "http"
                && reg.host_str() == asked.host_str()
                && without_port(&reg)? == asked_bare)
                .then(|| RedirectUri(requested.to_string()))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Accepts absolute URIs without fragment: `https`, `http` only for loopback hosts (native apps,
/// local development), and private-use schemes with a dot (`com.example.app:/cb`) for mobile apps.
pub fn check_registrable(uri: &str) -> Result<(), String> {
    let parsed = url::Url::parse(uri).map_err(|_| format!("'{uri}' is not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(format!(
            "'{uri}' has a fragment, which redirect URIs must not have"
        ));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "'{uri}' uses http on a non-loopback host; use https"
                ))
            }
        }
        "javascript" | "data" | "file" | "vbscript" => {
            Err(format!("'{uri}' uses a forbidden scheme"))
        }
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(format!(
            "'{uri}': use https, http on loopback, or a reverse-domain app scheme"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_registered_uris_are_redirect_targets() {
        let registered = vec![
            "https://crm.example.com/cb".to_string(),
            "http://127.0.0.1:3000/cb".to_string(),
        ];
        assert_eq!(
            RedirectUri::registered("https://crm.example.com/cb", &registered)
                .unwrap()
                .as_str(),
            "https://crm.example.com/cb"
        );
        for near_miss in [
            "https://crm.example.com/cb/",
            "https://crm.example.com/cb/extra",
            "https://crm.example.com:8443/cb",
            "https://crm.example.com/cb?x=1",
            "https://CRM.example.com/cb",
            "https://crm.example.com/CB",
            "http://crm.example.com/cb",
            "https://crm.example.com.evil.test/cb",
            "http://127.0.0.1:3001/cb",
            "javascript:alert(1)",
            "",
        ] {
            assert!(
                RedirectUri::registered(near_miss, &registered).is_none(),
                "{near_miss}"
            );
        }
    }

    #[test]
    fn native_apps_may_use_any_loopback_port() {
        let registered = vec![
            "http://127.0.0.1/cb".to_string(),
            "com.example.app:/cb".to_string(),
        ];
        assert_eq!(
            RedirectUri::registered_native("http://127.0.0.1:51234/cb", &registered)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:51234/cb"
        );
        for miss in [
            "http://127.0.0.1:51234/cb2",
            "http://127.0.0.1:51234/cb?x=1",
            "http://localhost:51234/cb",
            "https://127.0.0.1:51234/cb",
            "http://127.0.0.2:51234/cb",
            "http://127.0.0.1@evil.example:80/cb",
        ] {
            assert!(
                RedirectUri::registered_native(miss, &registered).is_none(),
                "{miss}"
            );
        }
        assert!(RedirectUri::registered_native("com.example.app:/cb", &registered).is_some());
    }

    #[test]
    fn registrable_redirect_uris() {
        for ok in [
            "https://crm.example.com/cb",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "com.example.app:/cb",
        ] {
            assert!(check_registrable(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/cb",
            "https://x.com/cb#frag",
            "http://crm.example.com/cb",
            "javascript:alert(1)",
            "myapp:/cb",
        ] {
            assert!(check_registrable(bad).is_err(), "{bad}");
        }
    }
}
