//! Router assembly and cross-cutting layers. Handlers are thin: extract,
//! call the pipeline, render. Layer order (outermost first, see axum's
//! middleware docs "Ordering"): request id + access log, then routes.

use axum::{routing::get, Router};

use crate::AppState;

pub mod fhir;
pub mod logging;
pub mod oauth;
pub mod render;
pub mod ui;

/// The whole HTTP application over `state` (tested with `oneshot`, no socket).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/fhir", axum::routing::any(fhir::fhir_root))
        .route("/fhir/", axum::routing::any(fhir::fhir_root))
        .route("/fhir/{*path}", axum::routing::any(fhir::fhir_path))
        .merge(oauth::router())
        .merge(crate::http::ui::router())
        .with_state(state)
        .layer(axum::middleware::from_fn(logging::request_id))
}

async fn healthz() -> &'static str {
    "ok"
}
