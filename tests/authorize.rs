//! Scope enforcement end to end over the embedded store (issue 3 item 6):
//! hand-built AccessContexts (no tokens), requests run through
//! `pipeline::authorize::route_as` (authorize → route → filter), data
//! written straight into the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{match_ids, TestApp};
use fhirgate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::authorize::route_as,
};
use serde_json::{json, Value};
use smart_launch::{context::AccessContext, scope::ScopeSet};

const CAT: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

fn caller(scopes: &str, patient: Option<&str>) -> AccessContext {
    AccessContext {
        client_id: "app".into(),
        scopes: ScopeSet::parse(scopes).unwrap(),
        patient: patient.map(str::to_owned),
        encounter: None,
        fhir_user: None,
        role: None,
        jti: "j".into(),
        expires_at: 0,
        purpose_of_use: None,
        organization: None,
        assurance: Default::default(),
    }
}

fn request(method: Method, path_query: &str, body: Option<Value>) -> FhirRequest {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut r = FhirRequest::route(&method, &segs).unwrap();
    r.params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    r.body = body;
    r
}

async fn put(t: &TestApp, body: Value) {
    let path = format!(
        "{}/{}",
        body["resourceType"].as_str().unwrap(),
        body["id"].as_str().unwrap()
    );
    let mut r = request(Method::PUT, &path, Some(body));
    r.interaction = Interaction::Update;
    t.app
        .upstream
        .execute(&r, &t.app.request_context("seed"))
        .await
        .unwrap();
}

fn obs(id: &str, patient: &str, cat: &str, code: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": CAT, "code": cat}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")}})
}

/// Patients pa (Ann Alpha) and pb (Bob Bravo), each with a lab and a vitals
/// Observation, and a Provenance for each patient.
async fn seeded() -> TestApp {
    let t = TestApp::new().await;
    for (id, family) in [("pa", "Alpha"), ("pb", "Bravo")] {
        put(
            &t,
            json!({"resourceType": "Patient", "id": id, "name": [{"family": family}]}),
        )
        .await;
        put(&t, obs(&format!("{id}-lab"), id, "laboratory", "1234-5")).await;
        put(&t, obs(&format!("{id}-vit"), id, "vital-signs", "8867-4")).await;
        put(&t, json!({"resourceType": "Provenance", "id": format!("{id}-prov"),
            "target": [{"reference": format!("Patient/{id}")}], "patient": {"reference": format!("Patient/{id}")},
            "recorded": "2024-01-01T00:00:00Z", "agent": [{"who": {"display": "x"}}]})).await;
    }
    t
}

async fn run(
    t: &TestApp,
    c: &AccessContext,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> FhirResult<FhirResponse> {
    route_as(
        &t.app,
        c,
        request(method, path, body),
        &t.app.request_context("t"),
        &mut fhirgate::pipeline::Disclosure::default(),
    )
    .await
}

async fn get(t: &TestApp, c: &AccessContext, path: &str) -> FhirResult<FhirResponse> {
    run(t, c, Method::GET, path, None).await
}

async fn ids(t: &TestApp, c: &AccessContext, path: &str) -> Vec<String> {
    let b = get(t, c, path).await.unwrap().body.unwrap();
    let mut all: Vec<String> = b["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}

#[tokio::test]
async fn patient_a_cannot_reach_patient_b_on_any_path() {
    let t = seeded().await;
    let a = caller("patient/*.rs", Some("pa"));
    // by id
    assert_eq!(
        get(&t, &a, "Patient/pb").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&t, &a, "Observation/pb-lab").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&t, &a, "Observation/pb-lab/_history")
            .await
            .unwrap_err()
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(get(&t, &a, "Patient/pa").await.is_ok());
    // by search, with and without a patient parameter
    assert_eq!(
        ids(&t, &a, "Observation?patient=pb").await,
        Vec::<String>::new()
    );
    assert_eq!(ids(&t, &a, "Observation").await, ["pa-lab", "pa-vit"]);
    assert_eq!(
        ids(&t, &a, "Patient/pb/Observation").await,
        Vec::<String>::new()
    );
    // by chained search
    assert_eq!(
        ids(&t, &a, "Observation?patient.name=Bravo").await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&t, &a, "Observation?patient.name=Alpha").await,
        ["pa-lab", "pa-vit"]
    );
    // by _include and _revinclude
    assert_eq!(
        ids(&t, &a, "Observation?_include=Observation:subject").await,
        ["pa", "pa-lab", "pa-vit"]
    );
    assert_eq!(
        ids(&t, &a, "Patient?_revinclude=Provenance:target").await,
        ["pa", "pa-prov"]
    );
    // by _has
    assert_eq!(
        ids(&t, &a, "Patient?_has:Observation:patient:code=1234-5").await,
        ["pa"]
    );
    // via $everything on B
    assert_eq!(
        get(&t, &a, "Patient/pb/$everything")
            .await
            .unwrap_err()
            .status,
        StatusCode::NOT_FOUND
    );
    let every = ids(&t, &a, "Patient/pa/$everything").await;
    assert!(every.iter().all(|i| i.starts_with("pa")), "{every:?}");
    // via a batch entry
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/pb"}},
        {"request": {"method": "GET", "url": "Observation?patient=pb"}},
    ]});
    let b = run(&t, &a, Method::POST, "", Some(batch))
        .await
        .unwrap()
        .body
        .unwrap();
    assert!(
        b["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("404"),
        "{b}"
    );
    assert!(match_ids(&b["entry"][1]["resource"]).is_empty(), "{b}");
}

