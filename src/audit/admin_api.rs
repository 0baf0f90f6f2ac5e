//! The admin API of the audit trail (JSON, bearer token of a user with the
//! `admin` role; no cookies, so no CSRF):
//!
//! - `POST /admin/api/ledger/erase-patient` with `{"patient": "Patient/<id>"}`:
//!   destroys the patient's payload key (GDPR erasure; the chain still
//!   verifies, the payloads become unreadable) and answers the
//!   [`super::Erasure`] (pseudonym, keys destroyed, seq of the erasure's
//!   own ledger entry). Same as `fhirgate ledger erase-patient`.
//!
//! Ledger administration is a sensitive operation (issue 11): with `[mfa]
//! stepup = "required"` the admin's token must come from a sign-in with a
//! second factor no older than `stepup_max_age_seconds`, else 401 with
//! RFC 9470's `insufficient_user_authentication` challenge (`acr_values`,
//! `max_age`) and the same in the JSON body.
//!
//! These routes are audited like every non-FHIR route.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::{json, Value};

use crate::{http::logging::RequestId, pipeline::authenticate::authenticate, AppState};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/api/ledger/erase-patient", post(erase_patient))
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"error": message})))
}

async fn erase_patient(
    State(app): State<AppState>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match authenticate(&app, authorization).await {
        Ok(c) => c,
        Err(e) => return error(e.status, &e.message).into_response(),
    };
    if caller.role.as_deref() != Some("admin") {
        return error(
            StatusCode::FORBIDDEN,
            "erasing audit payloads needs a user with the admin role",
        )
        .into_response();
    }
    let now = crate::oauth::now();
    if let Err(short) = crate::assurance::for_sensitive(&app.config, &caller.assurance, now) {
        let mut r = (StatusCode::UNAUTHORIZED, Json(short.json())).into_response();
        let challenge = format!("Bearer realm=\"fhirgate\", {}", short.challenge());
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return r;
    }
    let patient = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["patient"].as_str().map(str::to_owned))
        .filter(|p| {
            let id = p.strip_prefix("Patient/").unwrap_or(p);
            crate::fhir::types::is_valid_id(id)
        });
    let Some(patient) = patient else {
        return error(
            StatusCode::BAD_REQUEST,
            "send {\"patient\": \"Patient/<id>\"}",
        )
        .into_response();
    };
    let id = request_id.map(|r| r.0 .0.clone()).unwrap_or_default();
    let by = caller
        .fhir_user
        .clone()
        .unwrap_or_else(|| format!("client:{}", caller.client_id));
    match app.audit.erase_patient(&patient, &id, &by).await {
        Ok(e) => (StatusCode::OK, Json(json!(e))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "erasure failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the erasure could not be completed",
            )
            .into_response()
        }
    }
}
