//! Da Vinci DTR 2.0.1 (issue 7, item 5), driven over HTTP in process:
//! `$questionnaire-package` (contents, derivation from an order's code,
//! unknown questionnaire, missing coverage, scopes), `$next-question`
//! progression to completion, QuestionnaireResponse storage through the
//! facade, and PAS `$submit` documentation by a stored QuestionnaireResponse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pas.rs"]
mod pas;

use axum::http::{Method, StatusCode};
use base64::{engine::general_purpose::STANDARD, Engine};
use common::{TestApp, TestResponse};
use serde_json::{json, Value};

const KNEE: &str = "http://example.org/fhir/Questionnaire/imaging-knee|1.0";
const ADAPTIVE: &str = "http://example.org/fhir/Questionnaire/knee-arthroplasty-adaptive|1.0";
const DTR_SCOPE: &str = "user/Questionnaire.rs";

fn coverage(patient: &str) -> Value {
    json!({"name": "coverage", "resource": {
        "resourceType": "Coverage", "id": "cov1", "status": "active",
        "beneficiary": {"reference": format!("Patient/{patient}")},
        "payor": [{"reference": "Organization/payer1"}]
    }})
}

fn order(code: &str) -> Value {
    json!({"name": "order", "resource": {
        "resourceType": "ServiceRequest", "id": "sr1", "status": "draft", "intent": "order",
        "code": {"coding": [{"system": pas::CPT, "code": code}]},
        "subject": {"reference": "Patient/p1"}
    }})
}

fn questionnaire(canonical: &str) -> Value {
    json!({"name": "questionnaire", "valueCanonical": canonical})
}

fn params(parts: Vec<Value>) -> Value {
    json!({"resourceType": "Parameters", "parameter": parts})
}

async fn token(t: &TestApp, scope: &str, patient: Option<&str>) -> String {
    t.token_as("dtr-app", scope, patient, None, None, None)
        .await
}

async fn package_at(t: &TestApp, tok: &str, path: &str, body: &Value) -> TestResponse {
    t.request_with(tok, Method::POST, path, &[], Some(body))
        .await
}

async fn package(t: &TestApp, tok: &str, body: &Value) -> TestResponse {
    package_at(t, tok, "/fhir/Questionnaire/$questionnaire-package", body).await
}

/// The PackageBundle parts of a successful answer.
fn bundles(r: &TestResponse) -> Vec<Value> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["resourceType"], "Parameters", "{}", r.text());
    r.json["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "PackageBundle")
        .map(|p| p["resource"].clone())
        .collect()
}

fn outcome_part(r: &TestResponse) -> Option<Value> {
    r.json["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "operationOutcome")
        .map(|p| p["resource"].clone())
}

fn of_type<'a>(bundle: &'a Value, rtype: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == rtype)
        .collect()
}

fn decoded(library: &Value, content_type: &str) -> String {
    let c = library["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contentType"] == content_type)
        .unwrap_or_else(|| panic!("no {content_type} content"));
    String::from_utf8(STANDARD.decode(c["data"].as_str().unwrap()).unwrap()).unwrap()
}

fn outcome_text(r: &TestResponse) -> String {
    assert_eq!(r.json["resourceType"], "OperationOutcome", "{}", r.text());
    r.text()
}

