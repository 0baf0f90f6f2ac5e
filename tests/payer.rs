//! The CMS-0057-F payer APIs (issue 6, items 6 and 7): `$member-match`
//! (single match, none, several, consent refused, malformed input, brute
//! force), `$bulk-member-match` Groups and who sees them, Provider Access
//! attribution Groups with opt-outs, `$davinci-data-export` validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, TestResponse};
use fhirgate::payer::{consent::POLICY_REGULAR, data_export};
use serde_json::{json, Value};

const CONFIG: &str = r#"
[bulk]
min_poll_seconds = 0
scan_millis = 20

[payer]
match_failure_limit = 3
match_failure_window_seconds = 600
provider_clients = { "clinic-app" = "Organization/org-riverside-clinic", "hospital-app" = "Organization/org-riverside-hospital" }
"#;

const PAYER_SCOPE: &str = "system/Patient.rs system/Group.rs system/Coverage.rs";

async fn seeded() -> TestApp {
    let t = TestApp::with_config(CONFIG).await;
    fhirgate::demo::seed_population(&t.app, 10).await.unwrap();
    t
}

async fn token(t: &TestApp, client: &str, scope: &str) -> String {
    t.token_as(client, scope, None, None, None, None).await
}

async fn post_as(t: &TestApp, tok: &str, path: &str, body: &Value) -> TestResponse {
    t.request_with(tok, Method::POST, path, &[], Some(body))
        .await
}

async fn get_as(t: &TestApp, tok: &str, path: &str) -> TestResponse {
    t.request_with(tok, Method::GET, path, &[], None).await
}

fn member_id(k: u64) -> String {
    format!("AHP{:09}", 100_000_000 + k + 1)
}

/// The seeded Patient `k` as a requesting payer would describe it.
async fn described(t: &TestApp, k: u64) -> Value {
    let p = t.get(&format!("/fhir/Patient/patient-{:05}", k + 1)).await;
    assert_eq!(p.status, StatusCode::OK);
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://new-payer.example.org/member", "value": "NP-1"}],
        "name": p.json["name"],
        "gender": p.json["gender"],
        "birthDate": p.json["birthDate"]
    })
}

fn coverage(member: &str) -> Value {
    json!({
        "resourceType": "Coverage",
        "id": "9876B1",
        "status": "active",
        "subscriberId": member,
        "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}, "value": member}],
        "beneficiary": {"reference": "Patient/1"},
        "payor": [{"identifier": {"system": "urn:oid:2.16.840.1.113883.6.300", "value": "99901"}, "display": "Acme Health Plan"}]
    })
}

fn consent(policy: &str, status: &str) -> Value {
    json!({
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IDSCL"}]}],
        "patient": {"reference": "Patient/1"},
        "policy": [{"uri": policy}],
        "provision": {
            "type": "permit",
            "period": {"start": "2024-01-01", "end": "2035-12-31"},
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "disclose"}]}]
        }
    })
}

fn match_parts(patient: Value, coverage: Value, consent: Value) -> Vec<Value> {
    vec![
        json!({"name": "MemberPatient", "resource": patient}),
        json!({"name": "CoverageToMatch", "resource": coverage}),
        json!({"name": "CoverageToLink", "resource": {"resourceType": "Coverage", "status": "active", "subscriberId": "NP-1", "beneficiary": {"reference": "Patient/1"}, "payor": [{"display": "New Plan"}]}}),
        json!({"name": "Consent", "resource": consent}),
    ]
}

fn params(parts: Vec<Value>) -> Value {
    json!({"resourceType": "Parameters", "parameter": parts})
}

async fn member_match(t: &TestApp, tok: &str, parts: Vec<Value>) -> TestResponse {
    post_as(t, tok, "/fhir/Patient/$member-match", &params(parts)).await
}

