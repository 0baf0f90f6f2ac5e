//! Da Vinci PAS `Claim/$submit` and `Claim/$inquire` (issue 7, first
//! slice): auto-approve / auto-deny / pend / needs-documentation paths,
//! one failing example per validation rule, `$inquire` scoping, reviewer
//! decisions through `prior_auth::decide`, updates and cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pas.rs"]
mod pas;

use axum::http::{Method, StatusCode};
use common::{TestApp, TestResponse};
use fhirgate::prior_auth::decide::{decide, Decision};
use pas::{request, CPT};
use serde_json::{json, Value};

const X12_306: &str = "https://codesystem.x12.org/005010/306";
const REVIEW_ACTION: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction";
const CLAIM: &str = "Bundle.entry[0].resource.ofType(Claim)";

/// The matching PAS Inquiry Request Bundle.
fn inquiry(claim_id: &str) -> Value {
    let mut b = request(claim_id, "00000", 1, "normal");
    let claim = &mut b["entry"][0]["resource"];
    claim["meta"] = json!({"profile": ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim-inquiry"]});
    b
}

async fn token(t: &TestApp, client: &str, scope: &str) -> String {
    t.token_as(client, scope, None, None, None, None).await
}

async fn call(t: &TestApp, tok: &str, op: &str, body: &Value) -> TestResponse {
    t.request_with(
        tok,
        Method::POST,
        &format!("/fhir/Claim/{op}"),
        &[],
        Some(body),
    )
    .await
}

async fn submit(t: &TestApp, tok: &str, body: &Value) -> TestResponse {
    call(t, tok, "$submit", body).await
}

fn claim_response(r: &TestResponse) -> &Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["resourceType"], "Bundle", "{}", r.text());
    let cr = &r.json["entry"][0]["resource"];
    assert_eq!(cr["resourceType"], "ClaimResponse", "{}", r.text());
    cr
}

/// The item's reviewAction extension.
fn review(cr: &Value, item: usize) -> &Value {
    let ext = &cr["item"][item]["adjudication"][0]["extension"];
    ext.as_array()
        .and_then(|es| es.iter().find(|e| e["url"] == REVIEW_ACTION))
        .unwrap_or_else(|| panic!("no reviewAction in {cr}"))
}

fn action_code(cr: &Value, item: usize) -> String {
    let ra = review(cr, item);
    let code = ra["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["url"]
                .as_str()
                .unwrap()
                .ends_with("extension-reviewActionCode")
        })
        .unwrap();
    assert_eq!(code["valueCodeableConcept"]["coding"][0]["system"], X12_306);
    code["valueCodeableConcept"]["coding"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn sub(cr: &Value, item: usize, url: &str) -> Option<Value> {
    review(cr, item)["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == url)
        .cloned()
}

async fn app() -> (TestApp, String) {
    let t = TestApp::new().await;
    let tok = token(&t, "clinic-a", "system/Claim.crs").await;
    (t, tok)
}

#[tokio::test]
async fn auto_approval_certifies_with_an_authorization_number_and_period() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("ap-1", "97110", 6, "normal")).await;
    let cr = claim_response(&r);
    assert_eq!(action_code(cr, 0), "A1");
    assert_eq!(cr["item"][0]["itemSequence"], 1);
    assert_eq!(cr["outcome"], "complete");
    assert_eq!(cr["use"], "preauthorization");
    assert!(cr["preAuthRef"].as_str().unwrap().starts_with("PA-"));
    assert!(cr["preAuthPeriod"]["start"].is_string());
    assert!(cr["preAuthPeriod"]["end"].is_string());
    assert_eq!(cr["request"]["identifier"]["value"], "ap-1");
    assert_eq!(
        cr["request"]["identifier"]["system"],
        "urn:trnorg:9012345678"
    );
    assert_eq!(cr["patient"]["reference"], "Patient/SubscriberExample");
    assert!(cr["error"].is_null());
    // Same code over the quantity limit: pended instead.
    let r = submit(&t, &tok, &request("ap-2", "97110", 30, "normal")).await;
    assert_eq!(action_code(claim_response(&r), 0), "A4");
    // The response Bundle carries the patient, insurer and requestor.
    assert_eq!(r.json["type"], "collection");
    let types: Vec<&str> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["ClaimResponse", "Patient", "Organization", "Organization"]
    );
}

