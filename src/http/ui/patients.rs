//! The FHIR look-ups the pages make (patient picker, launcher): searches and
//! reads through the configured upstream, turned into the `ui` crate's rows.
//! These are the server's own staff-facing look-ups on behalf of a signed-in
//! user, not client requests, so they do not pass the token pipeline.

use axum::http::StatusCode;
use serde_json::Value;

use super::UiError;
use crate::{
    fhir::{is_valid_id, FhirRequest, Interaction, Reference},
    AppState,
};

/// Patients listed per picker page.
pub const PICKER_COUNT: &str = "50";

fn search(resource_type: &str, params: Vec<(String, String)>) -> FhirRequest {
    let mut r = FhirRequest::new(Interaction::SearchType);
    r.resource_type = Some(resource_type.to_owned());
    r.params = params;
    r
}

fn entries(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] != "outcome" && e["search"]["mode"] != "include")
        .map(|e| &e["resource"])
}

/// Patients by name (`q`, optional), sorted by family name, at most 50.
/// The error is a sentence for the page (the detail is logged).
pub async fn search_patients(
    app: &AppState,
    request_id: &str,
    q: &str,
) -> Result<Vec<ui::PatientRow>, String> {
    let mut params = vec![
        ("_count".to_owned(), PICKER_COUNT.to_owned()),
        ("_sort".to_owned(), "family".to_owned()),
    ];
    if !q.trim().is_empty() {
        params.push(("name".to_owned(), q.trim().to_owned()));
    }
    let req = search("Patient", params);
    match app
        .upstream
        .execute(&req, &app.request_context(request_id))
        .await
    {
        Ok(res) => Ok(res
            .body
            .as_ref()
            .map(|b| entries(b).map(patient_row).collect())
            .unwrap_or_default()),
        Err(e) => {
            tracing::warn!(error = %e, "ui patient search failed");
            Err(
                "The patient list could not be loaded. Try again, or search by another name."
                    .into(),
            )
        }
    }
}

/// Reads one Patient; `Ok(None)` when the id is malformed, unknown or deleted.
pub async fn read_patient(
    app: &AppState,
    request_id: &str,
    id: &str,
) -> Result<Option<ui::PatientRow>, UiError> {
    Ok(read(app, request_id, "Patient", id)
        .await?
        .map(|v| patient_row(&v)))
}

/// Reads one resource; `Ok(None)` when the id is malformed, unknown or deleted.
pub async fn read(
    app: &AppState,
    request_id: &str,
    resource_type: &str,
    id: &str,
) -> Result<Option<Value>, UiError> {
    if !is_valid_id(id) {
        return Ok(None);
    }
    let mut req = FhirRequest::new(Interaction::Read);
    req.resource_type = Some(resource_type.to_owned());
    req.id = Some(id.to_owned());
    match app
        .upstream
        .execute(&req, &app.request_context(request_id))
        .await
    {
        Ok(res) => Ok(res.body),
        Err(e) if e.status == StatusCode::NOT_FOUND || e.status == StatusCode::GONE => Ok(None),
        Err(e) => Err(UiError::internal(e)),
    }
}

/// The patient's encounters, newest first, at most 50.
pub async fn encounters(
    app: &AppState,
    request_id: &str,
    patient_id: &str,
) -> Result<Vec<ui::EncounterRow>, String> {
    let req = search(
        "Encounter",
        vec![
            ("patient".to_owned(), format!("Patient/{patient_id}")),
            ("_count".to_owned(), PICKER_COUNT.to_owned()),
            ("_sort".to_owned(), "-date".to_owned()),
        ],
    );
    match app
        .upstream
        .execute(&req, &app.request_context(request_id))
        .await
    {
        Ok(res) => Ok(res
            .body
            .as_ref()
            .map(|b| entries(b).map(encounter_row).collect())
            .unwrap_or_default()),
        Err(e) => {
            tracing::warn!(error = %e, "ui encounter search failed");
            Err("The encounters could not be loaded; you can still launch without one.".into())
        }
    }
}

/// Whether `encounter` (a resource) is about `patient_id`.
pub fn encounter_is_of(encounter: &Value, patient_id: &str) -> bool {
    encounter["subject"]["reference"]
        .as_str()
        .and_then(|r| Reference::parse(r, None))
        .is_some_and(|r| r.resource_type == "Patient" && r.id == patient_id)
}

/// A Patient resource as a picker row.
pub fn patient_row(p: &Value) -> ui::PatientRow {
    ui::PatientRow {
        id: text(&p["id"]),
        name: human_name(p),
        birth_date: text(&p["birthDate"]),
        gender: text(&p["gender"]),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// "Family, Given Given" from the first `official` (else first) name.
fn human_name(p: &Value) -> String {
    let names = p["name"].as_array().map(Vec::as_slice).unwrap_or_default();
    let name = names
        .iter()
        .find(|n| n["use"] == "official")
        .or_else(|| names.first());
    let Some(n) = name else {
        return "(no name recorded)".to_owned();
    };
    if let Some(t) = n["text"].as_str().filter(|t| !t.is_empty()) {
        return t.to_owned();
    }
    let given: Vec<&str> = n["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match (n["family"].as_str(), given.is_empty()) {
        (Some(f), false) => format!("{f}, {}", given.join(" ")),
        (Some(f), true) => f.to_owned(),
        (None, false) => given.join(" "),
        (None, true) => "(no name recorded)".to_owned(),
    }
}

/// An Encounter as a launcher row.
pub fn encounter_row(e: &Value) -> ui::EncounterRow {
    let date = e["period"]["start"].as_str().unwrap_or_default();
    let kind = e["type"][0]["text"]
        .as_str()
        .or_else(|| e["type"][0]["coding"][0]["display"].as_str())
        .or_else(|| e["class"]["display"].as_str())
        .or_else(|| e["class"]["code"].as_str())
        .unwrap_or("Encounter");
    ui::EncounterRow {
        id: text(&e["id"]),
        date: date.get(..10).unwrap_or(date).to_owned(),
        kind: kind.to_owned(),
        status: text(&e["status"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_read_names_and_dates() {
        let p = json!({"id": "p1", "birthDate": "1980-02-03", "gender": "female",
            "name": [{"use": "nickname", "given": ["Patty"]}, {"use": "official", "family": "Jones", "given": ["Pat", "A"]}]});
        let r = patient_row(&p);
        assert_eq!(r.name, "Jones, Pat A");
        assert_eq!(
            (r.birth_date.as_str(), r.gender.as_str()),
            ("1980-02-03", "female")
        );
        assert_eq!(patient_row(&json!({"id": "x"})).name, "(no name recorded)");
        let e = json!({"id": "e1", "status": "finished", "period": {"start": "2024-05-06T10:00:00Z"},
            "type": [{"coding": [{"display": "Office visit"}]}]});
        let r = encounter_row(&e);
        assert_eq!(
            (r.date.as_str(), r.kind.as_str()),
            ("2024-05-06", "Office visit")
        );
    }

    #[test]
    fn encounter_subject_is_compared_as_a_reference() {
        let e = json!({"subject": {"reference": "Patient/123"}});
        assert!(encounter_is_of(&e, "123"));
        assert!(!encounter_is_of(&e, "12"));
        assert!(!encounter_is_of(
            &json!({"subject": {"reference": "Group/123"}}),
            "123"
        ));
    }
}
