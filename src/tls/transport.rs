//! What a request's connection was: TLS to fhirgate, plain HTTP from a
//! trusted TLS-terminating proxy, or plain HTTP from someone else.
//! `shutdown::serve` puts one [`Transport`] on every request ([`layer`]);
//! the same layer refuses plain HTTP that came around the trusted proxies
//! (403), and the UI's security headers ask [`Transport::https`] whether
//! to send HSTS.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::config::Config;

/// The HSTS header value: one year, this host only (`includeSubDomains`
/// would bind every sibling host of the domain, which fhirgate cannot
/// speak for).
pub const HSTS: &str = "max-age=31536000";

/// How the listener's connections are secured; cheap to clone (one per
/// request).
#[derive(Debug, Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Every connection is TLS to fhirgate.
    tls: bool,
    /// `http.trusted_proxies`.
    proxies: Vec<ipnet::IpNet>,
    /// Plain HTTP is refused to peers that are neither loopback nor trusted.
    gate: bool,
}

impl Transport {
    /// The transport of a server with this configuration, TLS or not.
    pub fn new(config: &Config, tls: bool) -> Self {
        let proxies = config.http.proxies();
        let gate = !tls && !config.http.allow_plain_http && !proxies.is_empty();
        Self {
            inner: Arc::new(Inner { tls, proxies, gate }),
        }
    }

    /// Whether `peer` is one of the trusted proxies.
    pub fn trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.inner.proxies.iter().any(|n| n.contains(&peer))
    }

    /// Whether a request from `peer` is answered at all (module docs).
    pub fn admits(&self, peer: IpAddr) -> bool {
        !self.inner.gate || peer.to_canonical().is_loopback() || self.trusted(peer)
    }

    /// Whether the client reached fhirgate over TLS: this server's own, or a
    /// trusted proxy's that says so with `X-Forwarded-Proto: https`.
    pub fn secure(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
        if self.inner.tls {
            return true;
        }
        let forwarded_https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        forwarded_https && peer.is_some_and(|p| self.trusted(p))
    }

    /// [`Transport::secure`] for a request that went through [`layer`];
    /// `false` for one that did not (a router driven without a socket).
    pub fn https(req: &Request) -> bool {
        let Some(t) = req.extensions().get::<Transport>() else {
            return false;
        };
        t.secure(peer(req), req.headers())
    }
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Middleware (outermost): refuses plain HTTP from an untrusted peer when
/// trusted proxies are configured, and records the transport for the
/// layers and handlers inside.
pub async fn layer(State(t): State<Transport>, mut req: Request, next: Next) -> Response {
    if let Some(p) = peer(&req) {
        if !t.admits(p) {
            tracing::warn!(peer = %p, "plain HTTP from a peer that is not a trusted proxy: refused");
            return (
                StatusCode::FORBIDDEN,
                "plain HTTP is accepted only through the configured TLS-terminating proxy\n",
            )
                .into_response();
        }
    }
    req.extensions_mut().insert(t);
    next.run(req).await
}
