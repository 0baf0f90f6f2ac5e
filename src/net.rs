//! Which URLs fhirgate will call or send a browser to: `https`, or plain
//! `http` only to a loopback host (RFC 8252 §7.3; local development and
//! tests). One rule for subscription endpoints, UDAP redirect and logo
//! URIs, and Tiered OAuth identity providers.

use std::net::IpAddr;

/// Whether `u` names a loopback host (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Whether `raw` is an absolute `https` URL with a host, or `http` to a
/// loopback host.
pub fn https_or_loopback(raw: &str) -> bool {
    url::Url::parse(raw).is_ok_and(|u| match u.scheme() {
        "https" => u.host().is_some(),
        "http" => is_loopback(&u),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert!(https_or_loopback("https://app.example.org/cb"));
        assert!(https_or_loopback("http://127.0.0.1:8080/cb"));
        assert!(https_or_loopback("http://localhost/cb"));
        assert!(https_or_loopback("http://[::1]:9/cb"));
        assert!(!https_or_loopback("http://app.example.org/cb"));
        assert!(!https_or_loopback("http://10.0.0.1/cb"));
        assert!(!https_or_loopback("ftp://127.0.0.1/cb"));
        assert!(!https_or_loopback("/relative"));
    }
}