#[tokio::test]
async fn auto_denial_is_not_certified_with_an_x12_reason() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("dn-1", "0042T", 1, "normal")).await;
    let cr = claim_response(&r);
    assert_eq!(action_code(cr, 0), "A3");
    let reason = sub(cr, 0, "reasonCode").expect("reason code");
    assert_eq!(reason["valueCodeableConcept"]["coding"][0]["code"], "0U");
    assert!(cr["preAuthRef"].is_null());
    assert_eq!(cr["disposition"], "Not certified");
}

#[tokio::test]
async fn unknown_and_review_codes_are_pended() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("pd-1", "27447", 1, "normal")).await;
    let cr = claim_response(&r);
    assert_eq!(action_code(cr, 0), "A4");
    assert_eq!(cr["outcome"], "queued");
    let r = submit(&t, &tok, &request("pd-2", "99999", 1, "normal")).await;
    assert_eq!(action_code(claim_response(&r), 0), "A4");
}

#[tokio::test]
async fn no_auth_codes_need_no_action() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("na-1", "99213", 1, "normal")).await;
    assert_eq!(action_code(claim_response(&r), 0), "NA");
}

#[tokio::test]
async fn documentation_is_asked_for_until_a_questionnaire_response_is_attached() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("doc-1", "73722", 1, "normal")).await;
    let cr = claim_response(&r).clone();
    assert_eq!(action_code(&cr, 0), "A4");
    let note = cr["processNote"][0]["text"].as_str().unwrap();
    assert!(note.contains("Questionnaire/imaging-knee"), "{note}");
    // Resubmitted (same Claim identifier) with the documentation: still
    // pended, now for a reviewer, and no longer asking.
    let mut b = request("doc-1", "73722", 1, "normal");
    b["entry"].as_array_mut().unwrap().push(json!({
        "fullUrl": "http://example.org/fhir/QuestionnaireResponse/qr1",
        "resource": {"resourceType": "QuestionnaireResponse", "id": "qr1", "status": "completed",
                     "questionnaire": "http://example.org/fhir/Questionnaire/imaging-knee|1.0"}
    }));
    let r = submit(&t, &tok, &b).await;
    let cr2 = claim_response(&r);
    assert_eq!(action_code(cr2, 0), "A4");
    assert!(cr2["processNote"].is_null(), "{cr2}");
    assert_eq!(cr2["id"], cr["id"], "an update keeps the request");
}

