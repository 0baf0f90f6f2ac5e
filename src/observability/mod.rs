//! Observability (issue 10 item 3): Prometheus metrics at `GET /metrics`,
//! readiness at `GET /readyz` (liveness stays `GET /healthz`), and the
//! route template that access logs and metrics share. Sits outside the
//! FHIR pipeline: [`track`] is a layer around every route (inside the
//! request-id layer), the other instruments are single calls at the
//! consent judge (`pipeline::consent::judge::record`), the ledger writer's
//! group commit and the [`upstream::Timed`] wrapper `AppState::open`
//! puts around the upstream. OpenTelemetry traces ([`otel`]): spans of the
//! request, its pipeline stages and the upstream call, exported over
//! OTLP/HTTP when `otlp_endpoint` is set, off by default.
//!
//! Who may read `/metrics` (`[observability] metrics`): `public`
//! (default, as Prometheus scrapers expect: the exposition carries no PHI
//! and no ids, see [`metrics`]), `admin` (the admin API's rule: an
//! administrator's session or token, or an auditor's
//! `system/AuditEvent.rs` token), or `off` (404). Neither endpoint is
//! audited: probes and scrapers would fill the ledger.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use serde::Deserialize;

use crate::{bulk::jobs::status, state::StateStore, AppState};

pub mod log_sink;
pub mod metrics;
pub mod otel;
pub mod ready;
pub mod route;
pub mod upstream;

pub use route::Route;
pub use upstream::Timed;

/// `[observability]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Who may read `/metrics` (see the module docs).
    #[serde(default)]
    pub metrics: MetricsAccess,
    /// How long each readiness check may take before it counts as failed.
    #[serde(default = "default_ready_timeout_ms")]
    pub ready_timeout_ms: u64,
    /// OTLP/HTTP collector base URL, e.g. `http://collector:4318` (traces
    /// go to `{base}/v1/traces` as protobuf). Unset or empty: no traces
    /// are exported (`FHIRGATE_OTLP_ENDPOINT`). See [`otel`].
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded, 0 to 1 (default 1); a trace continued
    /// from a caller's `traceparent` follows the caller's sampled flag.
    #[serde(default = "default_otlp_sample_ratio")]
    pub otlp_sample_ratio: f64,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            metrics: MetricsAccess::default(),
            ready_timeout_ms: default_ready_timeout_ms(),
            otlp_endpoint: None,
            otlp_sample_ratio: default_otlp_sample_ratio(),
        }
    }
}

impl ObservabilityConfig {
    /// The OTLP endpoint when traces are on.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        self.otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }

    /// Checks the OTLP keys: (dotted key, message) of the first bad one.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if let Some(e) = self.otlp_endpoint() {
            let ok = url::Url::parse(e).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if !ok {
                return Err((
                    "observability.otlp_endpoint",
                    "must be an http(s) URL such as http://collector:4318",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.otlp_sample_ratio) {
            return Err(("observability.otlp_sample_ratio", "must be between 0 and 1"));
        }
        Ok(())
    }
}

fn default_ready_timeout_ms() -> u64 {
    2000
}

fn default_otlp_sample_ratio() -> f64 {
    1.0
}

/// Access to `/metrics`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone who can reach the listener.
    #[default]
    Public,
    /// Administrators and auditors, as the admin API.
    Admin,
    /// Not served.
    Off,
}

/// `/metrics` and `/readyz` (merged by `http::app`, not audited).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics_get))
        .route("/readyz", get(ready::readyz))
}

/// Layer: counts and times every request by method, route template and
/// status (time to the response head, not to the end of a streamed
/// body), and leaves the [`Route`] in the response extensions for the
/// access log.
pub async fn track(req: Request, next: Next) -> Response {
    let method = metrics::method_label(req.method());
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let route = Route::of(matched, req.uri().path());
    let started = Instant::now();
    let mut res = next.run(req).await;
    metrics::registry().http_request(method, &route, res.status().as_u16(), started.elapsed());
    res.extensions_mut().insert(route);
    res
}

/// `GET /metrics`: the exposition, after the access check.
async fn metrics_get(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match app.config.observability.metrics {
        MetricsAccess::Public => {}
        MetricsAccess::Off => return StatusCode::NOT_FOUND.into_response(),
        MetricsAccess::Admin => {
            if let Err(e) = crate::http::admin_api::caller(&app, &headers).await {
                return e.into_response();
            }
        }
    }
    let gauges = metrics::Gauges {
        ledger_entries: app.audit.ledger().size().await.ok(),
        bulk_jobs: bulk_jobs(&app.state).await,
    };
    let body = metrics::registry().render(&gauges);
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Bulk jobs per state, every state listed (zero included); `None` when
/// the store cannot be read.
async fn bulk_jobs(store: &StateStore) -> Option<Vec<(&'static str, u64)>> {
    const STATES: [&str; 5] = [
        status::QUEUED,
        status::RUNNING,
        status::COMPLETE,
        status::FAILED,
        status::DELETED,
    ];
    let sql = "SELECT status, COUNT(*) FROM bulk_job GROUP BY status";
    let rows: Result<Vec<(String, i64)>, sqlx::Error> =
        crate::state::on_pool!(store, |p| sqlx::query_as(sql).fetch_all(p).await);
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: bulk job counts unavailable");
            return None;
        }
    };
    Some(
        STATES
            .iter()
            .map(|s| {
                let n = rows.iter().find(|(st, _)| st == s).map_or(0, |(_, n)| *n);
                (*s, n.max(0) as u64)
            })
            .collect(),
    )
}
