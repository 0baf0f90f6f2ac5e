//! De-identified search (issue 12), in process on the embedded store: a
//! client registered for secondary use searches a type with
//! `_anonymizationConfig` and gets consent-judged, research-gated,
//! de-identified answers (no identifier, no real id, pseudonyms stable per
//! key, paging links that keep the profile, no `total`), may ask only
//! parameters that cannot probe identified data, and gets nothing but
//! de-identified data (reads, writes, plain exports: 403). The ledger never
//! records a research-gated patient as disclosed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use base64::{engine::general_purpose::STANDARD, Engine};
use common::{TestApp, TestResponse};
use serde_json::{json, Value};

const CONFIG: &str = r#"
[deid]
research_consent = "opt-out"
[deid.key_sets.k1]
[deid.clients.researcher]
purposes = ["HRESCH"]
key_sets = ["k1"]
[consent]
exempt_clients = ["test-client"]
"#;
const HRESCH: (&str, &str) = ("x-purpose-of-use", "HRESCH");

struct World {
    t: TestApp,
    researcher: String,
}

fn obs(id: &str, patient: &str, when: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": format!("Patient/{patient}"), "display": "Wexley Quorra"},
        "effectiveDateTime": when, "valueQuantity": {"value": 7.1, "unit": "%"}})
}

async fn world() -> World {
    let t = TestApp::with_config(CONFIG).await;
    for r in [
        json!({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-02-03",
            "name": [{"family": "Wexley", "given": ["Quorra"]}],
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "987-65-4329"}]}),
        json!({"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1960-07-08",
            "name": [{"family": "Optedout"}]}),
        obs("o1", "p1", "2024-03-05T10:00:00Z"),
        obs("o2", "p1", "2024-04-05T10:00:00Z"),
        obs("o3", "p2", "2024-05-05T10:00:00Z"),
    ] {
        let path = format!(
            "/fhir/{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        assert!(t.put(&path, &r).await.status.is_success());
    }
    // p2 keeps their data out of research
    let pat = t.patient_token("p2").await;
    let c = json!({"resourceType": "Consent", "id": "p2-research", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p2"}, "performer": [{"reference": "Patient/p2"}],
        "provision": {"type": "deny"}});
    let r = t
        .request_with(
            &pat,
            Method::PUT,
            "/fhir/Consent/p2-research",
            &[],
            Some(&c),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let researcher = t
        .token_as("researcher", "system/*.rs", None, None, None, None)
        .await;
    World { t, researcher }
}

impl World {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.t
            .request_with(&self.researcher, Method::GET, path, headers, None)
            .await
    }

    /// The pseudonym of `id` in this client's searches (no key set named).
    fn pseudonym(&self, id: &str) -> String {
        let reg = &self.t.app.bulk.deid;
        fhirgate::deid::Deidentifier::new(
            reg.profile("safe-harbor").unwrap(),
            reg.search_key("researcher").unwrap(),
            true,
            time::OffsetDateTime::now_utc().date(),
        )
        .pseudonym(id)
    }
}

