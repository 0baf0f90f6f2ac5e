//! `GET /readyz`: whether this replica can serve FHIR requests now. Three
//! cheap checks, run concurrently, each bounded by
//! `[observability] ready_timeout_ms`:
//!
//! - `upstream`: a read of a resource that does not exist
//!   (`Patient/fhirgate-readiness-probe`) through the configured upstream;
//!   an answer of 2xx, 404 or 410 proves it answers (the embedded store
//!   queried its database, an HTTP upstream its server with our
//!   credentials); 401, 403, 5xx or a timeout do not;
//! - `state`: the facade's state store answers `SELECT 1`;
//! - `ledger`: the audit ledger's head can be read.
//!
//! 200 `{"status": "ready", "checks": {...}}` when all pass, else 503
//! `{"status": "unavailable", "failed": [names], "checks": {...}}`. The
//! body names what failed and how (`ok`, `timeout`, `status 502`,
//! `error`), never upstream addresses or error text: those go to the log.
//! Not audited and not authenticated (as `/healthz`): probes call it.

use std::{future::Future, time::Duration};

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Map, Value};

use crate::{
    fhir::{FhirRequest, Interaction},
    AppState,
};

/// The id the upstream probe reads (a valid FHIR id no record should have).
pub const PROBE_ID: &str = "fhirgate-readiness-probe";

/// The result of one check: `ok`, or why not.
pub type Check = Result<(), String>;

/// `GET /readyz`.
pub async fn readyz(State(app): State<AppState>) -> Response {
    let limit = Duration::from_millis(app.config.observability.ready_timeout_ms.max(1));
    let (upstream, state, ledger) = tokio::join!(
        bounded(limit, upstream(&app)),
        bounded(limit, async {
            app.state.ping().await.map_err(|e| {
                tracing::warn!(error = %e, "readiness: state store check failed");
                "error".to_owned()
            })
        }),
        bounded(limit, async {
            app.audit.ledger().size().await.map(|_| ()).map_err(|e| {
                tracing::warn!(error = %e, "readiness: ledger check failed");
                "error".to_owned()
            })
        }),
    );
    let (status, body) = report(&[("upstream", upstream), ("state", state), ("ledger", ledger)]);
    let mut res = (status, Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The status and body for the checks' results.
pub fn report(checks: &[(&str, Check)]) -> (StatusCode, Value) {
    let mut out = Map::new();
    let mut failed = Vec::new();
    for (name, check) in checks {
        match check {
            Ok(()) => out.insert((*name).to_owned(), json!("ok")),
            Err(why) => {
                failed.push(*name);
                out.insert((*name).to_owned(), json!(why))
            }
        };
    }
    if failed.is_empty() {
        (StatusCode::OK, json!({"status": "ready", "checks": out}))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "failed": failed, "checks": out}),
        )
    }
}

async fn bounded(limit: Duration, check: impl Future<Output = Check>) -> Check {
    tokio::time::timeout(limit, check)
        .await
        .unwrap_or_else(|_| Err("timeout".to_owned()))
}

/// The upstream check (see the module docs).
async fn upstream(app: &AppState) -> Check {
    let mut req = FhirRequest::new(Interaction::Read);
    req.resource_type = Some("Patient".to_owned());
    req.id = Some(PROBE_ID.to_owned());
    let ctx = app.request_context("readiness-probe");
    match app.upstream.execute(&req, &ctx).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.status.as_u16(), 404 | 410) => Ok(()),
        Err(e) => {
            tracing::warn!(
                upstream = app.upstream.name(),
                status = e.status.as_u16(),
                detail = e.internal.as_deref().unwrap_or(e.message.as_str()),
                "readiness: upstream check failed"
            );
            Err(format!("status {}", e.status.as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failed_check_makes_503_naming_it() {
        let (s, body) = report(&[("upstream", Err("status 502".into())), ("state", Ok(()))]);
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["failed"], json!(["upstream"]));
        assert_eq!(body["checks"]["upstream"], "status 502");
        assert_eq!(body["checks"]["state"], "ok");
        let (s, body) = report(&[("state", Ok(()))]);
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body["status"], "ready");
    }
}
