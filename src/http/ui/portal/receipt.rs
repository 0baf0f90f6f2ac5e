//! Consent receipts (issue 11 item 3): what a patient keeps after granting
//! or revoking a consent in the portal. A receipt names the Consent version
//! written, the ledger entry that recorded the write (its sequence number)
//! and that entry's RFC 9162 inclusion proof (against the latest signed
//! checkpoint when one covers it, else the current tree), plus the step-up
//! factor of the session if one was fresh. The patient can check it later
//! against any newer checkpoint (`fhirgate ledger consistency`).
//!
//! Receipts are kept in the state store (`consent_receipts`, migration
//! 0019) by a random id, readable only by their patient: the portal shows
//! the latest after a change and `GET /portal/receipts/{id}` downloads it
//! as JSON. With `[mfa] receipt_webhook` set (https, or http on loopback),
//! each receipt is also POSTed there as JSON, for an operator's email or SMS
//! notifier; a failed delivery is logged and does not undo the change.

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use rand::RngCore;
use serde_json::{json, Value};

use super::{require_patient, session, UiError, PATH};
use crate::{audit::auditor::now_ms, AppState};

/// A receipt to issue.
pub struct Issue<'a> {
    /// `granted` or `revoked`.
    pub action: &'a str,
    /// `Patient/<id>`.
    pub patient: &'a str,
    /// `Consent/<id>/_history/<vid>` (or `Consent/<id>` if no version).
    pub consent: &'a str,
    /// The ledger entry recording the write.
    pub seq: u64,
    /// The session's fresh step-up factor, if any.
    pub step_up: Option<String>,
}

/// Builds, stores and (if configured) sends the receipt; returns its id.
pub async fn issue(app: &AppState, i: Issue<'_>) -> Result<String, UiError> {
    let (proof, checkpoint) = app
        .audit
        .ledger()
        .proof_against_latest(i.seq)
        .await
        .map_err(UiError::internal)?;
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let id = hex::encode(raw);
    let body = json!({
        "resourceType": "fhirgate-consent-receipt",
        "id": id,
        "action": i.action,
        "patient": i.patient,
        "consent": i.consent,
        "recorded": crate::fhir::now_instant(),
        "step_up": i.step_up,
        "ledger_seq": i.seq,
        "inclusion_proof": crate::audit::proof::proof_json(&proof, checkpoint.as_ref()),
    });
    let text = body.to_string();
    crate::state::on_pool!(&app.state, |p| {
        sqlx::query(
            "INSERT INTO consent_receipts (id, patient, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(i.patient)
        .bind(&text)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ())
    })
    .map_err(UiError::internal)?;
    if let Some(url) = app.config.mfa.receipt_webhook.clone() {
        tokio::spawn(deliver(url, body));
    }
    Ok(id)
}

/// POSTs the receipt to the webhook (best effort, logged).
async fn deliver(url: String, body: Value) {
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "consent receipt webhook: no HTTP client");
            return;
        }
    };
    match client.post(&url).json(&body).send().await {
        Ok(r) if r.status().is_success() => tracing::info!("consent receipt delivered"),
        Ok(r) => tracing::warn!(
            status = r.status().as_u16(),
            "consent receipt webhook refused"
        ),
        Err(e) => tracing::warn!(error = %e.without_url(), "consent receipt webhook unreachable"),
    }
}

/// The receipt `id` if it is `patient`'s.
pub async fn load(app: &AppState, id: &str, patient: &str) -> Result<Option<Value>, UiError> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let row: Option<(String,)> = crate::state::on_pool!(&app.state, |p| {
        sqlx::query_as("SELECT body FROM consent_receipts WHERE id = $1 AND patient = $2")
            .bind(id)
            .bind(patient)
            .fetch_optional(p)
            .await
    })
    .map_err(UiError::internal)?;
    Ok(row.and_then(|(b,)| serde_json::from_str(&b).ok()))
}

/// `GET /portal/receipts/{id}`: the receipt as a JSON download (own only).
pub async fn receipt_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    let patient_id = require_patient(&signed)?;
    if let Err(page) = crate::http::ui::assurance::gate_page(&app, &signed, PATH).await? {
        return Ok(page);
    }
    let Some(body) = load(&app, &id, &format!("Patient/{patient_id}")).await? else {
        return Err(UiError::NotFound(
            "You have no receipt with that id.".into(),
        ));
    };
    let mut res = (StatusCode::OK, body.to_string()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"consent-receipt-{id}.json\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