fn resources(b: &Value) -> Vec<&Value> {
    b["entry"]
        .as_array()
        .map(|es| es.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_search_answers_de_identified_and_research_gated() {
    let w = world().await;
    let ledger = fhirgate::audit::Ledger::new(w.t.app.state.clone());
    // what the world's writes recorded comes before
    let before = ledger.size().await.unwrap();
    let r = w
        .get(
            "/fhir/Observation?code=4548-4&_anonymizationConfig=safe-harbor",
            &[HRESCH],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    for secret in [
        "Wexley",
        "Quorra",
        "o1",
        "o2",
        "Patient/p1",
        "2024-03-05",
        "p2",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(r.json.get("total").is_none(), "total would count the gated");
    let obs = resources(&r.json);
    assert_eq!(obs.len(), 2, "p1's two Observations, p2 kept out: {text}");
    let p1 = w.pseudonym("p1");
    for o in &obs {
        assert_eq!(o["subject"]["reference"], format!("Patient/{p1}"));
        assert_eq!(o["effectiveDateTime"], "2024");
        assert_eq!(o["code"]["coding"][0]["code"], "4548-4");
        assert!(o["meta"]["security"].to_string().contains("PSEUDED"));
    }
    for e in r.json["entry"].as_array().unwrap() {
        let full = e["fullUrl"].as_str().unwrap();
        assert!(full.ends_with(&format!(
            "/Observation/{}",
            e["resource"]["id"].as_str().unwrap()
        )));
    }
    // the same search again: the same pseudonyms (this client's own key)
    let again = w
        .get(
            "/fhir/Observation?code=4548-4&_anonymizationConfig=safe-harbor",
            &[HRESCH],
        )
        .await;
    assert_eq!(resources(&again.json), obs);
    // a named key set: that key's pseudonyms
    let k1 = w
        .get(
            "/fhir/Observation?code=4548-4&_anonymizationConfig=safe-harbor&_anonymizationKeySet=k1",
            &[HRESCH],
        )
        .await;
    assert_eq!(k1.status, StatusCode::OK, "{}", k1.text());
    let reg = &w.t.app.bulk.deid;
    let k1_p1 = fhirgate::deid::Deidentifier::new(
        reg.profile("safe-harbor").unwrap(),
        reg.named_key("k1").unwrap(),
        true,
        time::OffsetDateTime::now_utc().date(),
    )
    .pseudonym("p1");
    assert_ne!(k1_p1, p1);
    assert_eq!(
        resources(&k1.json)[0]["subject"]["reference"],
        format!("Patient/{k1_p1}")
    );
    // year-precision dates may be searched; the research gate applies to Patients too
    let pats = w
        .get(
            "/fhir/Patient?birthdate=ge1940&_anonymizationConfig=safe-harbor",
            &[HRESCH],
        )
        .await;
    assert_eq!(pats.status, StatusCode::OK, "{}", pats.text());
    let ps = resources(&pats.json);
    assert_eq!(ps.len(), 1, "{}", pats.text());
    assert_eq!(ps[0]["id"], p1.as_str());
    assert_eq!(ps[0]["birthDate"], "1950");
    assert!(ps[0].get("name").is_none() && ps[0].get("identifier").is_none());

    // the ledger: p1 disclosed for HRESCH, p2 never
    let seq: u64 = pats.header("x-ledger-seq").unwrap().parse().unwrap();
    let rows = ledger.entries(before, seq + 1).await.unwrap();
    assert!(!rows.is_empty());
    let released = |patient: &str| -> u64 {
        let pz = w.t.app.audit.pseudonym(&format!("Patient/{patient}"));
        rows.iter()
            .map(|r| serde_json::from_str::<Value>(&r.entry).unwrap())
            .filter(|v| v["kind"] == "rest" && v["patient"] == pz.as_str())
            .map(|v| v["refs"]["n"].as_u64().unwrap_or(0))
            .sum()
    };
    assert!(released("p1") > 0);
    assert_eq!(
        released("p2"),
        0,
        "a research-gated patient is not disclosed"
    );
    // the search's AuditEvent names the purpose and the profile
    let auditor =
        w.t.token_as("auditor", "system/AuditEvent.rs", None, None, None, None)
            .await;
    let mut named = false;
    for s in seq.saturating_sub(4)..=seq {
        let ev =
            w.t.request_with(
                &auditor,
                Method::GET,
                &format!("/fhir/AuditEvent/{s}"),
                &[],
                None,
            )
            .await;
        let queries: Vec<String> = ev.json["entity"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["query"].as_str())
            .map(|q| String::from_utf8(STANDARD.decode(q).unwrap()).unwrap())
            .collect();
        named |= ev.json["purposeOfEvent"].to_string().contains("HRESCH")
            && queries
                .iter()
                .any(|q| q.contains("_anonymizationConfig=safe-harbor"));
    }
    assert!(
        named,
        "the search's AuditEvent names the profile and purpose"
    );
}

#[tokio::test]
async fn paging_links_keep_the_profile() {
    let w = world().await;
    let r = w
        .get(
            "/fhir/Observation?code=4548-4&_count=1&_anonymizationConfig=safe-harbor",
            &[HRESCH],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let first = resources(&r.json);
    let next = r.json["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .expect("a next link")
        .to_owned();
    assert!(next.contains("_anonymizationConfig=safe-harbor"), "{next}");
    let path = next.strip_prefix("http://fhirgate.test").unwrap();
    let page2 = w.get(path, &[HRESCH]).await;
    assert_eq!(page2.status, StatusCode::OK, "{}", page2.text());
    let second = resources(&page2.json);
    assert!(!page2.text().contains("Wexley"));
    let ids: Vec<&Value> = first
        .iter()
        .chain(second.iter())
        .map(|r| &r["id"])
        .collect();
    assert!(
        !second.is_empty() && ids[0] != ids[ids.len() - 1],
        "{ids:?}"
    );
}

/// A request path, its headers and the status it must get.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    StatusCode,
);

#[tokio::test]
async fn a_secondary_use_client_gets_nothing_identified() {
    let w = world().await;
    let cases: &[Case] = &[
        ("/fhir/Patient/p1", &[HRESCH], StatusCode::FORBIDDEN),
        (
            "/fhir/Patient/p1/_history",
            &[HRESCH],
            StatusCode::FORBIDDEN,
        ),
        (
            "/fhir/Patient/p1/Observation?_anonymizationConfig=safe-harbor",
            &[HRESCH],
            StatusCode::FORBIDDEN,
        ),
        (
            "/fhir/Observation?code=4548-4",
            &[HRESCH],
            StatusCode::FORBIDDEN,
        ),
        (
            "/fhir/Observation?code=4548-4&_anonymizationConfig=safe-harbor",
            &[],
            StatusCode::FORBIDDEN,
        ),
        (
            "/fhir/Observation?code=4548-4&_anonymizationConfig=nope",
            &[HRESCH],
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/Patient?name=Wexley&_anonymizationConfig=safe-harbor",
            &[HRESCH],
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/Patient?identifier=987-65-4329&_anonymizationConfig=safe-harbor",
            &[HRESCH],
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/Patient?birthdate=1950-02-03&_anonymizationConfig=safe-harbor",
            &[HRESCH],
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/Patient?_id=p1&_anonymizationConfig=safe-harbor",
            &[HRESCH],
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/Observation?subject=Patient/p1&_anonymizationConfig=safe-harbor",
            &[HRESCH],
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/Observation?_include=Observation:subject&_anonymizationConfig=safe-harbor",
            &[HRESCH],
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, headers, want) in cases {
        let r = w.get(path, headers).await;
        assert_eq!(r.status, *want, "{path}: {}", r.text());
        assert_eq!(r.json["resourceType"], "OperationOutcome", "{path}");
        assert!(!r.text().contains("Wexley"), "{path}");
    }
    // a plain export: 403; a write: 403
    let r =
        w.t.request_with(
            &w.researcher,
            Method::GET,
            "/fhir/$export",
            &[("prefer", "respond-async"), HRESCH],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r =
        w.t.request_with(
            &w.researcher,
            Method::PUT,
            "/fhir/Patient/p1",
            &[HRESCH],
            Some(&json!({"resourceType": "Patient", "id": "p1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // an ordinary client is not affected by the de-identification rules
    let plain = w.t.get("/fhir/Patient?name=Wexley").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.text().contains("Wexley"));
}
