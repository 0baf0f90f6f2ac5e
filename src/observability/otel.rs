//! OpenTelemetry traces (issue 10): one trace per request, exported over
//! OTLP/HTTP (protobuf) when `[observability] otlp_endpoint` is set
//! (`FHIRGATE_OTLP_ENDPOINT`), and nothing at all otherwise.
//!
//! The spans are ordinary `tracing` spans of target [`TARGET`]:
//! - the server span ([`server_span`], opened by the request-id layer):
//!   `{method} {route}` with `http.request.method`, `http.route` (the
//!   [`super::Route`] template, never the concrete path),
//!   `http.response.status_code` and `request_id`; it continues the trace
//!   of an incoming W3C `traceparent` ([`continue_from`]);
//! - one child span per pipeline stage ([`stage`]): `authenticate`,
//!   `authorize` (scope enforcement), `consent`, `upstream`, `filter`
//!   (post-filter), `ledger.append`;
//! - a client span per upstream HTTP exchange ([`client_span`]), whose
//!   context goes to the upstream in `traceparent` ([`inject`]).
//!
//! No span name or attribute carries PHI: no path, query, resource or
//! patient id, no token, no upstream URL beyond its host; only templates,
//! methods, statuses, interaction names and the request id. Log events
//! never become span events (the exporter's layer admits the spans of
//! [`TARGET`] only), and the logs never see these spans (the log layer
//! turns [`TARGET`] off), so the JSON log lines are the same with or
//! without tracing. With no endpoint the spans are disabled at their
//! call sites (`fhirgate::otel=off` in the log filter): no exporter, no
//! task, no cost beyond a disabled span.
//!
//! Export: `opentelemetry-otlp` on the reqwest client the rest of the
//! server uses, a batch processor on the tokio runtime, sampling
//! parent-based with `otlp_sample_ratio` for new traces. The exporter's
//! standard `OTEL_*` variables (headers, timeouts, batch sizes,
//! `OTEL_RESOURCE_ATTRIBUTES`) apply; `service.name` is `fhirgate`.
//! `serve` flushes what is queued on graceful shutdown ([`shutdown`]).

use std::sync::OnceLock;

use axum::http::HeaderMap;
use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    runtime,
    trace::{span_processor_with_async_runtime::BatchSpanProcessor, Sampler, SdkTracerProvider},
    Resource,
};
use tracing::{field::Empty, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{filter::Targets, registry::LookupSpan, Layer};

use super::ObservabilityConfig;

/// The `tracing` target of every span exported (and of no log event).
pub const TARGET: &str = "fhirgate::otel";

/// The log-filter directive that keeps [`TARGET`] out of the logs.
pub const LOG_DIRECTIVE: &str = "fhirgate::otel=off";

/// Where traces are posted below the configured base (OTLP/HTTP spec).
const TRACES_PATH: &str = "/v1/traces";

/// The tracer provider of a process (or a test) that exports traces.
#[derive(Clone, Debug)]
pub struct Otel {
    provider: SdkTracerProvider,
}

/// The one provider `serve` flushes on shutdown ([`install`]).
static INSTALLED: OnceLock<Otel> = OnceLock::new();

impl Otel {
    /// The exporter for `cfg`, or `None` when no endpoint is configured.
    /// Must run inside the tokio runtime (the batch task is spawned here).
    pub fn start(cfg: &ObservabilityConfig) -> anyhow::Result<Option<Self>> {
        let Some(base) = cfg.otlp_endpoint() else {
            return Ok(None);
        };
        let endpoint = traces_url(base);
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fhirgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_http_client(client)
            .build()
            .map_err(|e| anyhow::anyhow!("config key `observability.otlp_endpoint`: {e}"))?;
        let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
        let ratio = cfg.otlp_sample_ratio.clamp(0.0, 1.0);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name("fhirgate")
                    .with_attribute(opentelemetry::KeyValue::new(
                        "service.version",
                        env!("CARGO_PKG_VERSION"),
                    ))
                    .build(),
            )
            .build();
        Ok(Some(Self { provider }))
    }

    /// The layer that turns the spans of [`TARGET`] (and nothing else)
    /// into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let tracer = self.provider.tracer("fhirgate");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_tracked_inactivity(false)
            .with_filter(
                Targets::new()
                    .with_target(TARGET, tracing::Level::INFO)
                    .with_default(tracing::level_filters::LevelFilter::OFF),
            )
    }

    /// Exports everything ended so far (waits for the exporter's answer).
    pub async fn flush(&self) {
        let provider = self.provider.clone();
        // The SDK blocks on the batch task's answer: not on a runtime thread.
        match tokio::task::spawn_blocking(move || provider.force_flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "trace export flush failed"),
            Err(e) => tracing::warn!(error = %e, "trace export flush failed"),
        }
    }

    /// Flushes, then stops the exporter; later spans are dropped.
    pub async fn shutdown(&self) {
        let provider = self.provider.clone();
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "trace exporter shutdown failed"),
            Err(e) => tracing::warn!(error = %e, "trace exporter shutdown failed"),
        }
    }
}

