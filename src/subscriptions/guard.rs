//! Where notifications may be sent: a subscriber names its endpoint, so an
//! unchecked one would let any subscribing client make fhirgate POST to
//! internal hosts (server-side request forgery). Unless `[subscriptions]
//! allow_private_endpoints` is set, an endpoint must reach a public
//! address: a literal IP is checked before the POST ([`literal_allowed`]),
//! a host name is resolved by [`PublicOnly`], which hands the connector
//! only public addresses (so a name re-pointed at an internal address
//! between the check and the connection cannot slip through). Loopback
//! stays reachable by the literal addresses and the name `localhost`, for
//! local subscribers (plain http is only allowed to loopback, see
//! `channel`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
}

/// Whether a literal-IP endpoint host may be posted to: loopback, or a
/// public address, or anything when private endpoints are allowed.
pub fn literal_allowed(ip: IpAddr, allow_private: bool) -> bool {
    allow_private || ip.is_loopback() || is_public(ip)
}

/// A resolver that keeps only public addresses (and loopback for the name
/// `localhost`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let local = host.eq_ignore_ascii_case("localhost");
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| is_public(a.ip()) || (local && a.ip().is_loopback()))
                .collect();
            if kept.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (set [subscriptions] allow_private_endpoints for internal subscribers)"
                )
                .into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_and_reserved_addresses_are_not_public() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(a)), "{a}");
        }
        for a in [
            "8.8.8.8",
            "140.82.112.3",
            "2606:4700::1111",
            "::ffff:8.8.4.4",
        ] {
            assert!(is_public(ip(a)), "{a}");
        }
    }

    #[test]
    fn literal_hosts_are_loopback_or_public_unless_private_is_allowed() {
        assert!(literal_allowed(ip("127.0.0.1"), false));
        assert!(literal_allowed(ip("8.8.8.8"), false));
        assert!(!literal_allowed(ip("169.254.169.254"), false));
        assert!(!literal_allowed(ip("10.0.0.5"), false));
        assert!(literal_allowed(ip("10.0.0.5"), true));
    }

    #[tokio::test]
    async fn the_resolver_keeps_loopback_for_localhost_only() {
        let r = PublicOnly;
        let name: Name = "localhost".parse().unwrap();
        let local = r.resolve(name).await;
        assert!(local.is_ok_and(|mut a| a.all(|s| s.ip().is_loopback())));
    }
}
