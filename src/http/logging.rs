//! Structured logs and request ids. Every request gets a fresh id (a client's
//! `X-Request-Id` is never trusted, so audit records cannot be spoofed); it is
//! on the request's tracing span, in the `X-Request-Id` response header and
//! in OperationOutcomes for server errors. Access lines carry method, path,
//! route template (`observability::Route`), status and latency, never query
//! strings, bodies or tokens (they may hold PHI).

use std::time::Instant;

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// The header carrying the request id.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Installs the global tracing subscriber (JSON or pretty, to stderr).
pub fn init(cfg: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&cfg.level)
        .map_err(|e| anyhow::anyhow!("config key `log.level`: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}

/// Middleware: assigns the request id, logs one access line, sets the header.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    let route = res
        .extensions()
        .get::<crate::observability::Route>()
        .map_or("", |r| r.as_str());
    span.in_scope(|| {
        tracing::info!(%method, %path, %route, status, micros = started.elapsed().as_micros() as u64, "request");
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    res
}