#[tokio::test]
async fn a_package_holds_the_questionnaire_its_libraries_value_sets_and_a_draft_response() {
    let t = TestApp::new().await;
    let tok = token(&t, DTR_SCOPE, None).await;
    let body = params(vec![coverage("p1"), questionnaire(KNEE)]);
    for path in [
        "/fhir/Questionnaire/$questionnaire-package",
        "/fhir/$questionnaire-package",
    ] {
        let r = package_at(&t, &tok, path, &body).await;
        let bs = bundles(&r);
        assert_eq!(bs.len(), 1, "{path}");
        let b = &bs[0];
        assert_eq!(b["type"], "collection");
        // the Questionnaire first
        let q = &b["entry"][0]["resource"];
        assert_eq!(q["resourceType"], "Questionnaire");
        assert_eq!(
            q["url"],
            "http://example.org/fhir/Questionnaire/imaging-knee"
        );
        assert_eq!(q["version"], "1.0");
        let text = q.to_string();
        assert!(text.contains("cqf-library"), "{text}");
        assert!(
            text.contains("sdc-questionnaire-initialExpression"),
            "{text}"
        );
        // the CQL Library with CQL and ELM
        let libs = of_type(b, "Library");
        assert_eq!(libs.len(), 1);
        assert!(decoded(libs[0], "text/cql").contains("library ImagingKneePrepopulation"));
        let elm: Value = serde_json::from_str(&decoded(libs[0], "application/elm+json")).unwrap();
        assert_eq!(
            elm["library"]["identifier"]["id"],
            "ImagingKneePrepopulation"
        );
        // the bound ValueSet, expanded
        let vss = of_type(b, "ValueSet");
        assert_eq!(vss.len(), 1);
        assert_eq!(
            vss[0]["url"],
            "http://example.org/fhir/ValueSet/knee-imaging-indications"
        );
        assert!(vss[0]["expansion"]["contains"].as_array().unwrap().len() >= 2);
        assert!(vss[0]["expansion"]["timestamp"].is_string());
        // one draft QuestionnaireResponse
        let qrs = of_type(b, "QuestionnaireResponse");
        assert_eq!(qrs.len(), 1);
        assert_eq!(qrs[0]["status"], "in-progress");
        assert_eq!(qrs[0]["questionnaire"], KNEE);
        assert_eq!(qrs[0]["subject"]["reference"], "Patient/p1");
        assert!(qrs[0].to_string().contains("Coverage/cov1"));
    }
}

#[tokio::test]
async fn the_questionnaire_is_derived_from_the_orders_code() {
    let t = TestApp::new().await;
    let tok = token(&t, DTR_SCOPE, None).await;
    // MRI knee (73722): a needs-doc rule names imaging-knee|1.0
    let r = package(&t, &tok, &params(vec![coverage("p1"), order("73722")])).await;
    let bs = bundles(&r);
    assert_eq!(bs.len(), 1);
    assert_eq!(bs[0]["entry"][0]["resource"]["id"], "imaging-knee");
    let qr = of_type(&bs[0], "QuestionnaireResponse")[0];
    assert!(qr.to_string().contains("ServiceRequest/sr1"), "{qr}");
    // an office visit (99213) needs no documentation
    let r = package(&t, &tok, &params(vec![coverage("p1"), order("99213")])).await;
    assert!(bundles(&r).is_empty());
    let oo = outcome_part(&r).unwrap();
    assert_eq!(oo["issue"][0]["severity"], "information");
}