fn diagnostics(r: &TestResponse) -> String {
    r.json["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn member_match_single_none_several_and_consent() {
    let t = seeded().await;
    let tok = token(&t, "payer-a", PAYER_SCOPE).await;
    // single match
    let parts = match_parts(
        described(&t, 0).await,
        coverage(&member_id(0)),
        consent(POLICY_REGULAR, "active"),
    );
    let r = member_match(&t, &tok, parts).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["resourceType"], "Parameters");
    let id = &r.json["parameter"][0];
    assert_eq!(id["name"], "MemberIdentifier");
    assert_eq!(id["valueIdentifier"]["type"]["coding"][0]["code"], "UMB");
    assert_eq!(
        id["valueIdentifier"]["type"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0203"
    );
    assert_eq!(id["valueIdentifier"]["value"], "patient-00001");
    assert_eq!(
        r.json["parameter"][1]["valueReference"]["reference"],
        "Patient/patient-00001"
    );
    // the Consent is stored for the member and indexed
    let stored = t
        .app
        .consent
        .index
        .list("Patient/patient-00001")
        .await
        .unwrap();
    assert!(stored
        .iter()
        .any(|c| c["policy"][0]["uri"] == POLICY_REGULAR));
    let search = t.get("/fhir/Consent?patient=patient-00001").await;
    assert_eq!(search.json["total"], 1, "{}", search.text());
    // the stored HRex Consent (a permit) does not lock the record
    let reader = t
        .token_as(
            "reader",
            "system/Patient.rs",
            None,
            None,
            None,
            Some("TREAT"),
        )
        .await;
    let r = get_as(&t, &reader, "/fhir/Patient/patient-00001").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // no match: wrong birth date
    let mut p = described(&t, 1).await;
    p["birthDate"] = json!("1901-01-01");
    let parts = match_parts(
        p,
        coverage(&member_id(1)),
        consent(POLICY_REGULAR, "active"),
    );
    let r = member_match(&t, &tok, parts).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert!(diagnostics(&r).contains("no member"), "{}", r.text());

    // no match: another payer's coverage
    let mut c = coverage(&member_id(1));
    c["payor"] = json!([{"identifier": {"value": "55555"}, "display": "Other Plan"}]);
    let parts = match_parts(described(&t, 1).await, c, consent(POLICY_REGULAR, "active"));
    let r = member_match(&t, &tok, parts).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

    // several: a second member record with the same demographics and id
    let mut twin = t.get("/fhir/Patient/patient-00003").await.json;
    twin.as_object_mut().unwrap().remove("id");
    twin.as_object_mut().unwrap().remove("meta");
    let twin_id = t.create(twin).await;
    let mut cov =
        t.get("/fhir/Coverage?patient=patient-00003").await.json["entry"][0]["resource"].clone();
    cov.as_object_mut().unwrap().remove("id");
    cov.as_object_mut().unwrap().remove("meta");
    cov["beneficiary"] = json!({"reference": format!("Patient/{twin_id}")});
    cov["subscriber"] = json!({"reference": format!("Patient/{twin_id}")});
    t.create(cov).await;
    let parts = match_parts(
        described(&t, 2).await,
        coverage(&member_id(2)),
        consent(POLICY_REGULAR, "active"),
    );
    let r = member_match(&t, &tok, parts).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(diagnostics(&r).contains("more than one"), "{}", r.text());

    // consent refused: unknown policy, inactive, expired (another client:
    // this one has used up its failed matches)
    let tok = token(&t, "payer-c", PAYER_SCOPE).await;
    for c in [
        consent("http://example.org/some-policy", "active"),
        consent(POLICY_REGULAR, "inactive"),
        {
            let mut c = consent(POLICY_REGULAR, "active");
            c["provision"]["period"] = json!({"start": "2010-01-01", "end": "2011-01-01"});
            c
        },
    ] {
        let parts = match_parts(described(&t, 3).await, coverage(&member_id(3)), c);
        let r = member_match(&t, &tok, parts).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(diagnostics(&r).contains("Consent"), "{}", r.text());
    }
    assert!(t
        .app
        .consent
        .index
        .list("Patient/patient-00004")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn member_match_refuses_malformed_input_and_other_scopes() {
    let t = seeded().await;
    let tok = token(&t, "payer-a", PAYER_SCOPE).await;
    let ok = || {
        (
            json!({"resourceType": "Patient", "name": [{"family": "Jones"}], "birthDate": "1980-01-01"}),
            coverage(&member_id(0)),
            consent(POLICY_REGULAR, "active"),
        )
    };
    // not Parameters
    let r = post_as(
        &t,
        &tok,
        "/fhir/Patient/$member-match",
        &json!({"resourceType": "Patient"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // each missing part is named
    for missing in ["MemberPatient", "CoverageToMatch", "Consent"] {
        let (p, c, k) = ok();
        let parts: Vec<Value> = match_parts(p, c, k)
            .into_iter()
            .filter(|x| x["name"] != missing)
            .collect();
        let r = member_match(&t, &tok, parts).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{missing}: {}", r.text());
        assert_eq!(r.json["resourceType"], "OperationOutcome");
        assert!(diagnostics(&r).contains(missing), "{}", r.text());
    }
    // wrong resource type in a part
    let (p, c, _) = ok();
    let r = member_match(&t, &tok, match_parts(p, c.clone(), c)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&r).contains("Consent"), "{}", r.text());
    // a Patient without birth date
    let (_, c, k) = ok();
    let r = member_match(
        &t,
        &tok,
        match_parts(
            json!({"resourceType": "Patient", "name": [{"family": "X"}]}),
            c,
            k,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&r).contains("birthDate"), "{}", r.text());
    // a patient-context token may not match members
    let (p, c, k) = ok();
    let patient_tok = t
        .token_as(
            "app2",
            "patient/Patient.rs",
            Some("patient-00001"),
            None,
            None,
            None,
        )
        .await;
    let r = member_match(&t, &patient_tok, match_parts(p, c, k)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

#[tokio::test]
async fn brute_force_is_throttled_and_alerted() {
    let t = seeded().await;
    let tok = token(&t, "payer-bf", PAYER_SCOPE).await;
    let wrong = || {
        match_parts(
            json!({"resourceType": "Patient", "name": [{"family": "Nobody"}], "birthDate": "1950-05-05"}),
            coverage("AHP999999999"),
            consent(POLICY_REGULAR, "active"),
        )
    };
    for _ in 0..3 {
        let r = member_match(&t, &tok, wrong()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    }
    let r = member_match(&t, &tok, wrong()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1, "Retry-After {wait}");
    assert!(diagnostics(&r).contains("retry after"), "{}", r.text());
    // even a good request waits now
    let good = match_parts(
        described(&t, 0).await,
        coverage(&member_id(0)),
        consent(POLICY_REGULAR, "active"),
    );
    let r = member_match(&t, &tok, good.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // another client is not affected
    let other = token(&t, "payer-ok", PAYER_SCOPE).await;
    let r = member_match(&t, &other, good).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // the alert is on the ledger, with the client as agent
    let auditor = token(&t, "auditor", "system/AuditEvent.rs").await;
    let r = get_as(&t, &auditor, "/fhir/AuditEvent?agent=payer-bf&_count=100").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let alerts = common::ledger::with_subtype(&r.json, "POST member-match-brute-force");
    assert_eq!(alerts.len(), 1, "{}", r.text());
}

fn bundle(patient: Value, coverage: Value, consent: Value) -> Value {
    json!({"name": "MemberBundle", "part": match_parts(patient, coverage, consent)})
}

fn out_group<'a>(r: &'a TestResponse, name: &str) -> &'a Value {
    r.json["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["resource"])
        .unwrap_or_else(|| panic!("{name} missing: {}", r.text()))
}

#[tokio::test]
async fn bulk_member_match_makes_three_groups_only_their_payer_sees() {
    let t = seeded().await;
    let a = token(&t, "payer-a", PAYER_SCOPE).await;
    let b = token(&t, "payer-b", PAYER_SCOPE).await;
    let body = params(vec![
        bundle(
            described(&t, 0).await,
            coverage(&member_id(0)),
            consent(POLICY_REGULAR, "active"),
        ),
        bundle(
            described(&t, 4).await,
            coverage(&member_id(4)),
            consent("http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#sensitive", "active"),
        ),
        bundle(
            json!({"resourceType": "Patient", "name": [{"family": "Nobody"}], "birthDate": "1950-05-05"}),
            coverage("AHP999999999"),
            consent(POLICY_REGULAR, "active"),
        ),
        bundle(
            described(&t, 5).await,
            coverage(&member_id(5)),
            consent(POLICY_REGULAR, "rejected"),
        ),
    ]);
    let r = post_as(&t, &a, "/fhir/Group/$bulk-member-match", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let matched = out_group(&r, "MatchedMembers");
    let refs: Vec<&str> = matched["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entity"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, vec!["Patient/patient-00001", "Patient/patient-00005"]);
    assert_eq!(
        matched["member"][0]["entity"]["identifier"]["type"]["coding"][0]["code"],
        "UMB"
    );
    let nm = out_group(&r, "NonMatchedMembers");
    assert_eq!(nm["member"].as_array().unwrap().len(), 1);
    assert_eq!(nm["contained"][0]["name"][0]["family"], "Nobody");
    let cc = out_group(&r, "ConsentConstrainedMembers");
    assert_eq!(cc["member"].as_array().unwrap().len(), 1);
    assert!(
        !cc.to_string().contains("patient-00006"),
        "our id is not revealed"
    );
    assert_eq!(matched["managingEntity"]["identifier"]["value"], "payer-a");
    let gid = matched["id"].as_str().unwrap();

    // a malformed bundle is named
    let bad = params(vec![json!({"name": "MemberBundle", "part": [
        {"name": "MemberPatient", "resource": described(&t, 0).await},
        {"name": "CoverageToMatch", "resource": coverage(&member_id(0))}
    ]})]);
    let r = post_as(&t, &a, "/fhir/Group/$bulk-member-match", &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        diagnostics(&r).contains("MemberBundle[0].Consent"),
        "{}",
        r.text()
    );

    // payer A reads and finds its Groups; payer B sees none of them
    let r = get_as(&t, &a, &format!("/fhir/Group/{gid}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = get_as(&t, &b, &format!("/fhir/Group/{gid}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let ids = |r: &TestResponse| -> Vec<String> {
        r.json["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let r = get_as(&t, &a, "/fhir/Group?_count=50").await;
    assert!(ids(&r).contains(&gid.to_owned()), "{}", r.text());
    let r = get_as(&t, &b, "/fhir/Group?_count=50").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!ids(&r).contains(&gid.to_owned()), "{}", r.text());
}

#[tokio::test]
async fn providers_see_only_their_attribution_group_without_opted_out_members() {
    let t = seeded().await;
    // patient-00002 opts out of Provider Access; patient-00004 denies the hospital only
    let opt_out = json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/patient-00002"},
        "policyRule": {"coding": [{"system": fhirgate::payer::consent::OPT_OUT_SYSTEM, "code": fhirgate::payer::consent::OPT_OUT_CODE}]},
        "provision": {"type": "permit"}
    });
    t.create(opt_out).await;
    let deny_hospital = json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/patient-00004"},
        "provision": {"type": "deny", "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}, "reference": {"reference": "Organization/org-riverside-hospital"}}]}
    });
    t.create(deny_hospital).await;

    let clinic = token(&t, "clinic-app", "system/Group.rs system/Patient.rs").await;
    let r = get_as(&t, &clinic, "/fhir/Group").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let entries = r.json["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", r.text());
    let g = &entries[0]["resource"];
    assert_eq!(g["id"], "attribution-riverside-clinic");
    let members: Vec<&str> = g["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entity"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 9, "{members:?}");
    assert!(!members.contains(&"Patient/patient-00002"));
    assert!(
        members.contains(&"Patient/patient-00004"),
        "the hospital deny does not touch the clinic"
    );
    // no member data rides along with the Group
    let r = get_as(&t, &clinic, "/fhir/Group?_include=Group:member").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["entry"].as_array().unwrap().len(), 1, "{}", r.text());
    assert_eq!(
        get_as(&t, &clinic, "/fhir/Group/attribution-riverside-hospital")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let hospital = token(&t, "hospital-app", "system/Group.rs").await;
    let r = get_as(&t, &hospital, "/fhir/Group/attribution-riverside-hospital").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let members: Vec<&str> = r.json["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entity"]["reference"].as_str().unwrap())
        .collect();
    // k = 0, 3, 6, 9; k = 6 left in 2025; k = 3 (patient-00004) denied the hospital
    assert_eq!(
        members,
        vec!["Patient/patient-00001", "Patient/patient-00010"]
    );
    // other clients do not see a provider's attribution Group; trusted
    // (consent-exempt) pipelines do
    let other = token(&t, "someone", "system/Group.rs").await;
    let r = get_as(&t, &other, "/fhir/Group/attribution-riverside-clinic").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = t.get("/fhir/Group/attribution-riverside-clinic").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["member"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn davinci_data_export_validates_its_input() {
    let t = seeded().await;
    let clinic = token(&t, "clinic-app", "system/*.rs").await;
    let path = "/fhir/Group/attribution-riverside-clinic/$davinci-data-export";
    let async_h = [("prefer", "respond-async")];
    let send = |body: Value| {
        let t = &t;
        let clinic = clinic.clone();
        async move {
            t.request_with(&clinic, Method::POST, path, &async_h, Some(&body))
                .await
        }
    };
    let p = |parts: Vec<Value>| params(parts);
    let et = |v: &str| json!({"name": "exportType", "valueCanonical": v});
    // exportType missing, unknown
    let r = send(p(vec![])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(diagnostics(&r).contains("exportType"));
    let r = send(p(vec![et("hl7.fhir.us.davinci-pdex#nonsense")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // bad _since
    let r = send(p(vec![
        et("hl7.fhir.us.davinci-pdex#provider-delivery"),
        json!({"name": "_since", "valueInstant": "yesterday"}),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&r).contains("_since"));
    // a type outside the allowed classes
    let r = send(p(vec![
        et("hl7.fhir.us.davinci-pdex#provider-delivery"),
        json!({"name": "_type", "valueString": "Observation,AuditEvent"}),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(diagnostics(&r).contains("AuditEvent"));
    // an unknown parameter
    let r = send(p(vec![
        et("hl7.fhir.us.davinci-pdex#provider-delivery"),
        json!({"name": "_bogus", "valueString": "1"}),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // payer-to-payer on an attribution Group
    let r = send(p(vec![et(data_export::PAYER_TO_PAYER)])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // another organization's Group is not found
    let r = t
        .request_with(
            &clinic,
            Method::POST,
            "/fhir/Group/attribution-riverside-hospital/$davinci-data-export",
            &async_h,
            Some(&p(vec![et("hl7.fhir.us.davinci-pdex#provider-delivery")])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

#[test]
fn davinci_data_export_plan_restricts_classes_and_applies_pdex_windows() {
    let mut req = fhirgate::fhir::FhirRequest::new(fhirgate::fhir::Interaction::Operation);
    req.params = vec![
        ("exportType".into(), data_export::PAYER_TO_PAYER.into()),
        (
            "_type".into(),
            "Encounter,ExplanationOfBenefit,ClaimResponse,Condition".into(),
        ),
        ("_typeFilter".into(), "Encounter?status=finished".into()),
    ];
    let plan = data_export::plan(&req, "g1", &[]).unwrap();
    assert_eq!(
        plan.types,
        vec![
            "Encounter",
            "ExplanationOfBenefit",
            "ClaimResponse",
            "Condition"
        ]
    );
    let f = |t: &str| -> Vec<String> {
        plan.type_filters
            .iter()
            .filter(|(x, _)| x == t)
            .map(|(_, q)| q.clone())
            .collect()
    };
    // the caller's filter keeps its condition and gains the 5-year window
    let enc = f("Encounter");
    assert_eq!(enc.len(), 1);
    assert!(enc[0].starts_with("status=finished&date=ge"), "{enc:?}");
    assert!(f("ExplanationOfBenefit")[0].starts_with("billable-period-start=ge"));
    let cr = f("ClaimResponse");
    assert!(
        cr[0].starts_with("use=preauthorization&_lastUpdated=ge"),
        "{cr:?}"
    );
    assert!(f("Condition").is_empty(), "no service date: all of it");
    assert!(plan
        .elements
        .contains(&"ExplanationOfBenefit.diagnosis".to_owned()));
    assert!(!plan
        .elements
        .iter()
        .any(|e| e.ends_with(".payment") || e.ends_with(".total") || e.ends_with(".item")));
    // provider delivery: no windows, prior auths only
    req.params[0].1 = "hl7.fhir.us.davinci-pdex#provider-delivery".into();
    let plan = data_export::plan(&req, "g1", &[]).unwrap();
    assert_eq!(
        plan.type_filters,
        vec![
            ("Encounter".to_owned(), "status=finished".to_owned()),
            (
                "ClaimResponse".to_owned(),
                "use=preauthorization".to_owned()
            )
        ]
    );
    // default types: the allowed classes only
    req.params.truncate(1);
    let plan = data_export::plan(&req, "g1", &[]).unwrap();
    assert!(plan.types.contains(&"Observation".to_owned()));
    assert!(!plan
        .types
        .iter()
        .any(|t| t == "AuditEvent" || t == "Consent" || t == "Claim"));
}

/// Polls a kick-off to its manifest and downloads every file as `tok`.
async fn exported(t: &TestApp, tok: &str, kick: &TestResponse) -> Vec<Value> {
    assert_eq!(kick.status, StatusCode::ACCEPTED, "{}", kick.text());
    let status = kick.header("content-location").unwrap();
    let rel = |u: &str| u.strip_prefix("http://fhirgate.test").unwrap().to_owned();
    for _ in 0..600 {
        let p = get_as(t, tok, &rel(&status)).await;
        match p.status {
            StatusCode::ACCEPTED | StatusCode::TOO_MANY_REQUESTS => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            StatusCode::OK => {
                let mut out = Vec::new();
                for o in p.json["output"].as_array().unwrap() {
                    let f = get_as(t, tok, &rel(o["url"].as_str().unwrap())).await;
                    assert_eq!(f.status, StatusCode::OK);
                    for l in f.text().lines().filter(|l| !l.is_empty()) {
                        out.push(serde_json::from_str(l).unwrap());
                    }
                }
                return out;
            }
            s => panic!("poll {s}: {}", p.text()),
        }
    }
    panic!("export did not finish");
}

fn of_type<'a>(all: &'a [Value], t: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["resourceType"] == t).collect()
}

#[tokio::test]
async fn provider_export_releases_allowed_classes_of_attributed_members_only() {
    let t = seeded().await;
    let opt_out = json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/patient-00002"},
        "policyRule": {"coding": [{"system": fhirgate::payer::consent::OPT_OUT_SYSTEM, "code": fhirgate::payer::consent::OPT_OUT_CODE}]},
        "provision": {"type": "permit"}
    });
    t.create(opt_out).await;
    let eob = json!({
        "resourceType": "ExplanationOfBenefit", "status": "active", "use": "claim",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "patient": {"reference": "Patient/patient-00001"},
        "billablePeriod": {"start": "2025-03-01"},
        "created": "2025-03-02", "insurer": {"reference": "Organization/org-acme-health-plan"},
        "provider": {"reference": "Organization/org-riverside-clinic"}, "outcome": "complete",
        "insurance": [{"focal": true, "coverage": {"reference": "Coverage/x"}}],
        "payment": {"amount": {"value": 80, "currency": "USD"}},
        "total": [{"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 100, "currency": "USD"}}]
    });
    t.create(eob).await;
    let cr = |use_: &str| {
        json!({
            "resourceType": "ClaimResponse", "status": "active", "use": use_,
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
            "patient": {"reference": "Patient/patient-00001"}, "created": "2025-03-02",
            "insurer": {"reference": "Organization/org-acme-health-plan"}, "outcome": "complete"
        })
    };
    let preauth = t.create(cr("preauthorization")).await;
    t.create(cr("claim")).await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let clinic = token(&t, "clinic-app", "system/*.rs").await;
    let body = params(vec![
        json!({"name": "exportType", "valueCanonical": "hl7.fhir.us.davinci-pdex#provider-delivery"}),
        json!({"name": "_type", "valueString": "Patient,Encounter,ExplanationOfBenefit,ClaimResponse"}),
    ]);
    let r = t
        .request_with(
            &clinic,
            Method::POST,
            "/fhir/Group/attribution-riverside-clinic/$davinci-data-export",
            &[("prefer", "respond-async")],
            Some(&body),
        )
        .await;
    let all = exported(&t, &clinic, &r).await;
    worker.abort();
    let patients: Vec<&str> = of_type(&all, "Patient")
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(patients.len(), 9, "{patients:?}");
    assert!(!patients.contains(&"patient-00002"), "opted out");
    assert!(!all
        .iter()
        .any(|r| r.to_string().contains("Patient/patient-00002\"")));
    assert!(!of_type(&all, "Encounter").is_empty());
    let eobs = of_type(&all, "ExplanationOfBenefit");
    assert_eq!(eobs.len(), 1);
    assert!(
        eobs[0].get("payment").is_none() && eobs[0].get("total").is_none(),
        "{}",
        eobs[0]
    );
    let crs = of_type(&all, "ClaimResponse");
    assert_eq!(crs.len(), 1, "prior authorizations only");
    assert_eq!(crs[0]["id"], preauth.as_str());
}

#[tokio::test]
async fn payer_to_payer_export_of_the_matched_group() {
    let t = seeded().await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let a = token(&t, "payer-a", "system/*.rs").await;
    let body = params(vec![bundle(
        described(&t, 0).await,
        coverage(&member_id(0)),
        consent(POLICY_REGULAR, "active"),
    )]);
    let r = post_as(&t, &a, "/fhir/Group/$bulk-member-match", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let gid = out_group(&r, "MatchedMembers")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/fhir/Group/{gid}/$davinci-data-export");
    let export = |et: &str| {
        params(vec![
            json!({"name": "exportType", "valueCanonical": et}),
            json!({"name": "_type", "valueString": "Patient,Encounter"}),
        ])
    };
    // provider types do not apply to a matched-members Group
    let r = t
        .request_with(
            &a,
            Method::POST,
            &path,
            &[("prefer", "respond-async")],
            Some(&export("hl7.fhir.us.davinci-pdex#provider-delivery")),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // another payer cannot export it
    let b = token(&t, "payer-b", "system/*.rs").await;
    let r = t
        .request_with(
            &b,
            Method::POST,
            &path,
            &[("prefer", "respond-async")],
            Some(&export(data_export::PAYER_TO_PAYER)),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = t
        .request_with(
            &a,
            Method::POST,
            &path,
            &[("prefer", "respond-async")],
            Some(&export(data_export::PAYER_TO_PAYER)),
        )
        .await;
    let all = exported(&t, &a, &r).await;
    worker.abort();
    let patients: Vec<&str> = of_type(&all, "Patient")
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(patients, vec!["patient-00001"]);
    let cutoff = {
        let y = time::OffsetDateTime::now_utc().year() - 5;
        format!("{y}")
    };
    for e in of_type(&all, "Encounter") {
        assert_eq!(e["subject"]["reference"], "Patient/patient-00001");
        let start = e["period"]["start"].as_str().unwrap();
        assert!(
            start[..4] >= cutoff[..],
            "service date within 5 years: {start}"
        );
    }
}

#[tokio::test]
async fn a_plain_group_export_respects_group_ownership_and_opt_outs() {
    let t = seeded().await;
    let a = token(&t, "payer-a", "system/*.rs").await;
    let body = params(vec![bundle(
        described(&t, 0).await,
        coverage(&member_id(0)),
        consent(POLICY_REGULAR, "active"),
    )]);
    let r = post_as(&t, &a, "/fhir/Group/$bulk-member-match", &body).await;
    let gid = out_group(&r, "MatchedMembers")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = token(&t, "payer-b", "system/*.rs").await;
    let r = t
        .request_with(
            &b,
            Method::GET,
            &format!("/fhir/Group/{gid}/$export"),
            &[("prefer", "respond-async")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

/// The brute-force limit on the PostgreSQL state store the test command
/// starts ([`TestApp::on_postgres`]).
#[tokio::test]
async fn brute_force_limit_on_postgres() {
    let Some(t) = TestApp::on_postgres(CONFIG).await else {
        return;
    };
    assert_eq!(t.app.state.backend(), "postgres");
    let tok = token(&t, "payer-pg", PAYER_SCOPE).await;
    let wrong = || {
        match_parts(
            json!({"resourceType": "Patient", "name": [{"family": "Nobody"}], "birthDate": "1950-05-05"}),
            coverage("AHP999999999"),
            consent(POLICY_REGULAR, "active"),
        )
    };
    for _ in 0..3 {
        let r = member_match(&t, &tok, wrong()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    }
    let r = member_match(&t, &tok, wrong()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
}

#[tokio::test]
async fn bulk_member_match_runs_asynchronously_with_prefer_respond_async() {
    let t = seeded().await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let a = token(&t, "payer-a", PAYER_SCOPE).await;
    let b = token(&t, "payer-b", PAYER_SCOPE).await;
    let body = params(vec![
        bundle(
            described(&t, 0).await,
            coverage(&member_id(0)),
            consent(POLICY_REGULAR, "active"),
        ),
        bundle(
            json!({"resourceType": "Patient", "name": [{"family": "Nobody"}], "birthDate": "1950-05-05"}),
            coverage("AHP999999999"),
            consent(POLICY_REGULAR, "active"),
        ),
    ]);
    let async_post = |tok: &str, body: &Value| {
        let (tok, body) = (tok.to_owned(), body.clone());
        let t = &t;
        async move {
            t.request_with(
                &tok,
                Method::POST,
                "/fhir/Group/$bulk-member-match",
                &[("prefer", "respond-async")],
                Some(&body),
            )
            .await
        }
    };
    // invalid input is refused at kick-off, not queued
    let bad = params(vec![json!({"name": "MemberBundle", "part": []})]);
    let r = async_post(&a, &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    let kick = async_post(&a, &body).await;
    assert_eq!(kick.status, StatusCode::ACCEPTED, "{}", kick.text());
    let status = kick.header("content-location").unwrap();
    assert!(
        status.starts_with("http://fhirgate.test/fhir/bulk/status/"),
        "{status}"
    );
    let rel = status.strip_prefix("http://fhirgate.test").unwrap();
    // another payer cannot poll it
    assert_eq!(get_as(&t, &b, rel).await.status, StatusCode::NOT_FOUND);
    let all = exported(&t, &a, &kick).await;
    let manifest = get_as(&t, &a, rel).await;
    assert_eq!(manifest.status, StatusCode::OK, "{}", manifest.text());
    assert_eq!(
        manifest.json["request"],
        "http://fhirgate.test/fhir/Group/$bulk-member-match"
    );
    assert_eq!(manifest.json["output"][0]["type"], "Parameters");
    assert_eq!(manifest.json["output"][0]["count"], 1);
    assert_eq!(all.len(), 1, "one Parameters line");
    let out = TestResponse {
        status: StatusCode::OK,
        headers: Default::default(),
        json: all[0].clone(),
        body: all[0].to_string().into_bytes(),
    };
    let matched = out_group(&out, "MatchedMembers");
    assert_eq!(
        matched["member"][0]["entity"]["reference"],
        "Patient/patient-00001"
    );
    let job = rel.rsplit('/').next().unwrap();
    assert_eq!(matched["id"], format!("bmm-{job}-match"), "id from the job");
    assert_eq!(
        out_group(&out, "NonMatchedMembers")["member"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // the MatchedMembers Group is the requesting payer's own
    let gid = matched["id"].as_str().unwrap();
    let r = get_as(&t, &a, &format!("/fhir/Group/{gid}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = get_as(&t, &b, &format!("/fhir/Group/{gid}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // a resumed job (the worker died after matching) stores nothing twice
    let stored = fhirgate::bulk::jobs::get(&t.app.state, job)
        .await
        .unwrap()
        .unwrap();
    let caller = stored.caller.context().unwrap();
    let fhirgate::bulk::jobs::Task::BulkMemberMatch { input } = &stored.spec.task else {
        panic!("task kept with the job");
    };
    fhirgate::payer::bulk_match::run_job(&t.app, &stored, &caller, input)
        .await
        .unwrap();
    let consents = t
        .get("/fhir/Consent?patient=Patient/patient-00001&_count=100")
        .await;
    let from_job: Vec<&Value> = consents.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["resource"]["id"]
                .as_str()
                .is_some_and(|i| i.starts_with(&format!("bmm-{job}-")))
        })
        .collect();
    assert_eq!(from_job.len(), 1, "the member's Consent once");
    let groups = get_as(&t, &a, "/fhir/Group?_count=100").await;
    let n = groups.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["id"] == format!("bmm-{job}-match"))
        .count();
    assert_eq!(n, 1, "the MatchedMembers Group once");

    // DELETE ends it
    let d = t.request_with(&a, Method::DELETE, rel, &[], None).await;
    assert_eq!(d.status, StatusCode::ACCEPTED);
    assert_eq!(get_as(&t, &a, rel).await.status, StatusCode::NOT_FOUND);
    worker.abort();
}
