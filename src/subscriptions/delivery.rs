//! The rest-hook channel (Subscriptions R5 Backport IG, "Channels":
//! rest-hook): one HTTP POST of a notification Bundle to the subscriber's
//! endpoint with `Content-Type: application/fhir+json` and the
//! subscription's configured headers. Redirects are not followed (a
//! subscriber cannot bounce the payload elsewhere); a 2xx answer is
//! success, anything else (including a timeout) is failure.

use std::{sync::OnceLock, time::Duration};

use axum::http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::{guard, model::FHIR_JSON};

/// Where and how to POST.
#[derive(Debug, Clone)]
pub struct Target {
    /// The endpoint (already validated: https, or http to loopback).
    pub endpoint: url::Url,
    /// `channel.header`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `[subscriptions] allow_private_endpoints`: internal addresses may be
    /// posted to (see `guard`).
    pub allow_private: bool,
}

/// One shared client per address policy: connection reuse, no redirects,
/// no cookies; unless private endpoints are allowed, names resolve to
/// public addresses only ([`guard::PublicOnly`]).
fn client(allow_private: bool) -> Result<&'static reqwest::Client, String> {
    static GUARDED: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    static OPEN: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let build = move || {
        let b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fhirgate/", env!("CARGO_PKG_VERSION")));
        let b = if allow_private {
            b
        } else {
            b.dns_resolver(std::sync::Arc::new(guard::PublicOnly))
        };
        b.build().map_err(|e| format!("http client: {e}"))
    };
    let cell = if allow_private { &OPEN } else { &GUARDED };
    cell.get_or_init(build).as_ref().map_err(Clone::clone)
}

/// POSTs `body` once; `Err` says why it failed (for the subscription's
/// `error`, never containing the headers' values).
pub async fn post(target: &Target, body: &Value, timeout: Duration) -> Result<(), String> {
    let literal = match target.endpoint.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(|ip| !guard::literal_allowed(ip, target.allow_private)) {
        return Err(
            "the endpoint's address is not public (private, link-local or reserved); \
             an operator may allow it with [subscriptions] allow_private_endpoints"
                .into(),
        );
    }
    let bytes = serde_json::to_vec(body).map_err(|e| format!("encoding: {e}"))?;
    let mut req = client(target.allow_private)?
        .post(target.endpoint.clone())
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
        .body(bytes);
    for (n, v) in &target.headers {
        req = req.header(n.clone(), v.clone());
    }
    match req.send().await {
        Ok(res) if res.status().is_success() => Ok(()),
        Ok(res) => Err(format!(
            "the endpoint answered HTTP {}",
            res.status().as_u16()
        )),
        Err(e) if e.is_timeout() => Err(format!(
            "the endpoint did not answer within {} s",
            timeout.as_secs()
        )),
        Err(e) if e.is_connect() => Err(
            "the endpoint could not be reached (or its name resolves to no public address)".into(),
        ),
        Err(_) => Err("the notification could not be delivered".into()),
    }
}

/// POSTs with retries: `attempts` tries, waiting `delay`, `2·delay`, … in
/// between. The last failure's reason on total failure.
pub async fn post_with_retries(
    target: &Target,
    body: &Value,
    timeout: Duration,
    attempts: u32,
    delay: Duration,
) -> Result<(), String> {
    let mut wait = delay;
    let mut last = String::from("no attempt made");
    for n in 0..attempts.max(1) {
        if n > 0 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        match post(target, body, timeout).await {
            Ok(()) => return Ok(()),
            Err(why) => last = why,
        }
    }
    Err(last)
}