/// Submits a broken request; asserts 400, no ClaimResponse, and an issue
/// naming `path`.
async fn refused(t: &TestApp, tok: &str, body: &Value, path: &str) {
    let r = submit(t, tok, body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome", "{}", r.text());
    assert!(!r.text().contains("ClaimResponse"));
    let found = r.json["issue"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["expression"][0] == path);
    assert!(found, "no issue at {path}: {}", r.text());
}

#[tokio::test]
async fn each_validation_rule_names_the_element_path() {
    let (t, tok) = app().await;
    let ok = request("v-1", "97110", 1, "normal");
    let mut b;

    b = ok.clone();
    b["entry"].as_array_mut().unwrap().swap(0, 1);
    refused(&t, &tok, &b, "Bundle.entry[0].resource").await;

    b = ok.clone();
    b["type"] = json!("transaction");
    refused(&t, &tok, &b, "Bundle.type").await;

    b = ok.clone();
    b.as_object_mut().unwrap().remove("identifier");
    refused(&t, &tok, &b, "Bundle.identifier").await;

    b = ok.clone();
    b["entry"][3].as_object_mut().unwrap().remove("fullUrl");
    refused(&t, &tok, &b, "Bundle.entry[3].fullUrl").await;

    b = ok.clone();
    b["entry"][0]["resource"]["insurance"][0]
        .as_object_mut()
        .unwrap()
        .remove("coverage");
    refused(&t, &tok, &b, &format!("{CLAIM}.insurance[0].coverage")).await;

    b = ok.clone();
    b["entry"][0]["resource"]["insurance"][0]["coverage"]["reference"] = json!("Coverage/missing");
    refused(&t, &tok, &b, &format!("{CLAIM}.insurance[0].coverage")).await;

    b = ok.clone();
    let dup = b["entry"][1].clone();
    b["entry"].as_array_mut().unwrap().push(dup);
    refused(&t, &tok, &b, &format!("{CLAIM}.patient")).await;
    refused(&t, &tok, &b, "Bundle.entry[6].fullUrl").await;

    b = ok.clone();
    b["entry"][0]["resource"]["use"] = json!("claim");
    refused(&t, &tok, &b, &format!("{CLAIM}.use")).await;

    b = ok.clone();
    b["entry"][0]["resource"]["priority"]["coding"][0]["code"] = json!("whenever");
    refused(&t, &tok, &b, &format!("{CLAIM}.priority")).await;

    b = ok.clone();
    b["entry"][0]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("insurer");
    refused(&t, &tok, &b, &format!("{CLAIM}.insurer")).await;

    b = ok.clone();
    b["entry"][0]["resource"]["identifier"] =
        json!([{"system": "s", "value": "1"}, {"system": "s", "value": "2"}]);
    refused(&t, &tok, &b, &format!("{CLAIM}.identifier")).await;

    b = ok.clone();
    b["entry"][0]["resource"]["item"][0]
        .as_object_mut()
        .unwrap()
        .remove("productOrService");
    refused(&t, &tok, &b, &format!("{CLAIM}.item[0].productOrService")).await;

    b = ok.clone();
    b["entry"][1]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("gender");
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[1].resource.ofType(Patient).gender",
    )
    .await;

    b = ok.clone();
    b["entry"][1]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("identifier");
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[1].resource.ofType(Patient).identifier",
    )
    .await;

    b = ok.clone();
    b["entry"][2]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[2].resource.ofType(Organization).name",
    )
    .await;

    b = ok.clone();
    b["entry"][2]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("identifier");
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[2].resource.ofType(Organization).identifier",
    )
    .await;

    b = ok.clone();
    b["entry"][3]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("name");
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[3].resource.ofType(Organization).name",
    )
    .await;

    b = ok.clone();
    b["entry"][4]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("payor");
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[4].resource.ofType(Coverage).payor",
    )
    .await;

    b = ok.clone();
    b["entry"][4]["resource"]["status"] = json!("bogus");
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[4].resource.ofType(Coverage).status",
    )
    .await;

    b = ok.clone();
    b["entry"][5]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("code");
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[5].resource.ofType(ServiceRequest).code",
    )
    .await;

    b = ok.clone();
    b["entry"][5]["resource"] = json!({"resourceType": "MedicationRequest", "id": "ReferralRequest",
        "status": "active", "intent": "order", "subject": {"reference": "Patient/SubscriberExample"}});
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[5].resource.ofType(MedicationRequest).medicationCodeableConcept",
    )
    .await;

    b = ok.clone();
    b["entry"][5]["resource"] = json!({"resourceType": "DeviceRequest", "id": "ReferralRequest",
        "status": "active", "intent": "order", "codeCodeableConcept": {"text": "bed"}});
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[5].resource.ofType(DeviceRequest).subject",
    )
    .await;

    // A PractitionerRole requestor must name its practitioner.
    b = ok.clone();
    b["entry"][0]["resource"]["provider"]["reference"] = json!("PractitionerRole/pr1");
    b["entry"].as_array_mut().unwrap().push(
        json!({"fullUrl": "http://example.org/fhir/PractitionerRole/pr1",
        "resource": {"resourceType": "PractitionerRole", "id": "pr1"}}),
    );
    refused(
        &t,
        &tok,
        &b,
        "Bundle.entry[6].resource.ofType(PractitionerRole).practitioner",
    )
    .await;

    // Not a Bundle at all.
    let r = submit(&t, &tok, &json!({"resourceType": "Claim"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The valid request passes, also wrapped in Parameters.
    let r = submit(
        &t,
        &tok,
        &json!({"resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": ok}]}),
    )
    .await;
    claim_response(&r);
}

