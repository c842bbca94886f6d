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
