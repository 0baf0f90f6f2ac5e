//! Every FHIR interaction of the facade over the embedded store, and the bad
//! inputs the foundation issue lists: each must get a clear OperationOutcome
//! and change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{match_ids, TestApp, BASE};
use serde_json::{json, Value};

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Alex"]}], "gender": "female", "birthDate": "1980-02-03"})
}

fn issue_code(v: &Value) -> &str {
    assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
    v["issue"][0]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn metadata_is_a_capability_statement() {
    let t = TestApp::new().await;
    let r = t.get("/fhir/metadata").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["resourceType"], "CapabilityStatement");
    assert_eq!(r.json["fhirVersion"], "4.0.1");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/fhir+json"));
    assert!(r.header("x-request-id").is_some());
    let again = t.get("/fhir/metadata").await;
    assert_ne!(r.header("x-request-id"), again.header("x-request-id"));
}

#[tokio::test]
async fn create_read_vread_update_delete_history() {
    let t = TestApp::new().await;
    let mut body = patient("Create");
    body["id"] = json!("client-chosen");
    let r = t.post("/fhir/Patient", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_ne!(id, "client-chosen", "create ignores a client id");
    assert_eq!(
        r.header("location").unwrap(),
        format!("{BASE}/Patient/{id}/_history/1")
    );
    assert_eq!(r.header("etag").unwrap(), "W/\"1\"");
    assert!(r.header("last-modified").unwrap().ends_with("GMT"));
    assert_eq!(r.json["meta"]["versionId"], "1");

    let read = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header("etag").unwrap(), "W/\"1\"");
    assert_eq!(read.json["name"][0]["family"], "Create");

    let head = t
        .request(Method::HEAD, &format!("/fhir/Patient/{id}"), &[], None)
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());

    let mut v2 = read.json.clone();
    v2["name"][0]["family"] = json!("Updated");
    let u = t.put(&format!("/fhir/Patient/{id}"), &v2).await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text());
    assert_eq!(u.header("etag").unwrap(), "W/\"2\"");

    let old = t.get(&format!("/fhir/Patient/{id}/_history/1")).await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(old.json["name"][0]["family"], "Create");
    assert_eq!(
        t.get(&format!("/fhir/Patient/{id}/_history/9"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let d = t.delete(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(d.status, StatusCode::OK);
    let gone = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert_eq!(issue_code(&gone.json), "deleted");
    assert_eq!(
        t.get(&format!("/fhir/Patient/{id}/_history/2"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.get(&format!("/fhir/Patient/{id}/_history/3"))
            .await
            .status,
        StatusCode::GONE
    );

    let h = t.get(&format!("/fhir/Patient/{id}/_history")).await;
    assert_eq!(h.json["type"], "history");
    assert_eq!(h.json["total"], 3);
    let methods: Vec<&str> = h.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "PUT", "POST"]);
    assert!(h.json["entry"][0].get("resource").is_none());
    assert_eq!(
        h.json["entry"][1]["fullUrl"],
        format!("{BASE}/Patient/{id}")
    );

    let missing = t.get("/fhir/Patient/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(issue_code(&missing.json), "not-found");
    assert_eq!(
        t.delete("/fhir/Patient/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn update_as_create_and_id_checks() {
    let t = TestApp::new().await;
    let mut b = patient("Put");
    b["id"] = json!("put-1");
    let r = t.put("/fhir/Patient/put-1", &b).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        r.header("location").unwrap(),
        format!("{BASE}/Patient/put-1/_history/1")
    );
    let r = t.put("/fhir/Patient/put-2", &b).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t.put("/fhir/Patient/put-1", &patient("NoId")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn if_match_guards_updates() {
    let t = TestApp::new().await;
    let id = t.create(patient("Match")).await;
    let mut b = t.get(&format!("/fhir/Patient/{id}")).await.json;
    b["gender"] = json!("male");
    let ok = t
        .send_json(
            Method::PUT,
            &format!("/fhir/Patient/{id}"),
            &b,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    b["gender"] = json!("other");
    let stale = t
        .send_json(
            Method::PUT,
            &format!("/fhir/Patient/{id}"),
            &b,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(issue_code(&stale.json), "conflict");
    let now = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(
        now.json["gender"], "male",
        "a stale If-Match changes nothing"
    );
    assert_eq!(now.header("etag").unwrap(), "W/\"2\"");
    let bad = t
        .send_json(
            Method::PUT,
            &format!("/fhir/Patient/{id}"),
            &b,
            &[("if-match", "garbage value")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn conditional_create_and_update() {
    let t = TestApp::new().await;
    let mut b = patient("Cond");
    b["identifier"] = json!([{"system": "http://mrn", "value": "A1"}]);
    let first = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &b,
            &[("if-none-exist", "identifier=http://mrn|A1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let second = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &b,
            &[("if-none-exist", "identifier=http://mrn|A1")],
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(second.json["id"], first.json["id"]);
    t.create(b.clone()).await;
    let many = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &b,
            &[("if-none-exist", "identifier=http://mrn|A1")],
        )
        .await;
    assert_eq!(many.status, StatusCode::PRECONDITION_FAILED);

    let mut c = patient("CondUpd");
    c["identifier"] = json!([{"system": "http://mrn", "value": "B2"}]);
    let created = t.put("/fhir/Patient?identifier=http://mrn|B2", &c).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    c["gender"] = json!("male");
    let updated = t.put("/fhir/Patient?identifier=http://mrn|B2", &c).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    assert_eq!(updated.json["id"], created.json["id"]);
    assert_eq!(updated.json["meta"]["versionId"], "2");
}

#[tokio::test]
async fn prefer_return_is_honoured() {
    let t = TestApp::new().await;
    let min = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &patient("Min"),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(min.status, StatusCode::CREATED);
    assert!(min.body.is_empty());
    assert!(min.header("location").is_some());
    assert!(min.header("etag").is_some());
    let oo = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &patient("Oo"),
            &[("prefer", "return=OperationOutcome")],
        )
        .await;
    assert_eq!(oo.status, StatusCode::CREATED);
    assert_eq!(oo.json["resourceType"], "OperationOutcome");
    let rep = t
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &patient("Rep"),
            &[("prefer", "return=representation")],
        )
        .await;
    assert_eq!(rep.json["resourceType"], "Patient");
}

#[tokio::test]
async fn transaction_resolves_urn_uuids_atomically() {
    let t = TestApp::new().await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111", "resource": patient("Txn"), "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222", "resource": {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    let r = t.post("/fhir", &bundle).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["type"], "transaction-response");
    let pid = r.json["entry"][0]["resource"]["id"].as_str().unwrap();
    assert_eq!(r.json["entry"][0]["response"]["status"], "201 Created");
    assert!(r.json["entry"][0]["response"]["location"]
        .as_str()
        .unwrap()
        .starts_with(BASE));
    assert_eq!(
        r.json["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{pid}")
    );

    // One invalid entry: nothing at all is written.
    let before = t.get("/fhir/Patient/_history").await.json["total"].clone();
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("Never"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Patient"}}
    ]});
    let r = t.post("/fhir", &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.json["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("entry[1]"));
    assert_eq!(t.get("/fhir/Patient/_history").await.json["total"], before);
}

#[tokio::test]
async fn batch_entries_succeed_or_fail_alone() {
    let t = TestApp::new().await;
    let id = t.create(patient("Batch")).await;
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": patient("B1"), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": format!("Patient/{id}")}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Patient"}}
    ]});
    let r = t.post("/fhir", &bundle).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["type"], "batch-response");
    let status = |i: usize| {
        r.json["entry"][i]["response"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(status(0).starts_with("201"));
    assert!(status(1).starts_with("200"));
    assert_eq!(r.json["entry"][1]["resource"]["id"], id.as_str());
    assert!(status(2).starts_with("404"));
    assert!(status(3).starts_with("400"));
    assert_eq!(
        r.json["entry"][3]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
}

#[tokio::test]
async fn history_type_and_system_page_stably() {
    let t = TestApp::new().await;
    for i in 0..7 {
        t.create(patient(&format!("H{i}"))).await;
    }
    let mut url = "/fhir/Patient/_history?_count=3".to_owned();
    let mut seen = Vec::new();
    loop {
        let page = t.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        for e in page.json["entry"].as_array().unwrap() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_owned());
        }
        // A write between pages must not shift them.
        t.create(json!({"resourceType": "Organization", "name": "noise"}))
            .await;
        let next = page.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
        match next {
            Some(n) => url = n.strip_prefix("http://fhirgate.test").unwrap().to_owned(),
            None => break,
        }
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(seen.len(), 7);
    assert_eq!(dedup.len(), 7);
    let sys = t.get("/fhir/_history?_count=100").await;
    assert_eq!(sys.json["total"].as_u64().unwrap(), 7 + 3);
}

#[tokio::test]
async fn patient_everything_returns_the_compartment() {
    let t = TestApp::new().await;
    let doc = t
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Lee"}]}))
        .await;
    let p = t.create(patient("Every")).await;
    let other = t.create(patient("Other")).await;
    let obs = t.create(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": format!("Patient/{p}")}, "performer": [{"reference": format!("Practitioner/{doc}")}]})).await;
    t.create(json!({"resourceType": "Observation", "status": "final", "code": {"text": "y"}, "subject": {"reference": format!("Patient/{other}")}})).await;
    let r = t.get(&format!("/fhir/Patient/{p}/$everything")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let ids = match_ids(&r.json);
    assert!(
        ids.contains(&p) && ids.contains(&obs) && ids.contains(&doc),
        "{ids:?}"
    );
    assert!(!ids.contains(&other));
    assert_eq!(r.json["total"], 3);
    assert_eq!(
        t.get("/fhir/Patient/nope/$everything").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let t = TestApp::new().await;
    let malformed = t
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("content-type", "application/fhir+json")],
            Some(b"{\"resourceType\": \"Patient\",".to_vec()),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(issue_code(&malformed.json), "invalid");

    let mismatch = t
        .post("/fhir/Patient", &json!({"resourceType": "Observation"}))
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(mismatch.json["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("does not match"));

    let illegal = t.get("/fhir/Patient/a$b%20c").await;
    assert_eq!(illegal.status, StatusCode::BAD_REQUEST);
    let illegal_put = t
        .put(
            "/fhir/Patient/bad_id",
            &json!({"resourceType": "Patient", "id": "bad_id"}),
        )
        .await;
    assert_eq!(illegal_put.status, StatusCode::BAD_REQUEST);

    let huge = vec![b' '; 50 * 1024 * 1024];
    let big = t
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("content-type", "application/fhir+json")],
            Some(huge),
        )
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(issue_code(&big.json), "too-costly");

    let unknown = t.get("/fhir/Spaceship/1").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/fhir/Spaceship").await.status, StatusCode::NOT_FOUND);

    let patch = t.request(Method::PATCH, "/fhir/Patient/x", &[], None).await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);

    let bad_date = t.get("/fhir/Patient?birthdate=ge20xx-13").await;
    assert_eq!(
        bad_date.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_date.text()
    );
    let bad_prefix = t.get("/fhir/Patient?birthdate=zz2020").await;
    assert_eq!(
        bad_prefix.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_prefix.text()
    );

    let xml = t
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("content-type", "application/fhir+xml")],
            Some(b"<Patient/>".to_vec()),
        )
        .await;
    // XML outside the FHIR namespace (tests/xml.rs has the rest of XML).
    assert_eq!(xml.status, StatusCode::BAD_REQUEST);
    let accept = t
        .request(
            Method::GET,
            "/fhir/metadata",
            &[("accept", "text/turtle")],
            None,
        )
        .await;
    assert_eq!(accept.status, StatusCode::NOT_ACCEPTABLE);

    // None of the above wrote anything.
    let h = t.get("/fhir/_history").await;
    assert_eq!(h.json["total"], 0, "{}", h.text());
}

#[tokio::test]
async fn huge_count_is_capped_and_said_so() {
    let t = TestApp::new().await;
    t.create(patient("Cap")).await;
    let r = t.get("/fhir/Patient?_count=100000").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let notes: Vec<&Value> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "outcome")
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n["resource"]["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("100000")),
        "{}",
        r.text()
    );
    assert_eq!(match_ids(&r.json).len(), 1);
    let next = r.json["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "self")
        .unwrap();
    assert!(!next["url"].as_str().unwrap().contains("100000"));
}

#[tokio::test]
async fn post_search_equals_get_search() {
    let t = TestApp::new().await;
    t.create(patient("Formy")).await;
    t.create(patient("Other")).await;
    let get = t.get("/fhir/Patient?family=Formy").await;
    let post = t
        .request(
            Method::POST,
            "/fhir/Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"family=Formy".to_vec()),
        )
        .await;
    assert_eq!(post.status, StatusCode::OK, "{}", post.text());
    assert_eq!(match_ids(&get.json), match_ids(&post.json));
    assert_eq!(match_ids(&get.json).len(), 1);
}

#[tokio::test]
async fn json_is_answered_as_asked() {
    let t = TestApp::new().await;
    let r = t
        .request(
            Method::GET,
            "/fhir/metadata",
            &[("accept", "application/json")],
            None,
        )
        .await;
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let r = t.get("/fhir/metadata?_format=json&_pretty=true").await;
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/fhir+json"));
    assert!(r.text().contains("\n  "));
}

#[tokio::test]
async fn business_rule_and_conflict_errors() {
    let t = TestApp::new().await;
    // A placeholder reference that resolves to nothing cannot be stored: 422.
    let dangling = t
        .post("/fhir/Observation", &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"}}))
        .await;
    assert_eq!(
        dangling.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        dangling.text()
    );
    assert!(dangling.json["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("Observation.subject.reference"));
    let txn = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    assert_eq!(
        t.post("/fhir", &txn).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Conditional update whose body id names an existing resource the criteria do not match: 409.
    let mut a = patient("Conflict");
    a["id"] = json!("c-1");
    assert_eq!(
        t.put("/fhir/Patient/c-1", &a).await.status,
        StatusCode::CREATED
    );
    let mut b = patient("Conflict");
    b["id"] = json!("c-1");
    b["identifier"] = json!([{"system": "http://mrn", "value": "Z9"}]);
    let r = t.put("/fhir/Patient?identifier=http://mrn|Z9", &b).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(issue_code(&r.json), "conflict");
    assert_eq!(
        t.get("/fhir/_history").await.json["total"],
        1,
        "nothing was written"
    );
}

#[tokio::test]
async fn totals_are_exact_on_every_page() {
    let t = TestApp::new().await;
    for i in 0..3 {
        t.create(patient(&format!("Tot{i}"))).await;
    }
    for (query, want_entries) in [
        ("_count=5", 3),
        ("_count=2", 2),
        ("_count=2&_offset=2", 1),
        ("_count=2&_offset=10", 0),
        ("_summary=count", 0),
    ] {
        let r = t.get(&format!("/fhir/Patient?{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
        assert_eq!(r.json["total"], 3, "{query}");
        assert_eq!(match_ids(&r.json).len(), want_entries, "{query}");
    }
}