#[tokio::test]
async fn scopes_are_required() {
    let (t, _) = app().await;
    let reader = token(&t, "clinic-a", "system/Claim.rs").await;
    let r = submit(&t, &reader, &request("s-1", "97110", 1, "normal")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    let writer = token(&t, "clinic-a", "system/Claim.c").await;
    let r = call(&t, &writer, "$inquire", &inquiry("s-1")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let other = token(&t, "clinic-a", "system/Patient.cruds").await;
    let r = submit(&t, &other, &request("s-1", "97110", 1, "normal")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn inquire_returns_the_current_decision_to_its_submitter_only() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("iq-1", "0042T", 1, "normal")).await;
    let id = claim_response(&r)["id"].clone();
    let r = call(&t, &tok, "$inquire", &inquiry("iq-1")).await;
    let cr = claim_response(&r);
    assert_eq!(cr["id"], id);
    assert_eq!(action_code(cr, 0), "A3");
    // Another client with the same identifiers finds nothing.
    let other = token(&t, "clinic-b", "system/Claim.crs").await;
    let r = call(&t, &other, "$inquire", &inquiry("iq-1")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(!r.text().contains("ClaimResponse"));
    // A different member identifier does not match either.
    let mut q = inquiry("iq-1");
    q["entry"][1]["resource"]["identifier"][0]["value"] = json!("999");
    let r = call(&t, &tok, "$inquire", &q).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // An inquiry is validated like a submission.
    let mut q = inquiry("iq-1");
    q["entry"][0]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("provider");
    let r = call(&t, &tok, "$inquire", &q).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text().contains(&format!("{CLAIM}.provider")),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn a_reviewer_decision_shows_up_in_inquire() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("rv-1", "27447", 1, "stat")).await;
    let id = claim_response(&r)["id"].as_str().unwrap().to_owned();
    let rec = t.app.state.pa_get(&id).await.unwrap().unwrap();
    assert_eq!(
        rec.deadline_ms - rec.received_ms,
        72 * 3_600_000,
        "expedited"
    );
    assert!(!rec.overdue(rec.received_ms));
    assert!(rec.overdue(rec.deadline_ms + 1));
    // A denial without a reason is refused; an unknown request is 404.
    let e = decide(&t.app, &id, "rev-1", 1, Decision::Deny, None)
        .await
        .unwrap_err();
    assert_eq!(e.status, StatusCode::CONFLICT);
    let e = decide(&t.app, "nope", "rev-1", 1, Decision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    let rec = decide(&t.app, &id, "rev-1", 1, Decision::Approve, None)
        .await
        .unwrap();
    assert!(rec.decided_ms.is_some());
    assert_eq!(rec.items[0].reviewer.as_deref(), Some("rev-1"));
    let r = call(&t, &tok, "$inquire", &inquiry("rv-1")).await;
    let cr = claim_response(&r);
    assert_eq!(action_code(cr, 0), "A1");
    assert!(cr["preAuthRef"].is_string());
    assert_eq!(cr["outcome"], "complete");
    // Decided items cannot be decided again.
    let e = decide(&t.app, &id, "rev-2", 1, Decision::Deny, Some("0U"))
        .await
        .unwrap_err();
    assert_eq!(e.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn standard_requests_get_seven_days() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("st-1", "27447", 1, "normal")).await;
    let id = claim_response(&r)["id"].as_str().unwrap().to_owned();
    let rec = t.app.state.pa_get(&id).await.unwrap().unwrap();
    assert_eq!(rec.deadline_ms - rec.received_ms, 7 * 24 * 3_600_000);
    assert_eq!(rec.client_id, "clinic-a");
}

#[tokio::test]
async fn updates_and_cancellation_follow_the_state_machine() {
    let (t, tok) = app().await;
    // Pended, then updated into an approval.
    let r = submit(&t, &tok, &request("up-1", "97110", 30, "normal")).await;
    assert_eq!(action_code(claim_response(&r), 0), "A4");
    let r = submit(&t, &tok, &request("up-1", "97110", 5, "normal")).await;
    assert_eq!(action_code(claim_response(&r), 0), "A1");
    // A decided request cannot be updated: a business rejection.
    let r = submit(&t, &tok, &request("up-1", "97110", 30, "normal")).await;
    let cr = claim_response(&r);
    assert_eq!(cr["outcome"], "error");
    assert!(cr["error"][0]["code"]["text"]
        .as_str()
        .unwrap()
        .contains("already decided"));
    // ... but it can be cancelled, once.
    let mut c = request("up-1", "97110", 5, "normal");
    c["entry"][0]["resource"]["status"] = json!("cancelled");
    let r = submit(&t, &tok, &c).await;
    let cr = claim_response(&r);
    assert_eq!(cr["disposition"], "Cancelled by the requestor");
    let r = submit(&t, &tok, &c).await;
    assert_eq!(claim_response(&r)["outcome"], "error");
    // Cancelling what was never submitted is a business rejection too.
    let mut c = request("never", "97110", 5, "normal");
    c["entry"][0]["resource"]["status"] = json!("cancelled");
    let r = submit(&t, &tok, &c).await;
    assert_eq!(claim_response(&r)["outcome"], "error");
}

#[tokio::test]
async fn the_rules_file_is_read_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(
        &path,
        format!("default_action = \"auto-deny\"\n[[rule]]\nsystem = \"{CPT}\"\ncode = \"12345\"\naction = \"auto-approve\"\n"),
    )
    .unwrap();
    let t = TestApp::with_config(&format!(
        "[prior_auth]\nrules_file = \"{}\"\nauth_number_prefix = \"ACME\"\n",
        path.display()
    ))
    .await;
    let tok = token(&t, "clinic-a", "system/Claim.crs").await;
    let r = submit(&t, &tok, &request("cf-1", "12345", 1, "normal")).await;
    let cr = claim_response(&r);
    assert!(cr["preAuthRef"].as_str().unwrap().starts_with("ACME-"));
    let r = submit(&t, &tok, &request("cf-2", "97110", 1, "normal")).await;
    assert_eq!(action_code(claim_response(&r), 0), "A3");
}

#[tokio::test]
async fn submissions_and_inquiries_are_audited() {
    let (t, tok) = app().await;
    let r = submit(&t, &tok, &request("au-1", "97110", 1, "normal")).await;
    let id = claim_response(&r)["id"].as_str().unwrap().to_owned();
    let r = call(&t, &tok, "$inquire", &inquiry("au-1")).await;
    claim_response(&r);
    let auditor = token(&t, "auditor", "system/AuditEvent.rs").await;
    let r = t
        .request_with(
            &auditor,
            Method::GET,
            "/fhir/AuditEvent?agent=clinic-a&_count=100",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    let mentions = text.matches(&format!("ClaimResponse/{id}")).count();
    assert!(mentions >= 2, "{text}");
    assert!(text.contains("Patient/SubscriberExample"), "{text}");
}
