//! FHIR XML (issue 9, item 3), in process on the embedded store: every
//! resource the demo seed makes, and the Bundles, OperationOutcomes and the
//! CapabilityStatement the server makes, survive JSON → XML → JSON; XML
//! answers equal the JSON ones; XML bodies are accepted on create,
//! transaction and operations; malformed XML is a 400 OperationOutcome; a
//! denied request in XML gets an XML OperationOutcome and no data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::{TestApp, TestResponse, BASE};
use fhirgate::fhir::xml::{from_xml, to_xml};
use serde_json::{json, Value};

const XML: &str = "application/fhir+xml";
const HOST: &str = "http://fhirgate.test";

/// JSON → XML → JSON is the identity on `v`.
fn assert_round_trip(v: &Value, what: &str) {
    let xml = to_xml(v).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = from_xml(xml.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}\n{xml}"));
    assert_eq!(&back, v, "{what}\n{xml}");
}

/// The body of an XML answer, as JSON.
fn xml_body(r: &TestResponse) -> Value {
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/fhir+xml; charset=utf-8"),
        "{}",
        r.text()
    );
    assert!(r.text().starts_with("<?xml"), "{}", r.text());
    from_xml(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.text()))
}

async fn get_xml(t: &TestApp, path: &str) -> TestResponse {
    t.request(Method::GET, path, &[("accept", XML)], None).await
}

async fn send_xml(
    t: &TestApp,
    method: Method,
    path: &str,
    xml: &str,
    headers: &[(&str, &str)],
) -> TestResponse {
    let mut h = vec![("content-type", XML)];
    h.extend_from_slice(headers);
    t.request(method, path, &h, Some(xml.as_bytes().to_vec()))
        .await
}

/// A seeded app (a few patients, written as `serve` writes them).
async fn seeded() -> TestApp {
    let t = TestApp::new().await;
    fhirgate::demo::seed_population(&t.app, 3).await.unwrap();
    t
}

/// The path of a paging link (`next`), or None.
fn next_page(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(|u| u.strip_prefix(HOST).unwrap_or(u).to_owned())
}

#[test]
fn every_generated_resource_round_trips() {
    let population = fhirgate::seed::generate(25);
    let mut all = population.resources;
    all.extend(fhirgate::seed::attribution_groups(25));
    assert!(all.len() > 1000, "{}", all.len());
    for r in &all {
        let what = format!("{}/{}", r["resourceType"], r["id"]);
        assert_round_trip(r, &what);
    }
}

#[tokio::test]
async fn every_stored_resource_is_served_in_xml_equal_to_json() {
    let t = seeded().await;
    let mut expected = fhirgate::seed::generate(3).resources;
    expected.extend(fhirgate::seed::attribution_groups(3));
    let types: BTreeSet<String> = expected
        .iter()
        .map(|r| r["resourceType"].as_str().unwrap().to_owned())
        .collect();
    let mut seen = 0;
    for ty in &types {
        let mut path = Some(format!("/fhir/{ty}?_count=200"));
        while let Some(p) = path {
            let json = t.get(&p).await;
            assert_eq!(json.status, StatusCode::OK, "{p}: {}", json.text());
            assert_round_trip(&json.json, &p);
            let sep = if p.contains('?') { '&' } else { '?' };
            let xml = t.get(&format!("{p}{sep}_format=xml")).await;
            assert_eq!(xml.status, StatusCode::OK, "{p}: {}", xml.text());
            let from_xml = xml_body(&xml);
            assert_eq!(from_xml["entry"], json.json["entry"], "{p}");
            assert_eq!(from_xml["total"], json.json["total"], "{p}");
            assert_eq!(from_xml["type"], "searchset");
            for e in json.json["entry"].as_array().into_iter().flatten() {
                assert_round_trip(&e["resource"], &p);
                if e["search"]["mode"] == "match" {
                    seen += 1;
                }
            }
            path = next_page(&json.json);
        }
    }
    assert_eq!(seen, expected.len());
}

#[tokio::test]
async fn read_answers_in_xml_equal_json_with_the_same_headers() {
    let t = seeded().await;
    let path = format!("/fhir/Patient/{}", fhirgate::seed::PAT_JONES_PATIENT_ID);
    let json = t.get(&path).await;
    assert_eq!(json.status, StatusCode::OK, "{}", json.text());
    for xml in [
        get_xml(&t, &path).await,
        t.get(&format!("{path}?_format=application/fhir%2Bxml"))
            .await,
        t.get(&format!("{path}?_format=text/xml")).await,
        t.request(Method::GET, &path, &[("accept", "application/xml")], None)
            .await,
    ] {
        assert_eq!(xml.status, StatusCode::OK);
        assert_eq!(xml_body(&xml), json.json);
        assert_eq!(xml.header("etag"), json.header("etag"));
        assert!(xml.header("etag").is_some());
        assert_eq!(xml.header("last-modified"), json.header("last-modified"));
    }
    // `_elements` / `_summary` are applied to the JSON first.
    for q in ["_elements=name,gender", "_summary=true"] {
        let j = t.get(&format!("{path}?{q}")).await;
        let x = t.get(&format!("{path}?{q}&_format=xml")).await;
        assert_eq!(xml_body(&x), j.json, "{q}");
    }
    // Pretty JSON is untouched; XML is always indented.
    let x = t.get(&format!("{path}?_format=xml&_pretty=true")).await;
    assert!(x.text().contains("\n  <"), "{}", x.text());
}

