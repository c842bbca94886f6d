//! Tenants: their identifiers, and resolving which tenant a request is for, from the path
//! (`/t/{tenant}/…`) or from a host listed for the tenant (`acme.example.com`).

pub mod resolve;
pub mod settings;

use std::borrow::Borrow;
use std::fmt;

/// A tenant's slug: 1-63 of `a-z 0-9 -`, not starting or ending with `-`, so it is safe in URLs,
/// hostnames and issuers as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Option<TenantId> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        ok.then(|| TenantId(s.to_string()))
    }

    /// The tenant every installation has.
    pub fn default_tenant() -> TenantId {
        TenantId("default".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets caches keyed by tenant be probed with a slug from a path, before it is copied.
impl Borrow<str> for TenantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host name as tenants list it: lower case, no port, no trailing dot.
pub fn normalize_host(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => {
            h.to_string()
        }
        _ => host,
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    valid.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(TenantId::parse("acme-2").is_some());
        for bad in ["", "Acme", "-a", "a-", "a_b", "a/b", "..", &"a".repeat(64)] {
            assert!(TenantId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            normalize_host("ACME.example.com:8443").as_deref(),
            Some("acme.example.com")
        );
        assert_eq!(
            normalize_host("acme.example.com.").as_deref(),
            Some("acme.example.com")
        );
        assert_eq!(normalize_host("bad host"), None);
        assert_eq!(normalize_host("-x.com"), None);
    }
}