#[tokio::test]
async fn granular_search_is_exactly_the_filtered_result() {
    let t = seeded().await;
    let lab = caller(
        &format!("patient/Observation.rs?category={CAT}|laboratory patient/Patient.rs"),
        Some("pa"),
    );
    let b = get(&t, &lab, "Observation").await.unwrap().body.unwrap();
    assert_eq!(match_ids(&b), ["pa-lab"]);
    assert_eq!(b["total"], 1);
    let b = get(&t, &lab, "Observation?_summary=count")
        .await
        .unwrap()
        .body
        .unwrap();
    assert_eq!(b["total"], 1);
    assert_eq!(
        get(&t, &lab, "Observation/pa-vit")
            .await
            .unwrap_err()
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(get(&t, &lab, "Observation/pa-lab").await.is_ok());
    let both = caller(&format!("patient/Observation.rs?category={CAT}|laboratory patient/Observation.rs?category={CAT}|vital-signs"), Some("pa"));
    let b = get(&t, &both, "Observation").await.unwrap().body.unwrap();
    assert_eq!(b["total"], 2);
}

#[tokio::test]
async fn refusals_are_403_with_an_operation_outcome() {
    let t = seeded().await;
    let a = caller("patient/Observation.rs", Some("pa"));
    let e = get(&t, &a, "Condition").await.unwrap_err();
    assert_eq!(e.status, StatusCode::FORBIDDEN);
    assert_eq!(e.outcome(None)["issue"][0]["code"], "forbidden");
    // includes of a type not granted are removed, never leaked
    assert_eq!(
        ids(&t, &a, "Observation?_include=Observation:subject").await,
        ["pa-lab", "pa-vit"]
    );
    // writes aimed at B's data, even with a body naming A
    let w = caller("patient/Observation.cruds", Some("pa"));
    let e = run(
        &t,
        &w,
        Method::PUT,
        "Observation/pb-lab",
        Some(obs("pb-lab", "pa", "laboratory", "1")),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status, StatusCode::FORBIDDEN);
    let e = run(&t, &w, Method::DELETE, "Observation/pb-lab", None)
        .await
        .unwrap_err();
    assert_eq!(e.status, StatusCode::FORBIDDEN);
    assert!(get(&t, &caller("system/*.rs", None), "Observation/pb-lab")
        .await
        .is_ok());
    assert!(run(
        &t,
        &w,
        Method::PUT,
        "Observation/pa-lab",
        Some(obs("pa-lab", "pa", "laboratory", "2"))
    )
    .await
    .is_ok());
}

#[tokio::test]
async fn clinicians_and_patient_users() {
    let t = seeded().await;
    let mut clin = caller("user/*.rs", None);
    clin.role = Some("clinician".into());
    clin.fhir_user = Some("Practitioner/dr".into());
    assert_eq!(ids(&t, &clin, "Observation").await.len(), 4);
    let mut pat = caller("user/*.rs", None);
    pat.role = Some("patient".into());
    pat.fhir_user = Some("Patient/pb".into());
    assert_eq!(ids(&t, &pat, "Observation").await, ["pb-lab", "pb-vit"]);
    assert_eq!(
        get(&t, &pat, "Patient/pa").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
}

/// The same rules through the real HTTP path: a patient token minted like the
/// token endpoint's, sent as a bearer token.
#[tokio::test]
async fn patient_tokens_are_confined_over_http() {
    use axum::http::{Method, StatusCode};
    let t = TestApp::new().await;
    let mut ids = Vec::new();
    for family in ["Able", "Baker"] {
        ids.push(
            t.create(json!({"resourceType": "Patient", "name": [{"family": family}]}))
                .await,
        );
    }
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let obs = |p: &str| json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}});
    let oa = t.create(obs(&a)).await;
    let ob = t.create(obs(&b)).await;
    let token = t.token_for("patient/*.cruds", Some(&a), None, None).await;
    let auth = format!("Bearer {token}");
    let h = [("authorization", auth.as_str())];
    let get = |path: String| {
        let t = &t;
        async move { t.request(Method::GET, &path, &h, None).await }
    };
    assert_eq!(
        get(format!("/fhir/Observation/{oa}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(format!("/fhir/Observation/{ob}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(format!("/fhir/Patient/{b}")).await.status,
        StatusCode::NOT_FOUND
    );
    let s = get(format!("/fhir/Observation?patient={b}")).await;
    assert_eq!(match_ids(&s.json), Vec::<String>::new(), "{}", s.text());
    let s = get("/fhir/Observation?_include=Observation:subject".to_owned()).await;
    let text = s.text();
    assert!(
        text.contains(&oa) && !text.contains(&ob) && !text.contains(&format!("Patient/{b}\"")),
        "{text}"
    );
    let s = get("/fhir/Observation?patient.name=Baker".to_owned()).await;
    assert!(match_ids(&s.json).is_empty(), "{}", s.text());
    // Writes aimed at B's data are refused, whatever the body says.
    let mut hijack = obs(&a);
    hijack["id"] = json!(ob);
    let r = t
        .send_json(Method::PUT, &format!("/fhir/Observation/{ob}"), &hijack, &h)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = t
        .request(Method::DELETE, &format!("/fhir/Observation/{ob}"), &h, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(
        t.get(&format!("/fhir/Observation/{ob}")).await.status,
        StatusCode::OK,
        "B's data is intact"
    );
    // A type never granted is 403, never an empty 200.
    let narrow = t
        .token_for("patient/Observation.rs", Some(&a), None, None)
        .await;
    let r = t
        .request(
            Method::GET,
            "/fhir/Condition",
            &[("authorization", &format!("Bearer {narrow}"))],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
}