#[tokio::test]
async fn an_unknown_questionnaire_is_refused_with_a_clear_outcome() {
    let t = TestApp::new().await;
    let tok = token(&t, DTR_SCOPE, None).await;
    let unknown = "http://example.org/fhir/Questionnaire/no-such-form|2.0";
    let r = package(
        &t,
        &tok,
        &params(vec![coverage("p1"), questionnaire(unknown)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let text = outcome_text(&r);
    assert!(text.contains(unknown), "{text}");
    assert!(text.contains("not-found"), "{text}");
    // next to a known one: the known one is packaged, the unknown one warned about
    let r = package(
        &t,
        &tok,
        &params(vec![
            coverage("p1"),
            questionnaire(KNEE),
            questionnaire(unknown),
        ]),
    )
    .await;
    assert_eq!(bundles(&r).len(), 1);
    let oo = outcome_part(&r).unwrap();
    assert_eq!(oo["issue"][0]["severity"], "warning");
    assert!(oo.to_string().contains(unknown));
}

#[tokio::test]
async fn a_missing_coverage_is_a_bad_request() {
    let t = TestApp::new().await;
    let tok = token(&t, DTR_SCOPE, None).await;
    let r = package(&t, &tok, &params(vec![questionnaire(KNEE)])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(outcome_text(&r).contains("coverage"));
    // nothing to derive from: dtr-1
    let r = package(&t, &tok, &params(vec![coverage("p1")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(outcome_text(&r).contains("dtr-1"));
    // not a Parameters body
    let r = package(&t, &tok, &json!({"resourceType": "Bundle"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    outcome_text(&r);
}

#[tokio::test]
async fn callers_without_questionnaire_read_scope_are_forbidden() {
    let t = TestApp::new().await;
    let body = params(vec![coverage("p1"), questionnaire(KNEE)]);
    for scope in [
        "system/Claim.crs",
        "patient/Observation.rs",
        "user/Questionnaire.c",
    ] {
        let tok = token(&t, scope, Some("p1")).await;
        let r = package(&t, &tok, &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{scope}: {}", r.text());
        assert!(outcome_text(&r).contains("Questionnaire"));
    }
    // patient/ scopes: only the launch patient's coverage
    let tok = token(&t, "patient/Questionnaire.r", Some("p1")).await;
    assert_eq!(package(&t, &tok, &body).await.status, StatusCode::OK);
    let other = params(vec![coverage("p2"), questionnaire(KNEE)]);
    let r = package(&t, &tok, &other).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // system/ scopes work too
    let tok = token(&t, "system/Questionnaire.rs", None).await;
    assert_eq!(package(&t, &tok, &body).await.status, StatusCode::OK);
}

async fn next(t: &TestApp, tok: &str, body: &Value) -> TestResponse {
    t.request_with(
        tok,
        Method::POST,
        "/fhir/Questionnaire/$next-question",
        &[],
        Some(body),
    )
    .await
}

/// The linkIds of the contained Questionnaire's items.
fn asked(qr: &Value) -> Vec<String> {
    qr["contained"][0]["item"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["linkId"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn answer(qr: &mut Value, link_id: &str, answer: Value) {
    if !qr["item"].is_array() {
        qr["item"] = json!([]);
    }
    qr["item"]
        .as_array_mut()
        .unwrap()
        .push(json!({"linkId": link_id, "answer": [answer]}));
}

fn ok_qr(r: &TestResponse) -> Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json["resourceType"],
        "QuestionnaireResponse",
        "{}",
        r.text()
    );
    r.json.clone()
}

#[tokio::test]
async fn next_question_asks_by_the_answers_until_the_form_is_complete() {
    let t = TestApp::new().await;
    let tok = token(&t, DTR_SCOPE, None).await;
    // the adaptive form's package: an empty Questionnaire, a draft containing it
    let r = package(
        &t,
        &tok,
        &params(vec![coverage("p1"), questionnaire(ADAPTIVE)]),
    )
    .await;
    let b = &bundles(&r)[0];
    let draft = of_type(b, "QuestionnaireResponse")[0].clone();
    assert_eq!(draft["questionnaire"], "#knee-arthroplasty-adaptive");
    assert!(asked(&draft).is_empty());

    let mut qr = ok_qr(&next(&t, &tok, &draft).await);
    assert_eq!(asked(&qr), ["conservative-therapy"]);
    assert_eq!(qr["status"], "in-progress");

    // a "no" leads elsewhere than a "yes"
    let mut no = qr.clone();
    answer(
        &mut no,
        "conservative-therapy",
        json!({"valueBoolean": false}),
    );
    let no = ok_qr(&next(&t, &tok, &no).await);
    assert_eq!(
        asked(&no),
        ["conservative-therapy", "no-conservative-reason"]
    );

    answer(
        &mut qr,
        "conservative-therapy",
        json!({"valueBoolean": true}),
    );
    let mut qr = ok_qr(&next(&t, &tok, &qr).await);
    assert_eq!(asked(&qr), ["conservative-therapy", "xray-grade"]);

    // an answer the form does not offer is refused
    let mut bad = qr.clone();
    answer(
        &mut bad,
        "xray-grade",
        json!({"valueCoding": {"system": "http://example.org/fhir/CodeSystem/kellgren-lawrence", "code": "9"}}),
    );
    let r = next(&t, &tok, &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(outcome_text(&r).contains("xray-grade"));

    answer(
        &mut qr,
        "xray-grade",
        json!({"valueCoding": {"system": "http://example.org/fhir/CodeSystem/kellgren-lawrence", "code": "4"}}),
    );
    let mut qr = ok_qr(&next(&t, &tok, &qr).await);
    assert_eq!(
        asked(&qr),
        ["conservative-therapy", "xray-grade", "adl-limitation"]
    );
    assert_eq!(qr["status"], "in-progress");

    answer(&mut qr, "adl-limitation", json!({"valueBoolean": true}));
    // in Parameters this time: the answer comes back in `return`
    let wrapped = json!({"resourceType": "Parameters",
                         "parameter": [{"name": "questionnaire-response", "resource": qr}]});
    let r = next(&t, &tok, &wrapped).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["parameter"][0]["name"], "return");
    let done = &r.json["parameter"][0]["resource"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["item"].as_array().unwrap().len(), 3);
    assert_eq!(asked(done).len(), 3);

    // a form that is not this payer's adaptive one
    let mut other = draft.clone();
    other["contained"][0]["url"] = json!("http://example.org/fhir/Questionnaire/other");
    let r = next(&t, &tok, &other).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    // and the scope is needed here too
    let weak = token(&t, "system/Claim.crs", None).await;
    assert_eq!(next(&t, &weak, &draft).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn dtr_calls_are_audited() {
    let t = TestApp::new().await;
    let tok = token(&t, DTR_SCOPE, None).await;
    let r = package(&t, &tok, &params(vec![coverage("p1"), questionnaire(KNEE)])).await;
    assert_eq!(r.status, StatusCode::OK);
    let auditor = t
        .token_as("auditor", "system/AuditEvent.rs", None, None, None, None)
        .await;
    let r = t
        .request_with(
            &auditor,
            Method::GET,
            "/fhir/AuditEvent?agent=dtr-app&_count=100",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert!(text.contains("Questionnaire/imaging-knee"), "{text}");
    assert!(text.contains("Patient/p1"), "{text}");
}

// ---- completed QuestionnaireResponses: stored, and PAS documentation ----

fn completed_qr(questionnaire: &str, status: &str) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire,
        "status": status,
        // the patient of the PAS example Bundle (tests/common/pas.rs)
        "subject": {"reference": "Patient/SubscriberExample"},
        "authored": "2026-11-20T10:00:00Z",
        "item": [{"linkId": "2", "item": [
            {"linkId": "2.3", "answer": [{"valueInteger": 8}]},
            {"linkId": "2.4", "answer": [{"valueBoolean": true}]}
        ]}]
    })
}

#[tokio::test]
async fn a_completed_response_is_stored_through_the_facade() {
    let t = TestApp::new().await;
    let patient = t
        .create(json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]}))
        .await;
    let tok = t
        .token_as(
            "app",
            "patient/QuestionnaireResponse.cr patient/Questionnaire.r",
            Some(&patient),
            None,
            None,
            None,
        )
        .await;
    let mut qr = completed_qr(KNEE, "completed");
    qr["subject"] = json!({"reference": format!("Patient/{patient}")});
    let r = t
        .request_with(
            &tok,
            Method::POST,
            "/fhir/QuestionnaireResponse",
            &[],
            Some(&qr),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json["id"].as_str().unwrap();
    let r = t
        .request_with(
            &tok,
            Method::GET,
            &format!("/fhir/QuestionnaireResponse/{id}"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["questionnaire"], KNEE);
}

/// A PAS request for an MRI knee whose Claim points at `reference`.
fn pas_with_reference(claim_id: &str, reference: &str) -> Value {
    let mut b = pas::request(claim_id, "73722", 1, "normal");
    b["entry"][0]["resource"]["supportingInfo"] = json!([{
        "sequence": 1,
        "category": {"coding": [{"system": "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASSupportingInfoType",
                                 "code": "additionalInformation"}]},
        "valueReference": {"reference": reference}
    }]);
    b
}

async fn submit(t: &TestApp, tok: &str, body: &Value) -> TestResponse {
    t.request_with(tok, Method::POST, "/fhir/Claim/$submit", &[], Some(body))
        .await
}

/// Whether the item still asks for documentation (a processNote naming
/// the Questionnaire, as the contained-QR path answers).
fn asks_for_documentation(r: &TestResponse) -> bool {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cr = &r.json["entry"][0]["resource"];
    assert_eq!(cr["resourceType"], "ClaimResponse", "{}", r.text());
    assert_eq!(cr["outcome"], "queued", "{cr}");
    cr["processNote"].as_array().is_some_and(|ns| {
        ns.iter().any(|n| {
            n["text"]
                .as_str()
                .unwrap_or_default()
                .contains("imaging-knee")
        })
    })
}

#[tokio::test]
async fn a_stored_completed_response_documents_a_pas_request() {
    let t = TestApp::new().await;
    let pas_tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    // without documentation: pended, asking for it
    let r = submit(&t, &pas_tok, &pas::request("st-0", "73722", 1, "normal")).await;
    assert!(asks_for_documentation(&r));

    let done = t.create(completed_qr(KNEE, "completed")).await;
    let r = submit(
        &t,
        &pas_tok,
        &pas_with_reference("st-1", &format!("QuestionnaireResponse/{done}")),
    )
    .await;
    assert!(!asks_for_documentation(&r), "{}", r.text());
    // the absolute form of the same reference
    let r = submit(
        &t,
        &pas_tok,
        &pas_with_reference(
            "st-2",
            &format!("http://fhirgate.test/fhir/QuestionnaireResponse/{done}"),
        ),
    )
    .await;
    assert!(!asks_for_documentation(&r), "{}", r.text());
    // resubmitting the undocumented request with the reference moves it
    // from the documentation pend to the review pend
    let r = submit(
        &t,
        &pas_tok,
        &pas_with_reference("st-0", &format!("QuestionnaireResponse/{done}")),
    )
    .await;
    assert!(!asks_for_documentation(&r), "{}", r.text());
}

#[tokio::test]
async fn in_progress_or_foreign_responses_do_not_document_a_pas_request() {
    let t = TestApp::new().await;
    let pas_tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    let draft = t.create(completed_qr(KNEE, "in-progress")).await;
    let r = submit(
        &t,
        &pas_tok,
        &pas_with_reference("nd-1", &format!("QuestionnaireResponse/{draft}")),
    )
    .await;
    assert!(asks_for_documentation(&r), "in-progress: {}", r.text());
    let foreign = t
        .create(completed_qr(
            "http://example.org/fhir/Questionnaire/lumbar-spine|1.0",
            "completed",
        ))
        .await;
    let r = submit(
        &t,
        &pas_tok,
        &pas_with_reference("nd-2", &format!("QuestionnaireResponse/{foreign}")),
    )
    .await;
    assert!(
        asks_for_documentation(&r),
        "other questionnaire: {}",
        r.text()
    );
    // a reference that resolves nowhere is a structural error naming it
    let r = submit(
        &t,
        &pas_tok,
        &pas_with_reference("nd-3", "QuestionnaireResponse/does-not-exist"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let text = outcome_text(&r);
    assert!(text.contains("supportingInfo[0].valueReference"), "{text}");
    assert!(!text.contains("ClaimResponse"));
    // a completed response about another patient answers exactly like a
    // missing one (no oracle of others' documentation)
    let mut other = completed_qr(KNEE, "completed");
    other["subject"] = json!({"reference": "Patient/someone-else"});
    let other = t.create(other).await;
    let r2 = submit(
        &t,
        &pas_tok,
        &pas_with_reference("nd-3", &format!("QuestionnaireResponse/{other}")),
    )
    .await;
    assert_eq!(r2.status, StatusCode::BAD_REQUEST, "{}", r2.text());
    assert_eq!(
        outcome_text(&r2).replace(&other, "ID"),
        text.replace("does-not-exist", "ID"),
        "another patient's response reads like a missing one"
    );
}

#[tokio::test]
async fn the_packaged_draft_once_completed_and_stored_documents_the_pas_request() {
    let t = TestApp::new().await;
    let dtr = token(
        &t,
        "user/Questionnaire.rs user/QuestionnaireResponse.cru",
        None,
    )
    .await;
    let pas_tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    // the order's code says which form; the draft is filled in and stored
    let r = package(
        &t,
        &dtr,
        &params(vec![coverage("SubscriberExample"), order("73722")]),
    )
    .await;
    let mut qr = of_type(&bundles(&r)[0], "QuestionnaireResponse")[0].clone();
    assert_eq!(qr["subject"]["reference"], "Patient/SubscriberExample");
    qr.as_object_mut().unwrap().remove("id");
    qr["status"] = json!("completed");
    qr["item"] = completed_qr(KNEE, "completed")["item"].clone();
    let stored = t.create(qr).await;
    let r = submit(
        &t,
        &pas_tok,
        &pas_with_reference("e2e-1", &format!("QuestionnaireResponse/{stored}")),
    )
    .await;
    assert!(!asks_for_documentation(&r), "{}", r.text());
}
