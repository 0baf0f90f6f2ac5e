//! `$validate` and validation of writes (issue 9, item 2): type and
//! instance level, the Parameters form, `mode` and `profile`, scopes,
//! and `[validation] on_write` in `warn` and `reject` (a refused write,
//! alone or in a transaction, leaves nothing behind).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use serde_json::{json, Value};

const PAS_CLAIM: &str = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim";

/// A Claim that breaks the PAS Claim profile: `use` is not
/// `preauthorization` and `patient` is missing.
fn bad_claim() -> Value {
    json!({"resourceType": "Claim", "status": "active", "use": "claim",
        "meta": {"profile": [PAS_CLAIM]}})
}

fn issues(o: &Value) -> Vec<(String, String, String)> {
    o["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["severity"].as_str().unwrap_or_default().to_owned(),
                i["code"].as_str().unwrap_or_default().to_owned(),
                i["expression"][0].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn has(o: &Value, severity: &str, code: &str, path: &str) -> bool {
    issues(o)
        .iter()
        .any(|(s, c, p)| s == severity && c == code && p == path)
}

#[tokio::test]
async fn type_level_validate_answers_an_operation_outcome() {
    let t = TestApp::new().await;
    // a plain resource: valid, one informational issue
    let r = t
        .post(
            "/fhir/Patient/$validate",
            &json!({"resourceType": "Patient", "gender": "female"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert_eq!(issues(&r.json).len(), 1);
    assert_eq!(r.json["issue"][0]["severity"], "information");
    // its claimed profile is checked: each violation by path, still 200
    let r = t.post("/fhir/Claim/$validate", &bad_claim()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(has(&r.json, "error", "value", "Claim.use"), "{}", r.text());
    assert!(
        has(&r.json, "error", "required", "Claim.patient"),
        "{}",
        r.text()
    );
    // the wrong type for the URL
    let r = t
        .post("/fhir/Patient/$validate", &json!({"resourceType": "Claim"}))
        .await;
    assert!(
        has(&r.json, "error", "structure", "Patient"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn the_parameters_form_carries_mode_and_profile() {
    let t = TestApp::new().await;
    let mut claim = bad_claim();
    claim.as_object_mut().unwrap().remove("meta");
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": claim},
        {"name": "mode", "valueCode": "profile"},
        {"name": "profile", "valueUri": PAS_CLAIM}]});
    let r = t.post("/fhir/Claim/$validate", &params).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(has(&r.json, "error", "value", "Claim.use"), "{}", r.text());
    // the same profile as a query parameter
    let r = t
        .post(
            &format!("/fhir/Claim/$validate?profile={PAS_CLAIM}"),
            &claim,
        )
        .await;
    assert!(
        has(&r.json, "error", "required", "Claim.patient"),
        "{}",
        r.text()
    );
    // an unknown profile named by the caller is an error
    let r = t
        .post(
            "/fhir/Claim/$validate?profile=http://example.org/StructureDefinition/nope",
            &claim,
        )
        .await;
    assert!(
        has(&r.json, "error", "not-supported", "Claim"),
        "{}",
        r.text()
    );
    // mode=create with an id: a warning only
    let r = t
        .post(
            "/fhir/Patient/$validate?mode=create",
            &json!({"resourceType": "Patient", "id": "x"}),
        )
        .await;
    assert!(
        has(&r.json, "warning", "value", "Patient.id"),
        "{}",
        r.text()
    );
    // malformed requests are 400
    for path in [
        "/fhir/Patient/$validate?mode=sideways",
        "/fhir/Patient/$validate?mode=profile",
        "/fhir/Patient/$validate?mode=update",
    ] {
        let r = t.post(path, &json!({"resourceType": "Patient"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
        assert_eq!(r.json["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn instance_level_validates_the_stored_resource() {
    let t = TestApp::new().await;
    let id = t
        .create(json!({"resourceType": "Patient", "gender": "male"}))
        .await;
    let r = t
        .request(
            Method::GET,
            &format!("/fhir/Patient/{id}/$validate"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["issue"][0]["severity"], "information");
    // as an update of that instance, the body's id must match
    let r = t
        .post(
            &format!("/fhir/Patient/{id}/$validate?mode=update"),
            &json!({"resourceType": "Patient", "id": "someone-else"}),
        )
        .await;
    assert!(has(&r.json, "error", "value", "Patient.id"), "{}", r.text());
    // an instance that does not exist
    let r = t
        .request(Method::GET, "/fhir/Patient/nobody/$validate", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

#[tokio::test]
async fn validate_needs_a_scope_on_the_type() {
    let t = TestApp::new().await;
    let token = t.token_for("system/Observation.rs", None, None, None).await;
    let body = json!({"resourceType": "Patient"});
    let r = t
        .request_with(
            &token,
            Method::POST,
            "/fhir/Patient/$validate",
            &[],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = t
        .request_with(
            &token,
            Method::POST,
            "/fhir/Observation/$validate",
            &[],
            Some(&json!({"resourceType": "Observation"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

async fn claims(t: &TestApp) -> usize {
    let r = t.get("/fhir/Claim").await;
    r.json["entry"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn reject_mode_refuses_invalid_writes_and_writes_nothing() {
    let t = TestApp::with_config("[validation]\non_write = \"reject\"\n").await;
    let r = t.post("/fhir/Claim", &bad_claim()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(has(&r.json, "error", "value", "Claim.use"), "{}", r.text());
    assert_eq!(claims(&t).await, 0);
    // a transaction with one bad entry: refused whole
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": bad_claim(), "request": {"method": "POST", "url": "Claim"}}]});
    let r = t.post("/fhir", &tx).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(claims(&t).await, 0);
    let patients = t.get("/fhir/Patient").await;
    assert!(patients.json["entry"].as_array().is_none_or(Vec::is_empty));
    // a valid write goes through
    t.create(json!({"resourceType": "Patient"})).await;
}

#[tokio::test]
async fn required_profiles_apply_to_every_write_of_their_type() {
    let t = TestApp::with_config(
        "[validation]\non_write = \"reject\"\nrequired_profiles = [\"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient\"]\n",
    )
    .await;
    // US Core Patient needs identifier, name and gender
    let r = t
        .post("/fhir/Patient", &json!({"resourceType": "Patient"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    for path in ["Patient.identifier", "Patient.name", "Patient.gender"] {
        assert!(
            has(&r.json, "error", "required", path),
            "{path}: {}",
            r.text()
        );
    }
    // other types are not concerned
    t.create(json!({"resourceType": "Organization", "name": "Clinic"}))
        .await;
    t.create(json!({"resourceType": "Patient", "gender": "female",
        "identifier": [{"system": "urn:mrn", "value": "1"}],
        "name": [{"family": "Jones", "given": ["Pat"]}]}))
        .await;
}

#[tokio::test]
async fn warn_mode_lets_invalid_writes_through_and_off_is_the_default() {
    let t = TestApp::with_config("[validation]\non_write = \"warn\"\n").await;
    let r = t.post("/fhir/Claim", &bad_claim()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let t = TestApp::new().await;
    let r = t.post("/fhir/Claim", &bad_claim()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[test]
fn an_unknown_required_profile_is_a_configuration_error() {
    let env = vec![
        ("FHIRGATE_DATA_DIR".to_owned(), "/nonexistent".to_owned()),
        ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
    ];
    let e = fhirgate::config::Config::from_parts(
        "[validation]\nrequired_profiles = [\"http://example.org/StructureDefinition/nope\"]\n",
        std::path::Path::new("fhirgate.toml"),
        &env,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("validation.required_profiles"),
        "{e}"
    );
}
