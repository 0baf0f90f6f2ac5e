//! HTTP upstream: any FHIR R4 server (Azure Health Data Services, HAPI,
//! Medplum, …) behind the facade, at a base URL fixed in config.
//!
//! One `execute` is: build the request from the typed `FhirRequest`
//! ([`request`], allowlisted headers only), add credentials ([`auth`]),
//! send it on a pooled rustls client with connect and overall timeouts,
//! then map the answer ([`response`]) with every upstream URL moved onto the
//! facade's base ([`rewrite`]). Failures follow R4 http.html §3.1.0.4 and
//! the facade's rule that upstream detail stays in the log: connection errors
//! and garbage are 502, timeouts 504.

use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use super::{RequestContext, Upstream};
use crate::{
    config::UpstreamConfig,
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse},
};

pub(crate) mod auth;
mod request;
mod response;
mod rewrite;
#[cfg(test)]
mod tests;

pub use rewrite::UpstreamBase;

/// A FHIR server reached over HTTP.
pub struct HttpUpstream {
    /// Pooled HTTP client: rustls, timeouts from config, no redirects (a
    /// redirect would let the upstream send us, and our token, elsewhere).
    client: reqwest::Client,
    /// The upstream FHIR base; every request URL is built below it.
    base: Url,
    /// The base taken apart, to recognise the upstream's URLs in answers.
    rewrite: UpstreamBase,
    /// Credentials for the upstream.
    auth: auth::Auth,
}

impl HttpUpstream {
    /// Builds the client from configuration (`upstream.url` must be set).
    pub fn new(cfg: &UpstreamConfig) -> anyhow::Result<Self> {
        let base = cfg
            .url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("upstream.url is required for the HTTP upstream"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            anyhow::bail!("upstream.url must be an http(s) URL with a host");
        }
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs.max(1)))
            .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
            .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fhirgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let auth = auth::Auth::from_config(cfg, &client)?;
        Ok(Self {
            client,
            rewrite: UpstreamBase::new(&base),
            base,
            auth,
        })
    }
}

#[async_trait]
impl Upstream for HttpUpstream {
    async fn execute(&self, req: &FhirRequest, ctx: &RequestContext) -> FhirResult<FhirResponse> {
        let out = request::build(&self.base, req, &ctx.request_id)?;
        let mut builder = self
            .client
            .request(out.method, out.url)
            .headers(out.headers);
        if let Some(authorization) = self.auth.header().await? {
            builder = builder.header(reqwest::header::AUTHORIZATION, authorization);
        }
        builder = match out.body {
            Some(request::Body::Json(bytes)) => builder.body(bytes),
            Some(request::Body::Form(form)) => builder.body(form),
            None => builder,
        };
        let answer = builder.send().await.map_err(transport_error)?;
        let status = answer.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            // The token may have been revoked early: fetch a fresh one next time.
            self.auth.invalidate().await;
        }
        let headers = answer.headers().clone();
        let body = read_capped(answer).await?;
        let mapped = response::map(status, &headers, &body, &self.rewrite, &ctx.base);
        if let Err(e) = &mapped {
            if e.status.is_server_error() {
                tracing::warn!(
                    request_id = %ctx.request_id,
                    upstream_status = status.as_u16(),
                    detail = e.internal.as_deref().unwrap_or(""),
                    "upstream failure"
                );
            }
        }
        mapped
    }

    fn name(&self) -> &'static str {
        "http"
    }
}

/// Largest upstream answer accepted (a bigger one is a 502, not an out-of-memory).
const MAX_UPSTREAM_BODY: usize = 256 * 1024 * 1024;

/// Reads the whole answer body, refusing more than [`MAX_UPSTREAM_BODY`].
async fn read_capped(mut answer: reqwest::Response) -> FhirResult<Vec<u8>> {
    let too_big = || FhirError::bad_gateway("upstream answer exceeds the size limit");
    if answer
        .content_length()
        .is_some_and(|n| n > MAX_UPSTREAM_BODY as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_UPSTREAM_BODY {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A failed exchange: timeouts are 504, everything else (refused, reset, TLS,
/// truncated body) 502. The detail, which names the upstream, is log-only.
fn transport_error(e: reqwest::Error) -> FhirError {
    // `without_url` keeps the upstream address out of even the internal text.
    let e = e.without_url();
    if e.is_timeout() {
        FhirError::gateway_timeout(format!("upstream timed out: {e}"))
    } else if e.is_connect() {
        FhirError::bad_gateway(format!("cannot connect to upstream: {e}"))
    } else {
        FhirError::bad_gateway(format!("upstream exchange failed: {e}"))
    }
}
