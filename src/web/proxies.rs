//! The client's address behind load balancers: the peer of the connection, unless it is one of
//! `http.trusted_proxies`, in which case the `X-Forwarded-For` chain is read from the right and
//! the first address that is not a trusted proxy is the client. Rate limits, the audit log and
//! login alerts all key on it; without the setting every user behind a balancer would share its
//! address (and its limits), and trusting the header from anyone would let a caller choose.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// Addresses and networks (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`) whose connections
/// carry the client's address in `X-Forwarded-For`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses the configuration's list; the entry that is not an address or network, if any.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|e| parse_net(e.trim()).ok_or_else(|| e.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }

    /// The client's address for a connection from `peer` with these request headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| hop.trim().parse::<IpAddr>())
            .collect::<Result<_, _>>()
            // A chain with something unreadable in it is not believed at all.
            .unwrap_or_default();
        hops.iter()
            .rev()
            .find(|hop| !self.contains(**hop))
            .copied()
            .or_else(|| hops.first().copied())
            .unwrap_or(peer)
    }
}

/// The key an address is rate-limited under: an IPv4 address itself, an IPv6 address by its
/// /64, since one subscriber gets a whole /64 and could otherwise rotate through it.
pub fn rate_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| ip.to_string(), |v4| v4.to_string()),
        _ => ip.to_string(),
    }
}

fn parse_net(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?),
        None => {
            let a = entry.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn only_a_trusted_peer_s_header_is_read_from_the_right() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.7".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Directly from the internet: the header is the caller's to forge.
        assert_eq!(
            trusted.client(ip("203.0.113.9"), &headers("1.2.3.4")),
            ip("203.0.113.9")
        );
        // Through the balancer: the rightmost address it did not add itself.
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &headers("1.2.3.4, 198.51.100.5, 192.0.2.7")),
            ip("198.51.100.5")
        );
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &headers("garbage, 1.2.3.4")),
            ip("10.1.2.3"),
            "an unreadable chain is not believed"
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["not an address".into()]).is_err());
        let v6 = TrustedProxies::parse(&["2001:db8::/32".into()]).unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(
            TrustedProxies::parse(&["0.0.0.0/0".into()])
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
    }

    #[test]
    fn ipv6_addresses_are_limited_by_their_64() {
        assert_eq!(rate_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            rate_key("2001:db8:1:2:bbbb::9"),
            rate_key("2001:db8:1:2::5")
        );
        assert_eq!(rate_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(rate_key("::ffff:203.0.113.9"), "203.0.113.9");
    }
}