#[tokio::test]
async fn metadata_history_and_outcomes_in_xml() {
    let t = seeded().await;
    let json = t.get("/fhir/metadata").await;
    assert_eq!(json.json["resourceType"], "CapabilityStatement");
    assert_round_trip(&json.json, "metadata");
    let xml = get_xml(&t, "/fhir/metadata").await;
    assert_eq!(xml.status, StatusCode::OK, "{}", xml.text());
    assert!(xml
        .text()
        .contains("<CapabilityStatement xmlns=\"http://hl7.org/fhir\">"));
    assert_eq!(xml_body(&xml), json.json);

    let history = format!(
        "/fhir/Patient/{}/_history",
        fhirgate::seed::PAT_JONES_PATIENT_ID
    );
    let json = t.get(&history).await;
    assert_round_trip(&json.json, "history");
    assert_eq!(
        xml_body(&get_xml(&t, &history).await)["entry"],
        json.json["entry"]
    );

    let missing = get_xml(&t, "/fhir/Patient/no-such-patient").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let oo = xml_body(&missing);
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let json = t.get("/fhir/Patient/no-such-patient").await;
    assert_round_trip(&json.json, "404 outcome");
    assert_eq!(oo, json.json);
}

const PATIENT_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Ada <b>Xmlwright</b>, born 1970</p></div>
  </text>
  <identifier>
    <system value="urn:example:mrn"/>
    <value value="X-1"/>
  </identifier>
  <name>
    <family value="Xmlwright"/>
    <given value="Ada"/>
    <given value="B."/>
  </name>
  <gender value="female"/>
  <birthDate value="1970-03-30">
    <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">
      <valueDateTime value="1970-03-30T14:35:45-05:00"/>
    </extension>
  </birthDate>
</Patient>"#;

