//! Da Vinci Coverage Requirements Discovery (CRD 2.0.1) over CDS Hooks 2.0
//! (issue 7, item 4): the payer tells the provider, while ordering,
//! whether an order is covered and needs prior authorization or
//! documentation.
//!
//! - [`services`]: the services (one per hook) and `GET /cds-services`.
//! - [`auth`]: the CDS client's signed JWT (ES384/RS384, allow-listed
//!   `iss`/`jku`, `aud` = service URL, `jti` replay cache).
//! - [`request`]: validation of a hook request.
//! - [`prefetch`]: prefetch as sent, else fetched through `fhirServer`.
//! - [`rules`]: the payer rules, PAS's (`prior_auth::rules`); [`config`]: `[crd]`.
//! - [`demo`]: the demo EHR as a trusted CDS client (`fhirgate crd demo-jwt`).
//! - [`coverage`]: the `ext-coverage-information` extension and
//!   coverage-assertion ids; [`store`]: replay cache and secret.
//! - [`answer`]: cards and systemActions; `pa-needed = satisfied` from the
//!   PAS store (`prior_auth::lookup`), `info-needed` when the answer depends
//!   on what the order does not say (`[crd] info_needed`, diagnosis rules).
//!
//! The routes are audited by the audit layer of the non-FHIR routes; the
//! handler attaches a [`RouteNote`] naming the CDS client, the patient and
//! what was answered.

pub mod answer;
pub mod auth;
pub mod config;
pub mod coverage;
pub mod demo;
pub mod prefetch;
pub mod request;
pub mod rules;
pub mod services;
pub mod store;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

use crate::{audit::RouteNote, AppState};

/// The CDS Hooks routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cds-services", get(discovery))
        .route("/cds-services/{id}", post(call))
}

/// `GET /cds-services` (public).
async fn discovery() -> Json<Value> {
    Json(services::discovery())
}

/// A JSON error answer with an audit note.
fn error(status: StatusCode, message: &str, note: RouteNote) -> Response {
    let body = json!({"error": status.canonical_reason().unwrap_or("error"), "message": message});
    let mut res = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    res.extensions_mut().insert(note);
    res
}

fn note(client: Option<&str>, patient: Option<&str>, what: String) -> RouteNote {
    RouteNote {
        client_id: client.map(str::to_owned),
        patient: patient.map(|p| format!("Patient/{p}")),
        what: Some(what),
        ..RouteNote::default()
    }
}

/// `POST /cds-services/{id}`.
async fn call(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(service) = services::find(&id) else {
        let n = note(None, None, "CRD call to an unknown service".into());
        return error(StatusCode::NOT_FOUND, "no such CDS service", n);
    };
    let cfg = &app.config.crd;
    let service_url = format!(
        "{}/cds-services/{}",
        app.config.public_url.as_str().trim_end_matches('/'),
        service.id
    );
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = crate::oauth::now();
    let client = match auth::authenticate(authz, &service_url, cfg, &app.state, now).await {
        Ok(c) => c,
        Err(auth::Refusal(why)) => {
            let n = note(None, None, format!("CRD {} refused: {why}", service.hook));
            return error(StatusCode::UNAUTHORIZED, &why, n);
        }
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            let n = note(
                Some(&client.iss),
                None,
                format!("CRD {}: body is not JSON", service.hook),
            );
            return error(StatusCode::BAD_REQUEST, "the request body is not JSON", n);
        }
    };
    let req = match request::validate(service, &parsed) {
        Ok(r) => r,
        Err(problems) => {
            let patient = parsed["context"]["patientId"].as_str();
            let why = problems.join("; ");
            let n = note(
                Some(&client.iss),
                patient,
                format!("CRD {} invalid: {why}", service.hook),
            );
            return error(StatusCode::BAD_REQUEST, &why, n);
        }
    };
    if let Some(server) = req.fhir_server.as_deref() {
        if !fhir_server_allowed(&app, server) {
            let why = "fhirServer is not a FHIR server this service may read from";
            let n = note(Some(&client.iss), req.patient_id(), format!("CRD {why}"));
            return error(StatusCode::BAD_REQUEST, why, n);
        }
    }
    let secret = match store::assertion_secret(&app.state).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "CRD assertion secret unavailable");
            let n = note(
                Some(&client.iss),
                req.patient_id(),
                "CRD state unavailable".into(),
            );
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "state store unavailable",
                n,
            );
        }
    };
    let rules = match crate::prior_auth::rules::Rules::load(&app.config.prior_auth) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "CRD: payer rules unavailable");
            let n = note(
                Some(&client.iss),
                req.patient_id(),
                "CRD payer rules unavailable".into(),
            );
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "payer rules unavailable",
                n,
            );
        }
    };
    let prefetched = prefetch::resolve(&req, &services::prefetch(service)).await;
    let dtr = cfg.dtr_launch_url.clone().unwrap_or_else(|| {
        format!(
            "{}/dtr/launch",
            app.config.public_url.as_str().trim_end_matches('/')
        )
    });
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let out = answer::answer(&answer::Inputs {
        service,
        req: &req,
        prefetch: &prefetched,
        rules: rules.as_ref(),
        info_rules: &cfg.info_needed,
        state: &app.state,
        secret: &secret,
        dtr_launch_url: &dtr,
        today: &today,
    })
    .await;
    let what = format!("CRD hookInstance {}: {}", req.hook_instance, out.summary);
    let mut res = Json(out.body).into_response();
    res.extensions_mut()
        .insert(note(Some(&client.iss), req.patient_id(), what));
    res
}

/// Whether prefetch may be read from `server` with the client's token:
/// fhirgate's own FHIR base, or a base listed in `[crd] fhir_servers`
/// (never an arbitrary URL a caller names).
fn fhir_server_allowed(app: &AppState, server: &str) -> bool {
    let norm = |u: &str| u.trim_end_matches('/').to_owned();
    let server = norm(server);
    server == norm(&app.config.fhir_base())
        || app
            .config
            .crd
            .fhir_servers
            .iter()
            .any(|s| norm(s) == server)
}
