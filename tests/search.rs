//! Search over the embedded store, through the HTTP facade: every parameter
//! type, prefix and modifier, chaining, `_has`, includes, sorting, paging,
//! `_summary`, `_elements`, `_total`, unknown-parameter handling, system and
//! compartment search, and the conditional interactions built on search.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use common::{match_ids, TestApp, BASE};
use serde_json::{json, Value};

const LOINC: &str = "http://loinc.org";
const CAT: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// Percent-encodes what a client would in a query (`|`, `+`, spaces).
fn enc(path: &str) -> String {
    path.replace('|', "%7C")
        .replace('+', "%2B")
        .replace(' ', "%20")
}

async fn ids(t: &TestApp, path: &str) -> Vec<String> {
    let r = t.get(&enc(path)).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    assert_eq!(r.json["type"], "searchset");
    let mut v = match_ids(&r.json);
    v.sort();
    v
}

fn sorted(v: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).clone()).collect();
    v.sort();
    v
}

fn obs(patient: &str, code: &str, cat: &str, date: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": CAT, "code": cat, "display": cat}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": format!("Test {code}")}], "text": "Glucose test"},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": date,
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "mg/dL", "unit": "mg/dL"}
    })
}

struct World {
    t: TestApp,
    ann: String,
    bob: String,
    zoe: String,
    o1: String,
    o2: String,
    o3: String,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let org = t
        .create(json!({"resourceType": "Organization", "name": "Acme Health"}))
        .await;
    let ann = t.create(json!({
        "resourceType": "Patient", "active": true, "gender": "female", "birthDate": "1980-05-01",
        "meta": {"tag": [{"system": "http://t", "code": "vip"}], "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [{"system": "http://mrn", "value": "M-1"}],
        "name": [{"family": "Núñez", "given": ["Ann", "Marie"]}],
        "telecom": [{"system": "email", "value": "ann@example.org"}, {"system": "phone", "value": "555-0100"}],
        "address": [{"city": "Springfield", "state": "IL", "postalCode": "62701"}],
        "managingOrganization": {"reference": format!("Organization/{org}")}
    })).await;
    let bob = t
        .create(json!({
            "resourceType": "Patient", "active": false, "gender": "male", "birthDate": "1975-12-24",
            "identifier": [{"system": "http://mrn", "value": "M-2"}],
            "name": [{"family": "Smith", "given": ["Bob"]}],
            "address": [{"city": "Shelbyville"}]
        }))
        .await;
    let zoe = t
        .create(json!({
            "resourceType": "Patient", "gender": "female", "birthDate": "2001",
            "name": [{"family": "Smithers", "given": ["Zoe"]}], "deceasedDateTime": "2020-01-02"
        }))
        .await;
    let o1 = t
        .create(obs(
            &ann,
            "2345-7",
            "laboratory",
            "2020-03-04T10:00:00Z",
            5.4,
        ))
        .await;
    let o2 = t
        .create(obs(&ann, "8867-4", "vital-signs", "2021-06-01", 72.0))
        .await;
    let o3 = t
        .create(obs(
            &bob,
            "2345-7",
            "laboratory",
            "2019-12-31T23:00:00Z",
            110.0,
        ))
        .await;
    World {
        t,
        ann,
        bob,
        zoe,
        o1,
        o2,
        o3,
    }
}

#[tokio::test]
async fn token_forms_and_modifiers() {
    let w = world().await;
    let t = &w.t;
    let both = sorted(&[&w.o1, &w.o3]);
    assert_eq!(ids(t, "/fhir/Observation?code=2345-7").await, both);
    assert_eq!(
        ids(t, &format!("/fhir/Observation?code={LOINC}|2345-7")).await,
        both
    );
    assert!(ids(t, "/fhir/Observation?code=http://other|2345-7")
        .await
        .is_empty());
    assert!(
        ids(t, "/fhir/Observation?code=|2345-7").await.is_empty(),
        "|code means no system"
    );
    assert_eq!(
        ids(t, &format!("/fhir/Observation?code={LOINC}|"))
            .await
            .len(),
        3
    );
    assert_eq!(
        ids(t, "/fhir/Observation?code=2345-7,8867-4").await.len(),
        3,
        "comma is OR"
    );
    assert_eq!(
        ids(t, "/fhir/Observation?category=laboratory&code=8867-4").await,
        Vec::<String>::new(),
        "repeat is AND"
    );
    assert_eq!(
        ids(t, "/fhir/Observation?category:not=laboratory").await,
        vec![w.o2.clone()]
    );
    assert_eq!(ids(t, "/fhir/Observation?code:text=glucose").await.len(), 3);
    assert_eq!(
        ids(t, "/fhir/Observation?category:text=vital").await,
        vec![w.o2.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?identifier=http://mrn|M-1").await,
        vec![w.ann.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?identifier=M-2").await,
        vec![w.bob.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?email=ann@example.org").await,
        vec![w.ann.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?telecom=555-0100").await,
        vec![w.ann.clone()]
    );
    assert!(ids(t, "/fhir/Patient?email=555-0100").await.is_empty());
    assert_eq!(
        ids(t, "/fhir/Patient?active=false").await,
        vec![w.bob.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?gender=female").await,
        sorted(&[&w.ann, &w.zoe])
    );
    assert_eq!(
        ids(t, "/fhir/Patient?active:missing=true").await,
        vec![w.zoe.clone()]
    );
    assert_eq!(ids(t, "/fhir/Patient?active:missing=false").await.len(), 2);
    assert_eq!(
        ids(t, "/fhir/Patient?_tag=http://t|vip").await,
        vec![w.ann.clone()]
    );
}

#[tokio::test]
async fn string_matching() {
    let w = world().await;
    let t = &w.t;
    assert_eq!(
        ids(t, "/fhir/Patient?family=smith").await,
        sorted(&[&w.bob, &w.zoe]),
        "prefix, case-insensitive"
    );
    assert_eq!(
        ids(t, "/fhir/Patient?family:exact=Smith").await,
        vec![w.bob.clone()]
    );
    assert!(ids(t, "/fhir/Patient?family:exact=smith").await.is_empty());
    assert_eq!(
        ids(t, "/fhir/Patient?family=nunez").await,
        vec![w.ann.clone()],
        "accents folded"
    );
    assert_eq!(
        ids(t, "/fhir/Patient?name:contains=ITHER").await,
        vec![w.zoe.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?name=marie").await,
        vec![w.ann.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?given=bob,zoe").await,
        sorted(&[&w.bob, &w.zoe])
    );
    assert_eq!(
        ids(t, "/fhir/Patient?address-city=spring").await,
        vec![w.ann.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?address=62701").await,
        vec![w.ann.clone()]
    );
    assert_eq!(ids(t, "/fhir/Organization?name=acme").await.len(), 1);
}

#[tokio::test]
async fn date_precision_and_prefixes() {
    let w = world().await;
    let t = &w.t;
    let p = |q: &str| format!("/fhir/Patient?birthdate={q}");
    assert_eq!(ids(t, &p("1980")).await, vec![w.ann.clone()]);
    assert_eq!(ids(t, &p("1980-05")).await, vec![w.ann.clone()]);
    assert_eq!(ids(t, &p("eq1980-05-01")).await, vec![w.ann.clone()]);
    assert!(ids(t, &p("1980-05-02")).await.is_empty());
    assert_eq!(ids(t, &p("ne1980-05-01")).await, sorted(&[&w.bob, &w.zoe]));
    assert_eq!(ids(t, &p("lt1980-05-01")).await, vec![w.bob.clone()]);
    assert_eq!(ids(t, &p("le1980-05-01")).await, sorted(&[&w.ann, &w.bob]));
    assert_eq!(ids(t, &p("gt1980-05-01")).await, vec![w.zoe.clone()]);
    assert_eq!(ids(t, &p("ge1980-05-01")).await, sorted(&[&w.ann, &w.zoe]));
    assert_eq!(ids(t, &p("sa1980")).await, vec![w.zoe.clone()]);
    assert_eq!(ids(t, &p("eb1980")).await, vec![w.bob.clone()]);
    assert!(
        ids(t, &p("2001-06")).await.is_empty(),
        "a year-precision birthDate is not within one month"
    );
    assert_eq!(ids(t, &p("ge2001-06")).await, vec![w.zoe.clone()]);
    assert_eq!(
        ids(t, &p("ge1975&birthdate=lt1981")).await,
        sorted(&[&w.ann, &w.bob])
    );
    assert_eq!(
        ids(t, "/fhir/Patient?death-date=2020").await,
        vec![w.zoe.clone()]
    );
    let o = |q: &str| format!("/fhir/Observation?date={q}");
    assert_eq!(ids(t, &o("2020-03-04")).await, vec![w.o1.clone()]);
    assert_eq!(ids(t, &o("2020-03-04T10:00")).await, vec![w.o1.clone()]);
    assert_eq!(
        ids(t, &o("2020-03-04T12:00:00+02:00")).await,
        vec![w.o1.clone()]
    );
    assert_eq!(ids(t, &o("lt2020")).await, vec![w.o3.clone()]);
    assert_eq!(
        ids(t, &o("ge2020-01-01&date=lt2022")).await,
        sorted(&[&w.o1, &w.o2])
    );
    // Periods: an open-ended Encounter period overlaps everything after its start.
    let enc = t.create(json!({"resourceType": "Encounter", "status": "in-progress", "class": {"code": "AMB"},
        "subject": {"reference": format!("Patient/{}", w.ann)}, "period": {"start": "2022-01-10T08:00:00Z"}})).await;
    assert_eq!(
        ids(t, "/fhir/Encounter?date=ge2023").await,
        vec![enc.clone()]
    );
    assert!(ids(t, "/fhir/Encounter?date=lt2022-01-10").await.is_empty());
    assert!(
        ids(t, "/fhir/Encounter?date=2022-01-10").await.is_empty(),
        "an open period is not within one day"
    );
    assert_eq!(
        ids(t, "/fhir/Encounter?date=sa2021&class=AMB").await,
        vec![enc]
    );
}

#[tokio::test]
async fn malformed_values_are_400() {
    let w = world().await;
    for q in [
        "Patient?birthdate=xx1980",
        "Patient?birthdate=1980-13-01",
        "Patient?birthdate=soon",
        "Observation?value-quantity=lots",
        "Observation?_sort=nonsense",
        "Patient?_count=abc",
        "Patient?gender:exact=female",
        "Observation?subject:Organization=1",
        "Patient?active:missing=maybe",
    ] {
        let r = w.t.get(&enc(&format!("/fhir/{q}"))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text());
        assert_eq!(r.json["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn quantity_prefixes_and_units() {
    let w = world().await;
    let t = &w.t;
    let q = |v: &str| format!("/fhir/Observation?value-quantity={v}");
    assert_eq!(ids(t, &q("5.4")).await, vec![w.o1.clone()]);
    assert_eq!(ids(t, &q("5.38")).await, Vec::<String>::new());
    assert_eq!(
        ids(t, &q("5")).await,
        vec![w.o1.clone()],
        "5 means [4.5, 5.5)"
    );
    assert_eq!(ids(t, &q("gt72")).await, vec![w.o3.clone()]);
    assert_eq!(ids(t, &q("ge72")).await, sorted(&[&w.o2, &w.o3]));
    assert_eq!(ids(t, &q("lt72")).await, vec![w.o1.clone()]);
    assert_eq!(ids(t, &q("le72")).await, sorted(&[&w.o1, &w.o2]));
    assert_eq!(ids(t, &q("ne72")).await, sorted(&[&w.o1, &w.o3]));
    assert_eq!(ids(t, &q("ap100")).await, vec![w.o3.clone()]);
    assert_eq!(
        ids(t, &q("110|http://unitsofmeasure.org|mg/dL")).await,
        vec![w.o3.clone()]
    );
    assert_eq!(ids(t, &q("110||mg/dL")).await, vec![w.o3.clone()]);
    assert!(ids(t, &q("110||mmol/L")).await.is_empty());
    assert_eq!(
        ids(t, "/fhir/Observation?value-quantity:missing=false")
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn references_chains_and_has() {
    let w = world().await;
    let t = &w.t;
    let anns = sorted(&[&w.o1, &w.o2]);
    assert_eq!(
        ids(t, &format!("/fhir/Observation?patient={}", w.ann)).await,
        anns
    );
    assert_eq!(
        ids(t, &format!("/fhir/Observation?patient=Patient/{}", w.ann)).await,
        anns
    );
    assert_eq!(
        ids(
            t,
            &format!("/fhir/Observation?subject={BASE}/Patient/{}", w.ann)
        )
        .await,
        anns
    );
    assert_eq!(
        ids(t, &format!("/fhir/Observation?subject:Patient={}", w.ann)).await,
        anns
    );
    assert_eq!(
        ids(t, &format!("/fhir/Observation?subject={},{}", w.ann, w.bob))
            .await
            .len(),
        3
    );
    assert!(ids(t, "/fhir/Observation?patient=nobody").await.is_empty());
    assert!(
        ids(t, &format!("/fhir/Observation?patient={}x", w.ann))
            .await
            .is_empty(),
        "ids never match as prefixes"
    );
    assert_eq!(
        ids(t, "/fhir/Observation?patient.family=smith").await,
        vec![w.o3.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Observation?subject:Patient.family=nunez").await,
        anns
    );
    assert_eq!(
        ids(
            t,
            "/fhir/Observation?patient.identifier=http://mrn|M-2&code=2345-7"
        )
        .await,
        vec![w.o3.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?organization.name=acme").await,
        vec![w.ann.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?_has:Observation:patient:code=8867-4").await,
        vec![w.ann.clone()]
    );
    assert_eq!(
        ids(
            t,
            "/fhir/Patient?_has:Observation:subject:category=laboratory"
        )
        .await,
        sorted(&[&w.ann, &w.bob])
    );
    assert_eq!(
        ids(t, "/fhir/Patient?organization:missing=true").await,
        sorted(&[&w.bob, &w.zoe])
    );
    let cov = t
        .create(json!({"resourceType": "Coverage", "status": "active",
        "beneficiary": {"reference": format!("Patient/{}", w.bob)},
        "payor": [{"identifier": {"system": "http://payers", "value": "P-9"}}]}))
        .await;
    assert_eq!(
        ids(t, "/fhir/Coverage?payor:identifier=http://payers|P-9").await,
        vec![cov.clone()]
    );
    assert_eq!(
        ids(
            t,
            &format!("/fhir/Coverage?beneficiary={}&status=active", w.bob)
        )
        .await,
        vec![cov]
    );
    let qr = t.create(json!({"resourceType": "QuestionnaireResponse", "status": "completed",
        "questionnaire": "http://example.org/Questionnaire/q1|1.0", "subject": {"reference": format!("Patient/{}", w.ann)}})).await;
    assert_eq!(
        ids(
            t,
            "/fhir/QuestionnaireResponse?questionnaire=http://example.org/Questionnaire/q1"
        )
        .await,
        vec![qr]
    );
    let q = t.create(json!({"resourceType": "Questionnaire", "status": "active", "url": "http://example.org/Questionnaire/q1", "name": "PriorAuthForm"})).await;
    assert_eq!(
        ids(
            t,
            "/fhir/Questionnaire?url=http://example.org/Questionnaire/q1"
        )
        .await,
        vec![q.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Questionnaire?url:below=http://example.org/").await,
        vec![q]
    );
    assert_eq!(ids(t, "/fhir/Patient?_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient").await, vec![w.ann.clone()]);
}

#[tokio::test]
async fn id_last_updated_and_sorting() {
    let w = world().await;
    let t = &w.t;
    assert_eq!(
        ids(t, &format!("/fhir/Patient?_id={},{}", w.ann, w.zoe)).await,
        sorted(&[&w.ann, &w.zoe])
    );
    assert_eq!(
        ids(t, "/fhir/Patient?_lastUpdated=gt2000-01-01")
            .await
            .len(),
        3
    );
    assert!(
        ids(t, "/fhir/Patient?_lastUpdated=lt2000-01-01T00:00:00+00:00")
            .await
            .is_empty()
    );
    let r = t.get(&format!("/fhir/Patient/{}", w.zoe)).await;
    let lu = r.json["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    assert_eq!(
        ids(t, &format!("/fhir/Patient?_lastUpdated=ge{lu}")).await,
        vec![w.zoe.clone()]
    );

    let order = |r: &Value| -> Vec<String> {
        r["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = t.get("/fhir/Patient?_sort=birthdate").await;
    assert_eq!(
        order(&r.json),
        vec![w.bob.clone(), w.ann.clone(), w.zoe.clone()]
    );
    let r = t.get("/fhir/Patient?_sort=-birthdate").await;
    assert_eq!(
        order(&r.json),
        vec![w.zoe.clone(), w.ann.clone(), w.bob.clone()]
    );
    let r = t.get("/fhir/Patient?_sort=gender,-family").await;
    assert_eq!(
        order(&r.json),
        vec![w.zoe.clone(), w.ann.clone(), w.bob.clone()]
    );
    let r = t.get("/fhir/Observation?_sort=code,-date").await;
    assert_eq!(
        order(&r.json),
        vec![w.o1.clone(), w.o3.clone(), w.o2.clone()]
    );
    let r = t.get("/fhir/Patient?_sort=-_lastUpdated").await;
    assert_eq!(
        order(&r.json),
        vec![w.zoe.clone(), w.bob.clone(), w.ann.clone()]
    );
    let mut by_id = vec![w.ann.clone(), w.bob.clone(), w.zoe.clone()];
    by_id.sort();
    let r = t.get("/fhir/Patient?_sort=_id").await;
    assert_eq!(order(&r.json), by_id);
}

#[tokio::test]
async fn paging_follows_next_links_exactly_once() {
    let t = TestApp::new().await;
    let p = t
        .create(json!({"resourceType": "Patient", "name": [{"family": "Pager"}]}))
        .await;
    let mut all = HashSet::new();
    for i in 0..23 {
        let id = t
            .create(obs(
                &p,
                "2345-7",
                "laboratory",
                &format!("2020-01-{:02}", i % 28 + 1),
                f64::from(i),
            ))
            .await;
        all.insert(id);
    }
    let mut seen = Vec::new();
    let mut url = enc(&format!(
        "/fhir/Observation?patient={p}&_count=5&_sort=date"
    ));
    let mut pages = 0;
    loop {
        let r = t.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json["total"], 23);
        seen.extend(match_ids(&r.json));
        pages += 1;
        let links = r.json["link"].as_array().unwrap();
        let find = |rel: &str| {
            links
                .iter()
                .find(|l| l["relation"] == rel)
                .map(|l| l["url"].as_str().unwrap().to_owned())
        };
        assert!(find("self")
            .unwrap()
            .starts_with(&format!("{BASE}/Observation?")));
        assert!(find("first").is_some());
        if pages > 1 {
            assert!(find("previous").is_some());
        }
        match find("next") {
            Some(n) => url = n.strip_prefix("http://fhirgate.test").unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23, "no repeats");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all, "no gaps");

    let r = t.get("/fhir/Observation?_count=0").await;
    assert_eq!(r.json["total"], 23);
    assert!(r.json.get("entry").is_none());
    let r = t.get("/fhir/Observation?_summary=count").await;
    assert_eq!(r.json["total"], 23);
    assert!(r.json.get("entry").is_none());
    let r = t.get("/fhir/Observation?_total=none&_count=30").await;
    assert!(r.json.get("total").is_none());
    assert_eq!(match_ids(&r.json).len(), 23);
    let r = t.get("/fhir/Observation?_total=none&_count=10").await;
    assert!(
        r.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "next"),
        "next is known without a total"
    );
    let r = t.get("/fhir/Observation?_total=accurate&_count=1").await;
    assert_eq!(r.json["total"], 23);
}

#[tokio::test]
async fn summary_and_elements_subset() {
    let w = world().await;
    let r =
        w.t.get(&format!(
            "/fhir/Patient?_id={}&_elements=name,birthDate",
            w.ann
        ))
        .await;
    let p = &r.json["entry"][0]["resource"];
    assert!(p.get("name").is_some() && p.get("birthDate").is_some() && p.get("id").is_some());
    assert!(p.get("gender").is_none() && p.get("telecom").is_none());
    let tags = p["meta"]["tag"].as_array().unwrap();
    assert!(tags.iter().any(|t| t["code"] == "SUBSETTED"
        && t["system"] == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"));
    assert!(r.json["link"][0]["url"]
        .as_str()
        .unwrap()
        .contains("_elements=name%2CbirthDate"));
    let r =
        w.t.get(&format!("/fhir/Observation?_id={}&_elements=value", w.o1))
            .await;
    assert!(
        r.json["entry"][0]["resource"]
            .get("valueQuantity")
            .is_some(),
        "choice elements kept"
    );
    let r =
        w.t.get(&format!("/fhir/Patient?_id={}&_summary=data", w.ann))
            .await;
    assert!(r.json["entry"][0]["resource"].get("gender").is_some());
}

#[tokio::test]
async fn includes_and_revincludes() {
    let w = world().await;
    let t = &w.t;
    let prov = t.create(json!({"resourceType": "Provenance", "recorded": "2020-03-04T10:00:00Z",
        "target": [{"reference": format!("Observation/{}", w.o1)}, {"reference": format!("Patient/{}", w.ann)}],
        "agent": [{"who": {"reference": "Organization/none"}}]})).await;
    let r = t.get(&enc(&format!("/fhir/Observation?patient={}&_include=Observation:patient&_revinclude=Provenance:target", w.ann))).await;
    let entries = r.json["entry"].as_array().unwrap();
    let mode = |id: &str| {
        entries
            .iter()
            .find(|e| e["resource"]["id"] == id)
            .map(|e| e["search"]["mode"].as_str().unwrap().to_owned())
    };
    assert_eq!(mode(&w.o1).as_deref(), Some("match"));
    assert_eq!(mode(&w.ann).as_deref(), Some("include"));
    assert_eq!(mode(&prov).as_deref(), Some("include"));
    assert_eq!(
        entries.len(),
        4,
        "two matches, the patient and the provenance once each"
    );
    assert_eq!(r.json["total"], 2, "includes are not counted");
    assert!(entries
        .iter()
        .all(|e| e["fullUrl"].as_str().unwrap().starts_with(BASE)));

    let r = t
        .get(&format!(
            "/fhir/Patient?_id={}&_revinclude=Provenance:target&_revinclude=Observation:subject",
            w.ann
        ))
        .await;
    assert_eq!(r.json["entry"].as_array().unwrap().len(), 4);
    let r = t
        .get(&format!("/fhir/Patient?_id={}&_include=*", w.ann))
        .await;
    assert!(r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["resource"]["resourceType"] == "Organization"));
    let r = t.get(&format!("/fhir/Observation?_id={}&_include=Observation:patient&_include:iterate=Patient:organization", w.o1)).await;
    let types: HashSet<&str> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    assert_eq!(
        types,
        HashSet::from(["Observation", "Patient", "Organization"])
    );
    let r = t
        .get(&format!(
            "/fhir/Observation?_id={}&_include=Observation:nothing",
            w.o1
        ))
        .await;
    let last = r.json["entry"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["search"]["mode"], "outcome");
    assert!(last["resource"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("Observation:nothing"));
}

#[tokio::test]
async fn unknown_parameters_are_reported_or_rejected() {
    let w = world().await;
    let r = w.t.get("/fhir/Patient?family=smith&frobnicate=1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(match_ids(&r.json).len(), 2, "ignored, not applied");
    let out = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .unwrap();
    assert_eq!(out["resource"]["resourceType"], "OperationOutcome");
    assert_eq!(out["resource"]["issue"][0]["severity"], "warning");
    assert!(out["resource"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("frobnicate"));
    assert!(!r.json["link"][0]["url"]
        .as_str()
        .unwrap()
        .contains("frobnicate"));
    let r =
        w.t.request(
            Method::GET,
            "/fhir/Patient?family=smith&frobnicate=1",
            &[("prefer", "handling=strict")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("frobnicate"));
    let r =
        w.t.request(
            Method::GET,
            "/fhir/Patient?family=smith",
            &[("prefer", "handling=strict")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn system_and_compartment_search() {
    let w = world().await;
    let t = &w.t;
    let r = t
        .get(&format!(
            "/fhir?_type=Patient,Observation&_id={},{}",
            w.ann, w.o3
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut got = match_ids(&r.json);
    got.sort();
    assert_eq!(got, sorted(&[&w.ann, &w.o3]));
    assert!(r.json["link"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{BASE}?")));
    assert_eq!(
        ids(t, "/fhir?_type=Patient&_lastUpdated=gt2000")
            .await
            .len(),
        3
    );
    assert_eq!(ids(t, "/fhir?_tag=http://t|vip").await, vec![w.ann.clone()]);
    let r = t
        .get(&format!(
            "/fhir/Patient/{}/Observation?category=laboratory",
            w.ann
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(match_ids(&r.json), vec![w.o1.clone()]);
    assert!(r.json["link"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{BASE}/Patient/{}/Observation?", w.ann)));
    assert_eq!(
        ids(t, &format!("/fhir/Patient/{}/Observation", w.bob)).await,
        vec![w.o3.clone()]
    );
    assert!(ids(t, &format!("/fhir/Patient/{}/Organization", w.ann))
        .await
        .is_empty());
}

#[tokio::test]
async fn index_follows_updates_deletes_and_conditionals() {
    let w = world().await;
    let t = &w.t;
    let mut bob = t.get(&format!("/fhir/Patient/{}", w.bob)).await.json;
    bob["name"][0]["family"] = json!("Jones");
    assert_eq!(
        t.put(&format!("/fhir/Patient/{}", w.bob), &bob)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        ids(t, "/fhir/Patient?family=smith").await,
        vec![w.zoe.clone()]
    );
    assert_eq!(
        ids(t, "/fhir/Patient?family=jones").await,
        vec![w.bob.clone()]
    );
    assert_eq!(
        t.delete(&format!("/fhir/Observation/{}", w.o3))
            .await
            .status,
        StatusCode::OK
    );
    assert!(ids(t, "/fhir/Observation?patient.family=jones")
        .await
        .is_empty());

    // If-None-Exist: one match answers it, no match creates.
    let body = json!({"resourceType": "Patient", "identifier": [{"system": "http://mrn", "value": "M-1"}]});
    let r = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &body,
            &[("if-none-exist", "identifier=http://mrn%7CM-1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["id"], w.ann.as_str());
    let r = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &body,
            &[("if-none-exist", "identifier=http://mrn%7CM-77")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &body,
            &[("if-none-exist", "gender=female")],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "two matches");
    let r = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &body,
            &[("if-none-exist", "nonsense=1")],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "an unknown condition never matches everything"
    );

    // Conditional update and delete.
    let upd = json!({"resourceType": "Patient", "gender": "other", "identifier": [{"system": "http://mrn", "value": "M-2"}]});
    let r = t
        .put(&enc("/fhir/Patient?identifier=http://mrn|M-2"), &upd)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["id"], w.bob.as_str());
    assert_eq!(
        ids(t, "/fhir/Patient?gender=other").await,
        vec![w.bob.clone()]
    );
    let r = t
        .delete(&enc("/fhir/Patient?identifier=http://mrn|M-2"))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert!(ids(t, "/fhir/Patient?gender=other").await.is_empty());
}