#[tokio::test]
async fn create_with_an_xml_body_reads_back_as_the_same_json() {
    let t = TestApp::new().await;
    let r = send_xml(
        &t,
        Method::POST,
        "/fhir/Patient",
        PATIENT_XML,
        &[("accept", XML)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{BASE}/Patient/")),
        "{location}"
    );
    assert!(r.header("etag").is_some());
    let created = xml_body(&r);
    let id = created["id"].as_str().unwrap().to_owned();

    let read = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json, created);
    let mut sent = from_xml(PATIENT_XML.as_bytes()).unwrap();
    let mut stored = read.json.clone();
    stored.as_object_mut().unwrap().remove("id");
    stored.as_object_mut().unwrap().remove("meta");
    sent.as_object_mut().unwrap().remove("id");
    assert_eq!(stored, sent);
    assert_eq!(stored["birthDate"], "1970-03-30");
    assert_eq!(
        stored["_birthDate"]["extension"][0]["valueDateTime"],
        "1970-03-30T14:35:45-05:00"
    );
    assert_eq!(
        stored["text"]["div"],
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Ada <b>Xmlwright</b>, born 1970</p></div>"
    );

    // Update in XML (no Accept: an XML body gets an XML answer), then a
    // conditional update.
    let mut changed = read.json.clone();
    changed["gender"] = json!("other");
    let r = send_xml(
        &t,
        Method::PUT,
        &format!("/fhir/Patient/{id}"),
        &to_xml(&changed).unwrap(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(xml_body(&r)["gender"], "other");
    let r = send_xml(
        &t,
        Method::PUT,
        "/fhir/Patient?identifier=urn:example:mrn|X-1",
        &to_xml(&changed)
            .unwrap()
            .replace("value=\"other\"", "value=\"unknown\""),
        &[("accept", "application/fhir+json")],
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_eq!(r.json["gender"], "unknown");
}

#[tokio::test]
async fn a_transaction_bundle_in_xml() {
    let t = TestApp::new().await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
         "resource": {"resourceType": "Patient", "name": [{"family": "Txn"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
         "resource": {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {"value": 72.50, "unit": "/min"},
            "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    // `json!` reads 72.50 as an f64; the XML says what the client typed.
    let body = to_xml(&bundle)
        .unwrap()
        .replace("<value value=\"72.5\"/>", "<value value=\"72.50\"/>");
    assert!(body.contains("72.50"), "{body}");
    let r = send_xml(&t, Method::POST, "/fhir", &body, &[("accept", XML)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let answer = xml_body(&r);
    assert_eq!(answer["type"], "transaction-response");
    assert_eq!(answer["entry"][0]["response"]["status"], "201 Created");
    let pid = answer["entry"][0]["resource"]["id"].as_str().unwrap();
    let oid = answer["entry"][1]["resource"]["id"].as_str().unwrap();
    let obs = t.get(&format!("/fhir/Observation/{oid}")).await;
    assert_eq!(obs.json["subject"]["reference"], format!("Patient/{pid}"));
    assert_eq!(
        serde_json::to_string(&obs.json["valueQuantity"]["value"]).unwrap(),
        "72.50"
    );
}

#[tokio::test]
async fn operations_take_xml_parameters() {
    let t = TestApp::new().await;
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "name": [{"family": "Valid"}]}}
    ]});
    let r = send_xml(
        &t,
        Method::POST,
        "/fhir/Patient/$validate",
        &to_xml(&params).unwrap(),
        &[("accept", XML)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(xml_body(&r)["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn malformed_or_unknown_xml_is_a_400_outcome() {
    let t = TestApp::new().await;
    let cases = [
        "<Patient xmlns=\"http://hl7.org/fhir\"><name><family value=\"x\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><shoeSize value=\"44\"/></Patient>",
        "<Patient><active value=\"true\"/></Patient>",
        "{\"resourceType\": \"Patient\"}",
    ];
    for body in cases {
        // In XML when asked (or when nothing was asked: the body was XML) …
        for accept in [&[("accept", XML)][..], &[]] {
            let r = send_xml(&t, Method::POST, "/fhir/Patient", body, accept).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
            let oo = xml_body(&r);
            assert_eq!(oo["resourceType"], "OperationOutcome");
            assert_eq!(oo["issue"][0]["code"], "invalid");
        }
        // … in JSON when JSON was asked for.
        let r = send_xml(
            &t,
            Method::POST,
            "/fhir/Patient",
            body,
            &[("accept", "application/fhir+json")],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json["resourceType"], "OperationOutcome");
    }
    let r = send_xml(&t, Method::POST, "/fhir/Patient", cases[1], &[]).await;
    assert!(r.text().contains("shoeSize"), "{}", r.text());
    // Nothing was written.
    assert_eq!(t.get("/fhir/Patient").await.json["total"], 0);
    // Search takes form parameters, not XML.
    let r = send_xml(&t, Method::POST, "/fhir/Patient/_search", PATIENT_XML, &[]).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn scope_denied_requests_get_an_xml_outcome_and_no_data() {
    let t = TestApp::new().await;
    let id = t
        .create(json!({"resourceType": "Patient", "name": [{"family": "Hiddenfield"}]}))
        .await;
    let token = t
        .token_for("patient/Observation.rs", Some(&id), None, None)
        .await;
    for path in [format!("/fhir/Patient/{id}"), "/fhir/Patient".to_owned()] {
        let r = t
            .request_with(&token, Method::GET, &path, &[("accept", XML)], None)
            .await;
        assert!(r.status.is_client_error(), "{path}: {}", r.text());
        assert_eq!(xml_body(&r)["resourceType"], "OperationOutcome");
        assert!(!r.text().contains("Hiddenfield"), "{}", r.text());
    }
    // An XML write without the scope: refused in XML, nothing written.
    let r = t
        .request_with(
            &token,
            Method::POST,
            "/fhir/Patient",
            &[("content-type", XML)],
            None,
        )
        .await;
    assert!(r.status.is_client_error());
}

#[tokio::test]
async fn consent_denied_requests_get_an_xml_outcome_and_no_data() {
    let t = TestApp::with_config("[consent]\nexempt_clients = [\"test-client\"]\n").await;
    t.put(
        "/fhir/Patient/p1",
        &json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Onewell"}]}),
    )
    .await;
    let patient = t.patient_token("p1").await;
    let consent = json!({"resourceType": "Consent", "id": "deny-all", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "performer": [{"reference": "Patient/p1"}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}});
    // The patient writes their Consent in XML.
    let r = t
        .request_with(
            &patient,
            Method::PUT,
            "/fhir/Consent/deny-all",
            &[("content-type", XML)],
            None,
        )
        .await;
    assert!(r.status.is_client_error(), "an empty body is not a Consent");
    let r = t
        .request(
            Method::PUT,
            "/fhir/Consent/deny-all",
            &[
                ("content-type", XML),
                ("authorization", &format!("Bearer {patient}")),
            ],
            Some(to_xml(&consent).unwrap().into_bytes()),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());

    let payer = t
        .token_as("payer", "system/*.rs", None, None, None, None)
        .await;
    let r = t
        .request_with(
            &payer,
            Method::GET,
            "/fhir/Patient/p1",
            &[("accept", XML)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(xml_body(&r)["resourceType"], "OperationOutcome");
    assert!(!r.text().contains("Onewell"));
    let r = t
        .request_with(
            &payer,
            Method::GET,
            "/fhir/Patient?_id=p1&_format=xml",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let bundle = xml_body(&r);
    assert_eq!(bundle["type"], "searchset");
    assert!(!r.text().contains("Onewell"), "{}", r.text());
}

#[tokio::test]
async fn unsupported_formats_are_still_refused() {
    let t = TestApp::new().await;
    let r = t.get("/fhir/metadata?_format=turtle").await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let r = t
        .request(
            Method::POST,
            "/fhir/Patient",
            &[("content-type", "text/turtle")],
            Some(b"x".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
