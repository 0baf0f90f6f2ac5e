//! Router assembly and cross-cutting layers. Handlers are thin: extract,
//! call the pipeline, render. Layer order (outermost first, see axum's
//! middleware docs "Ordering"): request id + access log, then routes.

use axum::{routing::get, Router};

use crate::AppState;

pub mod fhir;
pub mod logging;
pub mod render;

/// The whole HTTP application over `state` (tested with `oneshot`, no socket).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .route("/fhir", axum::routing::any(fhir::fhir_root))
        .route("/fhir/", axum::routing::any(fhir::fhir_root))
        .route("/fhir/{*path}", axum::routing::any(fhir::fhir_path))
        .with_state(state)
        .layer(axum::middleware::from_fn(logging::request_id))
}

async fn root() -> &'static str {
    "fhirgate: FHIR R4 facade. FHIR base: /fhir (CapabilityStatement at /fhir/metadata)\n"
}

async fn healthz() -> &'static str {
    "ok"
}
