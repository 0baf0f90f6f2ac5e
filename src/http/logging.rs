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
use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt, EnvFilter, Layer};

use crate::{
    config::{LogConfig, LogFormat},
    observability::{
        log_sink,
        otel::{self, Otel},
    },
};

/// The header carrying the request id.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Installs the global tracing subscriber (JSON or pretty, to stderr
/// through [`log_sink`], which drops and counts what stderr refuses),
/// with the OpenTelemetry exporter's layer when `otel` is given.
pub fn init(cfg: &LogConfig, otel: Option<&Otel>) -> anyhow::Result<()> {
    use tracing_subscriber::util::SubscriberInitExt;
    // A second init (tests) keeps the first subscriber.
    let _ = dispatch(cfg, otel, log_sink::stderr())?.try_init();
    Ok(())
}

/// The subscriber [`init`] installs, writing log lines to `writer`: the
/// log lines filtered by `log.level`, never showing the trace spans
/// (`otel::TARGET`); with `otel`, those spans also go to the exporter.
/// A write `writer` fails is not reported on stderr (tracing-subscriber's
/// `log_internal_errors`, which panics when stderr fails too).
pub fn dispatch<W>(
    cfg: &LogConfig,
    otel: Option<&Otel>,
    writer: W,
) -> anyhow::Result<tracing::Dispatch>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&cfg.level)
        .map_err(|e| anyhow::anyhow!("config key `log.level`: {e}"))?
        .add_directive(
            otel::LOG_DIRECTIVE
                .parse()
                .map_err(|e| anyhow::anyhow!("log filter: {e}"))?,
        );
    let Some(otel) = otel else {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .log_internal_errors(false)
            .with_writer(writer);
        return Ok(match cfg.format {
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .finish()
                .into(),
            LogFormat::Pretty => builder.finish().into(),
        });
    };
    // Per-layer filters: the log level does not limit the trace spans.
    let logs = tracing_subscriber::fmt::layer()
        .log_internal_errors(false)
        .with_writer(writer);
    let logs = match cfg.format {
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => logs.with_filter(filter).boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(logs).with(otel.layer());
    Ok(subscriber.into())
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
    // The trace's server span (disabled unless traces are exported).
    let label = crate::observability::metrics::method_label(&method);
    let server = otel::server_span(label, &id);
    otel::continue_from(&server, req.headers());
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let mut res = next
        .run(req)
        .instrument(span.clone())
        .instrument(server.clone())
        .await;
    let status = res.status().as_u16();
    let route = res
        .extensions()
        .get::<crate::observability::Route>()
        .map_or("", |r| r.as_str());
    otel::finish_server(&server, label, route, status);
    span.in_scope(|| {
        tracing::info!(%method, %path, %route, status, micros = started.elapsed().as_micros() as u64, "request");
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    res
}
