//! Router assembly and cross-cutting layers. Handlers are thin: extract,
//! call the pipeline, render. Layer order (outermost first, see axum's
//! middleware docs "Ordering"): request id + access log, then routes.

use axum::{routing::get, Router};
use tower_http::cors::{Any, CorsLayer};

use crate::AppState;

pub mod admin_api;
pub mod consent_api;
pub mod fhir;
pub mod logging;
pub mod oauth;
pub mod render;
pub mod ui;

/// The whole HTTP application over `state` (tested with `oneshot`, no socket).
pub fn app(state: AppState) -> Router {
    // The FHIR API and the OAuth endpoints are called from browser apps on
    // other origins (SMART apps); they authenticate with bearer tokens, never
    // cookies, so any origin may call them. The UI pages get no CORS.
    let api = Router::new()
        .route("/fhir", axum::routing::any(fhir::fhir_root))
        .route("/fhir/", axum::routing::any(fhir::fhir_root))
        .route("/fhir/{*path}", axum::routing::any(fhir::fhir_path))
        .merge(oauth::router().route_layer(audited(&state)))
        .merge(crate::crd::router().route_layer(audited(&state)))
        .merge(crate::udap::router().route_layer(audited(&state)))
        .layer(cors());
    Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::observability::router())
        .merge(api)
        .merge(crate::http::ui::router().route_layer(audited(&state)))
        .merge(admin_api::router().route_layer(audited(&state)))
        .merge(consent_api::router().route_layer(audited(&state)))
        .merge(crate::audit::admin_api::router().route_layer(audited(&state)))
        .with_state(state)
        .layer(axum::middleware::from_fn(crate::observability::track))
        .layer(axum::middleware::from_fn(logging::request_id))
}

/// The audit layer of non-FHIR routes (the FHIR handler audits itself,
/// with what the pipeline disclosed): one event per request, durable
/// before the response, else 503. `/healthz` is not audited.
fn audited(state: &AppState) -> crate::audit::middleware::AuditLayer {
    crate::audit::middleware::layer(state)
}

fn cors() -> CorsLayer {
    use axum::http::{header, HeaderName, Method};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            HeaderName::from_static("prefer"),
            HeaderName::from_static("if-none-exist"),
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LAST_MODIFIED,
            header::CONTENT_LOCATION,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

async fn healthz() -> &'static str {
    "ok"
}