/// Keeps `otel` for [`shutdown`] (the process-wide exporter; once).
pub fn install(otel: Otel) {
    let _ = INSTALLED.set(otel);
}

/// Graceful shutdown: flushes and stops the installed exporter, if any.
pub async fn shutdown() {
    if let Some(otel) = INSTALLED.get() {
        otel.shutdown().await;
    }
}

/// `{base}/v1/traces`, unless `base` already names that path.
fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

/// The server span of one request; route and status come at the end
/// ([`finish_server`]). `method` is a closed label (`metrics::method_label`).
pub fn server_span(method: &'static str, request_id: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "http.server",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = Empty,
        http.response.status_code = Empty,
        request_id = request_id,
    )
}

/// Continues the caller's trace when `headers` carry a valid W3C
/// `traceparent` (call before the span is first entered).
pub fn continue_from(span: &Span, headers: &HeaderMap) {
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Records the route template and the status on the server span.
pub fn finish_server(span: &Span, method: &'static str, route: &str, status: u16) {
    if span.is_disabled() {
        return;
    }
    // The span has started: its name changes through the OpenTelemetry API.
    span.context()
        .span()
        .update_name(format!("{method} {route}"));
    span.record("http.route", route);
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
}

/// A pipeline stage's span (`name`: a fixed stage name, see the module docs).
pub fn stage(name: &'static str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "stage",
        otel.name = name,
        fhirgate.stage = name,
        otel.status_code = Empty,
        error.type = Empty,
    )
}

/// Marks a stage span failed with a closed `kind` (an HTTP status class or
/// an outcome label, never a message).
pub fn fail(span: &Span, kind: &str) {
    if span.is_disabled() {
        return;
    }
    span.record("otel.status_code", "error");
    span.record("error.type", kind);
}

/// The client span of one upstream HTTP exchange: method, the upstream's
/// host and port (configuration, not request data), the FHIR interaction
/// and the try number; the status comes with [`finish_client`].
pub fn client_span(
    method: &str,
    host: &str,
    port: Option<u16>,
    interaction: &'static str,
    resend: u32,
) -> Span {
    let method = match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        _ => "_OTHER",
    };
    tracing::info_span!(
        target: TARGET,
        "upstream.http",
        otel.name = method,
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = method,
        http.response.status_code = Empty,
        http.request.resend_count = resend,
        server.address = host,
        server.port = port,
        fhir.interaction = interaction,
        error.type = Empty,
    )
}

/// Records the upstream's status (`Ok`) or a failed exchange (`Err`, a
/// closed kind such as `timeout`).
pub fn finish_client(span: &Span, outcome: Result<u16, &'static str>) {
    if span.is_disabled() {
        return;
    }
    match outcome {
        Ok(status) => {
            span.record("http.response.status_code", status);
            if status >= 500 {
                span.record("otel.status_code", "error");
                span.record("error.type", status);
            }
        }
        Err(kind) => {
            span.record("otel.status_code", "error");
            span.record("error.type", kind);
        }
    }
}

/// Puts `span`'s context into `headers` as W3C `traceparent` (and
/// `tracestate`), replacing any there.
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(&cx, &mut HeadersMut(headers));
}

/// Reads W3C trace context from request headers.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes W3C trace context into request headers.
struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(key.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
