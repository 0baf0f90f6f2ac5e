//! Answer-side rules: every resource of every answer is judged again.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::tests::{caller, req, user, LAB, VITALS};
use super::*;
use crate::fhir::FhirResponse;

fn obs(id: &str, patient: &str, cat: &str) -> Value {
    let (system, code) = cat.split_once('|').unwrap();
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": system, "code": code}]}],
        "code": {"text": "x"}, "subject": {"reference": format!("Patient/{patient}")}})
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": id}]})
}

fn entry(r: Value, mode: &str) -> Value {
    json!({"fullUrl": "x", "resource": r, "search": {"mode": mode}})
}

fn searchset(entries: Vec<Value>, total: usize, next: bool) -> FhirResponse {
    let mut links = vec![
        json!({"relation": "self", "url": "s"}),
        json!({"relation": "last", "url": "l"}),
    ];
    if next {
        links.push(json!({"relation": "next", "url": "n"}));
    }
    FhirResponse::ok(
        json!({"resourceType": "Bundle", "type": "searchset", "total": total, "link": links, "entry": entries}),
    )
}

fn ids(resp: &FhirResponse) -> Vec<String> {
    resp.body.as_ref().unwrap()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or("-"),
                e["resource"]["id"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// authorize + filter over a canned upstream answer.
fn run(c: &AccessContext, path: &str, mut resp: FhirResponse) -> FhirResult<FhirResponse> {
    let mut r = req(Method::GET, path);
    let a = authorize(c, &mut r)?;
    filter_response(c, &a, &mut resp)?;
    Ok(resp)
}

#[test]
fn patient_a_reading_patient_b_by_id_is_404() {
    let a = caller("patient/*.rs", Some("A"));
    let e = run(&a, "Patient/B", FhirResponse::ok(patient("B"))).unwrap_err();
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    assert!(run(&a, "Patient/A", FhirResponse::ok(patient("A"))).is_ok());
    let e = run(&a, "Observation/o2", FhirResponse::ok(obs("o2", "B", LAB))).unwrap_err();
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    assert!(run(
        &a,
        "Observation/o1/_history/1",
        FhirResponse::ok(obs("o1", "A", LAB))
    )
    .is_ok());
    let e = run(
        &a,
        "Observation/o2/_history/1",
        FhirResponse::ok(obs("o2", "B", LAB)),
    )
    .unwrap_err();
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    // shared types are readable
    let org = json!({"resourceType": "Organization", "id": "org"});
    assert!(run(&a, "Organization/org", FhirResponse::ok(org)).is_ok());
    // a clinician sees both
    let clin = user("user/*.rs", "clinician", "Practitioner/1");
    assert!(run(&clin, "Patient/B", FhirResponse::ok(patient("B"))).is_ok());
}

#[test]
fn includes_and_revincludes_never_leak() {
    let a = caller("patient/Observation.rs patient/Patient.rs", Some("A"));
    // a performer-linked observation of A whose subject is B: _include=Observation:subject
    let mut shared = obs("o3", "B", LAB);
    shared["performer"] = json!([{"reference": "Patient/A"}]);
    let resp = searchset(
        vec![
            entry(obs("o1", "A", LAB), "match"),
            entry(shared, "match"),
            entry(patient("A"), "include"),
            entry(patient("B"), "include"),
            entry(
                json!({"resourceType": "Provenance", "id": "pv", "patient": {"reference": "Patient/A"}}),
                "include",
            ),
        ],
        2,
        false,
    );
    let got = run(
        &a,
        "Observation?_include=Observation:subject&_revinclude=Provenance:target",
        resp,
    )
    .unwrap();
    assert_eq!(ids(&got), ["Observation/o1", "Observation/o3", "Patient/A"]);
    assert_eq!(got.body.as_ref().unwrap()["total"], 2);
}

#[test]
fn dropped_matches_keep_totals_true() {
    let mixed = caller(
        &format!("patient/Observation.rs?category={LAB} patient/Observation.rs?code=1234-5"),
        Some("A"),
    );
    let page = |next| {
        searchset(
            vec![
                entry(obs("o1", "A", LAB), "match"),
                entry(obs("o2", "A", VITALS), "match"),
            ],
            2,
            next,
        )
    };
    let got = run(&mixed, "Observation", page(false)).unwrap();
    assert_eq!(ids(&got), ["Observation/o1"]);
    assert_eq!(got.body.as_ref().unwrap()["total"], 1);
    let got = run(&mixed, "Observation", page(true)).unwrap();
    let b = got.body.as_ref().unwrap();
    assert!(b.get("total").is_none());
    assert!(b["link"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["relation"] != "last"));
}

#[test]
fn granular_reads_and_searches_are_exact() {
    let c = caller(&format!("patient/Observation.rs?category={LAB}"), Some("A"));
    assert!(run(&c, "Observation/o1", FhirResponse::ok(obs("o1", "A", LAB))).is_ok());
    let e = run(
        &c,
        "Observation/o2",
        FhirResponse::ok(obs("o2", "A", VITALS)),
    )
    .unwrap_err();
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    // an upstream that ignored the constraint is caught per resource
    let got = run(
        &c,
        "Observation",
        searchset(
            vec![
                entry(obs("o1", "A", LAB), "match"),
                entry(obs("o2", "A", VITALS), "match"),
            ],
            2,
            false,
        ),
    )
    .unwrap();
    assert_eq!(ids(&got), ["Observation/o1"]);
}

#[test]
fn history_of_another_patients_resource_is_404() {
    let a = caller("patient/Observation.rs", Some("A"));
    let hist = FhirResponse::ok(
        json!({"resourceType": "Bundle", "type": "history", "total": 1,
        "entry": [{"resource": obs("o2", "B", LAB), "request": {"method": "PUT", "url": "Observation/o2"}},
                  {"request": {"method": "DELETE", "url": "Observation/o2/_history/2"}}]}),
    );
    assert_eq!(
        run(&a, "Observation/o2/_history", hist).unwrap_err().status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn everything_output_is_filtered() {
    let a = caller("patient/Patient.rs patient/Observation.rs", Some("A"));
    let resp = FhirResponse::ok(
        json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": patient("A")},
            {"resource": obs("o1", "A", LAB)},
            {"resource": obs("o2", "B", LAB)},
            {"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/A"}}},
        ]}),
    );
    let got = run(&a, "Patient/A/$everything", resp).unwrap();
    assert_eq!(ids(&got), ["Patient/A", "Observation/o1"]);
}

