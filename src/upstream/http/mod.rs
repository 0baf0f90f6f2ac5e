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
//!
//! Faults: every exchange passes the circuit [`breaker`] (open: 503 with
//! `Retry-After` at once, the upstream untouched). Idempotent reads (read,
//! vread, search, history, metadata, and a Bundle whose every entry is one
//! of these) are tried again after a transient failure (connect
//! error, reset, upstream 502/503/504), at most `[upstream] read_retries`
//! times with a doubling backoff; timeouts are not retried (the client has
//! waited a whole timeout already), and writes, batches or transactions
//! with any other entry, and operations never are.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::Instrument;
use url::Url;

use super::{RequestContext, Upstream};
use crate::{
    config::UpstreamConfig,
    error::{FhirError, FhirResult, IssueType},
    fhir::{request::bundle_entry_request, FhirRequest, FhirResponse, Interaction},
    observability::otel,
};

pub(crate) mod auth;
mod breaker;
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
    /// Fails fast while the upstream is down (per process).
    breaker: breaker::Breaker,
    /// Extra tries of an idempotent read after a transient failure.
    read_retries: u32,
    /// Wait before the first retry (doubled for each next one).
    retry_backoff: Duration,
}

/// How one exchange went, for the breaker and the retry decision.
#[derive(Clone, Copy)]
enum Fault {
    /// The upstream answered (below 500, or too big: our limit, not its health).
    None,
    /// A failure worth one more try of an idempotent read.
    Transient,
    /// A failure (timeout, 500, …) that is not retried.
    Lasting,
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
            breaker: breaker::Breaker::new(
                cfg.breaker_failures,
                Duration::from_secs(cfg.breaker_cooldown_secs.max(1)),
            ),
            read_retries: cfg.read_retries,
            retry_backoff: Duration::from_millis(cfg.retry_backoff_ms),
        })
    }

    /// One exchange: the raw answer, or the transport failure and its kind.
    /// `span` is the exchange's client span; its trace context goes out
    /// as `traceparent`.
    async fn send(
        &self,
        out: &request::Outgoing,
        authorization: Option<reqwest::header::HeaderValue>,
        span: &tracing::Span,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), (FhirError, Fault)>
    {
        let mut headers = out.headers.clone();
        otel::inject(span, &mut headers);
        let mut builder = self
            .client
            .request(out.method.clone(), out.url.clone())
            .headers(headers);
        if let Some(authorization) = authorization {
            builder = builder.header(reqwest::header::AUTHORIZATION, authorization);
        }
        builder = match &out.body {
            Some(request::Body::Json(bytes)) => builder.body(bytes.clone()),
            Some(request::Body::Form(form)) => builder.body(form.clone()),
            None => builder,
        };
        let answer = builder.send().await.map_err(transport_fault)?;
        let status = answer.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            // The token may have been revoked early: fetch a fresh one next time.
            self.auth.invalidate().await;
        }
        let headers = answer.headers().clone();
        let body = read_capped(answer).await?;
        Ok((status, headers, body))
    }
}

/// Whether a failed exchange of `req` may be tried again: only reads, which
/// change nothing upstream. A batch or transaction is one when every entry,
/// classified as a request of its own, is.
fn idempotent(req: &FhirRequest) -> bool {
    match req.interaction {
        Interaction::Capabilities
        | Interaction::Read
        | Interaction::Vread
        | Interaction::SearchType
        | Interaction::SearchSystem
        | Interaction::SearchCompartment
        | Interaction::HistoryInstance
        | Interaction::HistoryType
        | Interaction::HistorySystem => true,
        Interaction::BatchOrTransaction => req
            .body
            .as_ref()
            .and_then(|b| b.get("entry"))
            .and_then(serde_json::Value::as_array)
            .is_some_and(|entries| {
                entries
                    .iter()
                    .all(|e| bundle_entry_request(e).is_ok_and(|(_, entry)| idempotent(&entry)))
            }),
        _ => false,
    }
}

/// The fast answer of an open breaker.
fn breaker_open(r: breaker::Rejected) -> FhirError {
    let mut e = FhirError::new(
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        IssueType::Transient,
        format!(
            "the upstream FHIR server is unavailable; retry after {} seconds",
            r.retry_after
        ),
    )
    .retry_after(r.retry_after);
    e.internal = Some("upstream circuit breaker open".into());
    e
}

#[async_trait]
impl Upstream for HttpUpstream {
    async fn execute(&self, req: &FhirRequest, ctx: &RequestContext) -> FhirResult<FhirResponse> {
        let out = request::build(&self.base, req, &ctx.request_id)?;
        // Whether the request may be sent again: decided at its first
        // transient failure only (a Bundle's entries are classified then).
        let mut retryable: Option<bool> = None;
        let mut tries = 0;
        let (status, headers, body) = loop {
            let authorization = self.auth.header().await?;
            let ticket = self.breaker.admit(Instant::now()).map_err(breaker_open)?;
            let span = otel::client_span(
                out.method.as_str(),
                self.base.host_str().unwrap_or_default(),
                self.base.port_or_known_default(),
                crate::observability::upstream::interaction(req.interaction),
                tries,
            );
            let sent = self
                .send(&out, authorization, &span)
                .instrument(span.clone())
                .await;
            otel::finish_client(
                &span,
                match &sent {
                    Ok((status, ..)) => Ok(status.as_u16()),
                    Err((e, _)) => Err(crate::observability::upstream::outcome(e.status.as_u16())),
                },
            );
            let fault = match &sent {
                Ok((status, ..)) => status_fault(*status),
                Err((_, fault)) => *fault,
            };
            let transient = matches!(fault, Fault::Transient);
            match fault {
                Fault::None => ticket.success(),
                Fault::Transient | Fault::Lasting => ticket.failure(Instant::now()),
            }
            if transient
                && tries < self.read_retries
                && *retryable.get_or_insert_with(|| idempotent(req))
            {
                let wait = self.retry_backoff.saturating_mul(1 << tries.min(16));
                tries += 1;
                tracing::info!(
                    request_id = %ctx.request_id,
                    attempt = tries + 1,
                    "transient upstream failure; retrying the read"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            break sent.map_err(|(e, _)| e)?;
        };
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

/// How an answer's status counts: 5xx is a failure, 502/503/504 a transient one.
fn status_fault(status: reqwest::StatusCode) -> Fault {
    match status.as_u16() {
        502..=504 => Fault::Transient,
        500..=599 => Fault::Lasting,
        _ => Fault::None,
    }
}

/// A transport failure and its kind: timeouts last, the rest (refused,
/// reset, truncated) is transient.
fn transport_fault(e: reqwest::Error) -> (FhirError, Fault) {
    let fault = if e.is_timeout() {
        Fault::Lasting
    } else {
        Fault::Transient
    };
    (transport_error(e), fault)
}

/// Reads the whole answer body, refusing more than [`MAX_UPSTREAM_BODY`].
async fn read_capped(mut answer: reqwest::Response) -> Result<Vec<u8>, (FhirError, Fault)> {
    let too_big = || {
        (
            FhirError::bad_gateway("upstream answer exceeds the size limit"),
            Fault::None,
        )
    };
    if answer
        .content_length()
        .is_some_and(|n| n > MAX_UPSTREAM_BODY as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(transport_fault)? {
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
