//! Requests to an address an administrator registered (an SP's metadata, a client's `jwks_uri`,
//! a back-channel logout endpoint), without letting that URL reach what the network behind Sesame
//! hides (SSRF): the host is resolved once, every address it resolves to must be public unless
//! the tenant allowed private ones, and the connection goes to the checked address (so a second
//! DNS answer cannot swap in another). Redirects are not followed; size and time are bounded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::store::tenants::Tenant;

/// The tenant setting that lets Sesame reach its apps on loopback, private and other non-public
/// addresses, and over plain `http` (apps on the company's own network).
pub const PRIVATE_ADDRESSES: &str = "private_app_addresses";

/// Whether `tenant` allows requests to its apps' non-public addresses (see [`PRIVATE_ADDRESSES`]).
pub fn tenant_allows_private(tenant: &Tenant) -> bool {
    tenant
        .settings
        .get(PRIVATE_ADDRESSES)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Limits of one fetch.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_bytes: usize,
    /// For the whole fetch: resolving, connecting, and reading the body.
    pub timeout: Duration,
    /// Loopback, private, link-local and other non-public addresses, and plain `http`, are
    /// allowed (an in-house app on the internal network).
    pub allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("'{0}' is not an absolute URL")]
    InvalidUrl(String),
    /// The messages name the setting that allows more: the fix is the tenant's to make.
    #[error(
        "only https URLs are reached (plain http where the tenant setting {setting} = true allows it)",
        setting = PRIVATE_ADDRESSES
    )]
    Scheme,
    #[error(
        "{host} resolves to {ip}, which is not a public address (the tenant setting {setting} = true allows it)",
        setting = PRIVATE_ADDRESSES
    )]
    Private { host: String, ip: IpAddr },
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("the server answered {0}")]
    Status(u16),
    #[error("the server redirects to {0}; give that URL instead")]
    Redirect(String),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Network(String),
}

/// Whether `ip` is an ordinary address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (RFC 6598), benchmarking (RFC 2544), IETF protocol assignments,
        // and the reserved 240/4.
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && c == 0)
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7), link-local (fe80::/10), documentation (2001:db8::/32), and
        // NAT64 (64:ff9b::/96, which reaches IPv4 addresses unchecked).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

/// What to send.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// A GET asking for these media types.
    Get { accept: &'a str },
    /// A POST of an `application/x-www-form-urlencoded` body.
    PostForm(&'a [(&'a str, &'a str)]),
}

/// Fetches `url` under `policy`.
pub async fn fetch(url: &str, policy: &Policy) -> Result<Vec<u8>, FetchError> {
    send(url, Request::Get { accept: "*/*" }, policy).await
}

/// Sends `request` to `url` under `policy` and returns the body of a 2xx answer.
pub async fn send(url: &str, request: Request<'_>, policy: &Policy) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(policy.timeout, send_unbounded(url, request, policy))
        .await
        .map_err(|_| FetchError::Timeout(policy.timeout))?
}

async fn send_unbounded(
    url: &str,
    request: Request<'_>,
    policy: &Policy,
) -> Result<Vec<u8>, FetchError> {
    let parsed = url::Url::parse(url).map_err(|_| FetchError::InvalidUrl(url.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_private => {}
        _ => return Err(FetchError::Scheme),
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| FetchError::InvalidUrl(url.to_string()))?
        .to_string();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| FetchError::InvalidUrl(url.to_string()))?;
    let addrs: Vec<SocketAddr> = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        _ => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| FetchError::Resolve(host.clone()))?
            .collect(),
    };
    // Every answer is checked, not just the first: the connection must not fall back to one that
    // was never vetted.
    if !policy.allow_private
        && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
    {
        return Err(FetchError::Private { host, ip: bad.ip() });
    }
    let Some(addr) = addrs.first().copied() else {
        return Err(FetchError::Resolve(host));
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, addr)
        .connect_timeout(policy.timeout)
        .user_agent(concat!("sesame/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Network(e.to_string()))?;
    let builder = match request {
        Request::Get { accept } => client.get(parsed).header(reqwest::header::ACCEPT, accept),
        Request::PostForm(form) => client.post(parsed).form(form),
    };
    let mut response = builder
        .send()
        .await
        .map_err(|e| FetchError::Network(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_redirection() {
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("another address")
            .to_string();
        return Err(FetchError::Redirect(to));
    }
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > policy.max_bytes as u64)
    {
        return Err(FetchError::TooLarge(policy.max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Network(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > policy.max_bytes {
            return Err(FetchError::TooLarge(policy.max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn private_addresses_and_plain_http_need_the_tenants_consent() {
        let strict = Policy {
            max_bytes: 1024,
            timeout: Duration::from_secs(2),
            allow_private: false,
        };
        for (url, why) in [
            ("http://127.0.0.1:9/metadata", "http"),
            ("https://127.0.0.1:9/metadata", "loopback"),
            ("https://[::1]:9/metadata", "loopback v6"),
            ("https://169.254.169.254/latest", "link-local"),
            ("https://localhost:9/metadata", "a name for loopback"),
            ("ftp://example.com/x", "scheme"),
            ("not a url", "url"),
        ] {
            assert!(fetch(url, &strict).await.is_err(), "{why}");
        }
        let err = fetch("https://127.0.0.1:9/", &strict).await.unwrap_err();
        assert!(matches!(err, FetchError::Private { .. }), "{err}");
    }
}
