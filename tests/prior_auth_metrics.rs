//! CMS-0057-F prior-authorization metrics (issue 7 item 3): requests
//! submitted through `Claim/$submit`, one decided by a reviewer through
//! `prior_auth::decide`, then `GET /admin/api/prior-auth/metrics` and
//! `fhirgate pa-metrics` report them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use axum::http::{Method, StatusCode};
use common::TestApp;
use fhirgate::prior_auth::decide::{decide, Decision};
use serde_json::{json, Value};

const CPT: &str = "http://www.ama-assn.org/go/cpt";

/// A PAS Request Bundle shaped like the IG's examples: the Claim first,
/// then the beneficiary, requestor, insurer, coverage and the requested
/// service.
fn request(claim_id: &str, code: &str, quantity: u32, priority: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "identifier": {"system": "http://example.org/SUBMITTER_TRANSACTION_IDENTIFIER", "value": format!("tx-{claim_id}")},
        "type": "collection",
        "timestamp": "2026-11-20T10:00:00Z",
        "entry": [
            {"fullUrl": "http://example.org/fhir/Claim/ReferralClaim", "resource": {
                "resourceType": "Claim", "id": "ReferralClaim",
                "identifier": [{"system": "urn:trnorg:9012345678", "value": claim_id}],
                "status": "active",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
                "use": "preauthorization",
                "patient": {"reference": "Patient/SubscriberExample"},
                "created": "2026-11-20T10:00:00Z",
                "insurer": {"reference": "Organization/InsurerExample"},
                "provider": {"reference": "Organization/UMOExample"},
                "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": priority}]},
                "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M17.11"}]}}],
                "insurance": [{"sequence": 1, "focal": true, "coverage": {"reference": "Coverage/InsuranceExample"}}],
                "item": [{
                    "extension": [{"url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-requestedService",
                                   "valueReference": {"reference": "ServiceRequest/ReferralRequest"}}],
                    "sequence": 1,
                    "category": {"coding": [{"system": "https://codesystem.x12.org/005010/1365", "code": "3"}]},
                    "productOrService": {"coding": [{"system": CPT, "code": code}]},
                    "quantity": {"value": quantity}
                }]
            }},
            {"fullUrl": "http://example.org/fhir/Patient/SubscriberExample", "resource": {
                "resourceType": "Patient", "id": "SubscriberExample",
                "identifier": [{"system": "http://example.org/MIN", "value": "12345678901"}],
                "name": [{"family": "SMITH", "given": ["JOE"]}],
                "gender": "male", "birthDate": "1970-01-01"
            }},
            {"fullUrl": "http://example.org/fhir/Organization/UMOExample", "resource": {
                "resourceType": "Organization", "id": "UMOExample",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "8189991234"}],
                "active": true, "name": "DR. JOE SMITH CORPORATION"
            }},
            {"fullUrl": "http://example.org/fhir/Organization/InsurerExample", "resource": {
                "resourceType": "Organization", "id": "InsurerExample",
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.642.40.24.0", "value": "789312"}],
                "active": true, "name": "MARYLAND CAPITAL INSURANCE COMPANY"
            }},
            {"fullUrl": "http://example.org/fhir/Coverage/InsuranceExample", "resource": {
                "resourceType": "Coverage", "id": "InsuranceExample",
                "status": "active", "subscriberId": "12345678901",
                "beneficiary": {"reference": "Patient/SubscriberExample"},
                "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self"}]},
                "payor": [{"reference": "Organization/InsurerExample"}]
            }},
            {"fullUrl": "http://example.org/fhir/ServiceRequest/ReferralRequest", "resource": {
                "resourceType": "ServiceRequest", "id": "ReferralRequest",
                "status": "active", "intent": "order",
                "code": {"coding": [{"system": CPT, "code": code}]},
                "subject": {"reference": "Patient/SubscriberExample"},
                "quantityQuantity": {"value": quantity}
            }}
        ]
    })
}

async fn submit(t: &TestApp, tok: &str, claim: &str, code: &str, priority: &str) -> String {
    let body = request(claim, code, 1, priority);
    let r = t
        .request_with(tok, Method::POST, "/fhir/Claim/$submit", &[], Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const PATH: &str = "/admin/api/prior-auth/metrics";

#[tokio::test]
async fn metrics_count_submitted_and_decided_requests() {
    let t = TestApp::new().await;
    let tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    submit(&t, &tok, "m-1", "97110", "normal").await; // auto-approved
    submit(&t, &tok, "m-2", "0042T", "normal").await; // auto-denied
    let pended = submit(&t, &tok, "m-3", "27447", "normal").await;
    submit(&t, &tok, "m-4", "27447", "stat").await; // stays pended, expedited
    submit(&t, &tok, "m-5", "99213", "normal").await; // no auth needed: not counted
    decide(&t.app, &pended, "rev-1", 1, Decision::Approve, None)
        .await
        .unwrap();

    // Same callers as the ledger API: nobody anonymous, a patient scope refused.
    let r = t.request_raw(Method::GET, PATH, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let auth = format!("Bearer {tok}");
    let r = t
        .request_raw(Method::GET, PATH, &[("authorization", &auth)], None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    let auth = format!("Bearer {}", t.token);
    let r = t
        .request_raw(Method::GET, PATH, &[("authorization", &auth)], None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let s = &r.json["standard"];
    assert_eq!(s["decided"], 3, "{}", r.text());
    assert_eq!(s["approved"], 2);
    assert_eq!(s["denied"], 1);
    assert_eq!(s["approved_pct"], 66.67);
    assert_eq!(s["denied_pct"], 33.33);
    assert_eq!(s["approved_after_appeal_pct"], 0.0);
    assert_eq!(s["approved_extended_pct"], 0.0);
    assert!(s["avg_hours"].as_f64().unwrap() < 1.0);
    assert!(s["median_hours"].as_f64().unwrap() < 1.0);
    assert_eq!(s["pending"], 0);
    let e = &r.json["expedited"];
    assert_eq!(e["decided"], 0);
    assert_eq!(e["approved_pct"], 0.0);
    assert!(e["avg_hours"].is_null());
    assert_eq!(e["pending"], 1);
    assert_eq!(e["overdue"], 0);
    assert_eq!(r.json["appeals_modelled"], false);

    // A period that received nothing; a bad bound is explained.
    let r = t
        .request_raw(
            Method::GET,
            &format!("{PATH}?from=2000-01-01&to=2000-12-31"),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["standard"]["decided"], 0);
    assert_eq!(r.json["expedited"]["pending"], 0);
    let r = t
        .request_raw(
            Method::GET,
            &format!("{PATH}?from=yesterday"),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // The command line reads the same store.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fhirgate"))
            .arg("pa-metrics")
            .args(args)
            .env("FHIRGATE_DATA_DIR", t.dir.path())
            .env("FHIRGATE_DEMO", "0")
            .env_remove("FHIRGATE_UPSTREAM_URL")
            .env_remove("FHIRGATE_DATABASE_URL")
            .env_remove("FHIRGATE_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(&["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["standard"]["decided"], 3);
    assert_eq!(v["expedited"]["pending"], 1);
    let out = run(&["--from", "2000-01-01", "--to", "2099-12-31"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("standard") && text.contains("expedited"),
        "{text}"
    );
    assert!(
        text.contains("66.67") && text.contains("appeals are not modelled"),
        "{text}"
    );
    let bad = run(&["--from", "nope"]);
    assert!(!bad.status.success());
}