fn bundle(kind: &str, entries: Vec<Value>) -> FhirRequest {
    let mut r = req(Method::POST, "");
    r.body = Some(json!({"resourceType": "Bundle", "type": kind, "entry": entries}));
    r
}

#[test]
fn batch_entries_are_judged_one_by_one() {
    let a = caller("patient/Observation.cruds patient/Patient.rs", Some("A"));
    let mut r = bundle(
        "batch",
        vec![
            json!({"request": {"method": "GET", "url": "Patient/B"}}),
            json!({"request": {"method": "GET", "url": "Condition?patient=A"}}),
            json!({"request": {"method": "GET", "url": "Observation?code=x"}}),
            json!({"request": {"method": "GET", "url": "Patient/B/Observation"}}),
        ],
    );
    let auth = authorize(&a, &mut r).unwrap();
    let sent = r.body.as_ref().unwrap()["entry"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        sent.len(),
        2,
        "the refused and the empty entry are answered by the facade"
    );
    assert_eq!(sent[1]["request"]["url"], "Patient/A/Observation?code=x");
    let mut resp = FhirResponse::ok(
        json!({"resourceType": "Bundle", "type": "batch-response", "entry": [
            {"resource": patient("B"), "response": {"status": "200 OK"}},
            {"resource": {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [entry(obs("o1", "A", LAB), "match")]}, "response": {"status": "200 OK"}},
        ]}),
    );
    filter_response(&a, &auth, &mut resp).unwrap();
    let es = resp.body.as_ref().unwrap()["entry"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(es.len(), 4);
    assert!(es[0]["response"]["status"]
        .as_str()
        .unwrap()
        .starts_with("404"));
    assert!(es[0].get("resource").is_none());
    assert!(es[1]["response"]["status"]
        .as_str()
        .unwrap()
        .starts_with("403"));
    assert_eq!(es[2]["resource"]["entry"][0]["resource"]["id"], "o1");
    assert_eq!(es[3]["resource"]["total"], 0);
}

#[test]
fn a_refused_entry_refuses_the_whole_transaction() {
    let a = caller("patient/Observation.cruds", Some("A"));
    let mut r = bundle(
        "transaction",
        vec![
            json!({"resource": obs("n1", "A", LAB), "request": {"method": "POST", "url": "Observation"}}),
            json!({"resource": obs("n2", "B", LAB), "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let e = authorize(&a, &mut r).unwrap_err();
    assert_eq!(e.status, StatusCode::FORBIDDEN);
    assert!(e.message.contains("entry[1]"), "{}", e.message);
    let mut r = bundle(
        "transaction",
        vec![
            json!({"resource": obs("n1", "A", LAB), "request": {"method": "PUT", "url": "Observation/n1"}}),
        ],
    );
    let auth = authorize(&a, &mut r).unwrap();
    assert_eq!(auth.verify_existing.len(), 1);
}
