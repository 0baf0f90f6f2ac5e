//! De-identified Bulk Data `$export` for secondary use (issue 12), end to
//! end, in process, on the embedded store: every HIPAA Safe Harbor
//! identifier is gone from the exported bytes while coded content and the
//! references between the exported resources survive; keyed pseudonyms and
//! date shifts are stable per key set and differ across keys; date shifts
//! keep a patient's intervals; research Consents (opt-out and opt-in) and
//! patient-privacy Consents keep patients out, consent judging before
//! de-identification; the secondary-use purpose gate at kick-off; and the
//! audit trail of every batch naming the purpose and the profile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{collections::BTreeMap, time::Duration};

use axum::http::{Method, StatusCode};
use base64::{engine::general_purpose::STANDARD, Engine};
use common::{TestApp, TestResponse, BASE};
use serde_json::{json, Value};

const ASYNC: (&str, &str) = ("prefer", "respond-async");
const OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
const PROFILE_EXTENSION: &str = "https://fhirgate.dev/fhir/bulk/deidentification-profile";
const WITHHELD_EXTENSION: &str = "https://fhirgate.dev/fhir/bulk/withheld-by-consent";

/// The `[deid]` world: two key sets, a research client allowed both
/// purposes and key sets, and a `limited` client with no key set. Only the
/// loading client (`test-client`) is exempt from consent.
fn config(research_consent: &str) -> String {
    format!(
        r#"
[bulk]
min_poll_seconds = 0
scan_millis = 20
[deid]
research_consent = "{research_consent}"
[deid.key_sets.k1]
[deid.key_sets.k2]
[deid.clients.researcher]
purposes = ["HRESCH", "HMARKT"]
key_sets = ["k1", "k2"]
[deid.clients.limited]
purposes = ["HRESCH"]
key_sets = []
[consent]
exempt_clients = ["test-client"]
"#
    )
}

struct World {
    t: TestApp,
    /// Registered for secondary use (HRESCH, HMARKT; k1, k2).
    researcher: String,
    /// Registered for HRESCH without key sets.
    limited: String,
    /// A backend client not registered in `[deid.clients]`.
    outsider: String,
    /// A plain exporter (no purpose), subject to consent.
    exporter: String,
    worker: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

async fn world(research_consent: &str) -> World {
    let t = TestApp::with_config(&config(research_consent)).await;
    let scope = "system/*.rs";
    let researcher = t
        .token_as("researcher", scope, None, None, None, None)
        .await;
    let limited = t.token_as("limited", scope, None, None, None, None).await;
    let outsider = t.token_as("outsider", scope, None, None, None, None).await;
    let exporter = t.token_as("exporter", scope, None, None, None, None).await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    World {
        t,
        researcher,
        limited,
        outsider,
        exporter,
        worker,
    }
}

/// A Consent written through the facade by the patient (the decision index
/// is updated at once). `scope`: `patient-privacy` or `research`.
async fn consent(t: &TestApp, patient: &str, id: &str, scope: &str, provision: &str) {
    let pat = t.patient_token(patient).await;
    let (category, rule) = match scope {
        "research" => ("57016-8", "OPTIN"),
        _ => ("59284-0", "OPTOUT"),
    };
    let c = json!({"resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": scope}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": category}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "performer": [{"reference": format!("Patient/{patient}")}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": rule}]},
        "provision": {"type": provision}});
    let r = t
        .request_with(
            &pat,
            Method::PUT,
            &format!("/fhir/Consent/{id}"),
            &[],
            Some(&c),
        )
        .await;
    assert!(r.status.is_success(), "consent {id}: {}", r.text());
}

fn rel(url: &str) -> String {
    url.strip_prefix("http://fhirgate.test").unwrap().to_owned()
}

/// One finished export: its job id, manifest, every NDJSON byte of its
/// output files, and the parsed `(type, resource)` lines.
struct Export {
    job: String,
    manifest: Value,
    bytes: String,
    resources: Vec<(String, Value)>,
}

impl Export {
    fn of_type(&self, t: &str) -> Vec<&Value> {
        self.resources
            .iter()
            .filter(|(k, _)| k == t)
            .map(|(_, r)| r)
            .collect()
    }

    fn one(&self, t: &str) -> &Value {
        let all = self.of_type(t);
        assert_eq!(all.len(), 1, "one {t} expected: {all:?}");
        all[0]
    }

    fn deid(&self) -> &Value {
        &self.manifest["extension"][PROFILE_EXTENSION]
    }

    fn withheld(&self) -> u64 {
        self.manifest["extension"][WITHHELD_EXTENSION]
            .as_u64()
            .unwrap_or_else(|| panic!("no withheld count: {}", self.manifest))
    }
}

impl World {
    /// A GET kick-off as `token`, with `X-Purpose-Of-Use` if given.
    async fn kick(&self, token: &str, path: &str, purpose: Option<&str>) -> TestResponse {
        let mut h = vec![ASYNC];
        if let Some(p) = purpose {
            h.push(("x-purpose-of-use", p));
        }
        self.t
            .request_with(token, Method::GET, path, &h, None)
            .await
    }

    /// A POST kick-off with a Parameters body.
    async fn kick_post(
        &self,
        token: &str,
        path: &str,
        params: Value,
        purpose: Option<&str>,
    ) -> TestResponse {
        let body = json!({"resourceType": "Parameters", "parameter": params});
        let mut h = vec![ASYNC];
        if let Some(p) = purpose {
            h.push(("x-purpose-of-use", p));
        }
        self.t
            .request_with(token, Method::POST, path, &h, Some(&body))
            .await
    }

    /// Polls until the manifest, downloads every output file.
    async fn finish(&self, token: &str, r: TestResponse) -> Export {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let status_url = r.header("content-location").unwrap();
        assert!(
            status_url.starts_with(&format!("{BASE}/bulk/status/")),
            "{status_url}"
        );
        let job = status_url.rsplit('/').next().unwrap().to_owned();
        let mut manifest = Value::Null;
        for _ in 0..1500 {
            let p = self
                .t
                .request_with(token, Method::GET, &rel(&status_url), &[], None)
                .await;
            match p.status {
                StatusCode::ACCEPTED => tokio::time::sleep(Duration::from_millis(20)).await,
                StatusCode::OK => {
                    manifest = p.json;
                    break;
                }
                s => panic!("poll {s}: {}", p.text()),
            }
        }
        assert!(manifest.is_object(), "export {job} did not finish");
        // a failed type is reported as an error line: show it
        for e in manifest["error"].as_array().unwrap() {
            let f = self
                .t
                .request_with(
                    token,
                    Method::GET,
                    &rel(e["url"].as_str().unwrap()),
                    &[],
                    None,
                )
                .await;
            assert!(
                !f.text().contains("\"severity\":\"error\""),
                "export {job} reported errors: {}",
                f.text()
            );
        }
        let mut bytes = String::new();
        let mut resources = Vec::new();
        for o in manifest["output"].as_array().unwrap() {
            let f = self
                .t
                .request_with(
                    token,
                    Method::GET,
                    &rel(o["url"].as_str().unwrap()),
                    &[],
                    None,
                )
                .await;
            assert_eq!(f.status, StatusCode::OK, "{}", f.text());
            let text = f.text();
            let mut n = 0;
            for l in text.lines().filter(|l| !l.is_empty()) {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["resourceType"], o["type"], "{l}");
                resources.push((o["type"].as_str().unwrap().to_owned(), v));
                n += 1;
            }
            assert_eq!(n, o["count"].as_u64().unwrap(), "{manifest}");
            bytes.push_str(&text);
        }
        Export {
            job,
            manifest,
            bytes,
            resources,
        }
    }

    /// A GET kick-off that must be accepted, run to the end.
    async fn export(&self, token: &str, path: &str, purpose: Option<&str>) -> Export {
        let r = self.kick(token, path, purpose).await;
        self.finish(token, r).await
    }
}

/// Every string leaf of a JSON value.
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Whether `s` holds `YYYY-MM` somewhere (a date more precise than a year).
fn has_month(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(7).any(|w| {
        w[..4].iter().all(u8::is_ascii_digit)
            && w[4] == b'-'
            && w[5..].iter().all(u8::is_ascii_digit)
    })
}

/// The `meta.security` codes of a resource in the v3-ObservationValue system.
fn security_codes(r: &Value) -> Vec<String> {
    r["meta"]["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["system"] == OBSERVATION_VALUE)
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect()
}

fn assert_tagged(e: &Export, code: &str) {
    assert!(!e.resources.is_empty(), "nothing exported");
    for (t, r) in &e.resources {
        assert!(
            security_codes(r).iter().any(|c| c == code),
            "{t} lacks meta.security {code}: {r}"
        );
    }
}

/// Days since 1970-01-01 of the `YYYY-MM-DD` a date or dateTime starts with.
fn days(s: &str) -> i64 {
    assert!(s.len() >= 10, "not a full date: {s}");
    let y: i64 = s[0..4].parse().unwrap();
    let m: i64 = s[5..7].parse().unwrap();
    let d: i64 = s[8..10].parse().unwrap();
    // Howard Hinnant's days_from_civil
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The engine as a job with key set `key` runs it (to recompute pseudonyms
/// and date shifts of known ids).
fn engine(t: &TestApp, profile: &str, key: &str) -> fhirgate::deid::Deidentifier {
    let reg = &t.app.bulk.deid;
    fhirgate::deid::Deidentifier::new(
        reg.profile(profile).unwrap(),
        reg.named_key(key).unwrap(),
        true,
        time::OffsetDateTime::now_utc().date(),
    )
}

/// The `Patient/<id>` a reference-holding member points at.
fn reference(v: &Value) -> &str {
    v["reference"]
        .as_str()
        .unwrap_or_else(|| panic!("no reference: {v}"))
}

fn obs(id: &str, patient: &str, code: &str, when: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": when,
        "valueQuantity": {"value": 7, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}})
}

// ---------------------------------------------------------------------------
// 1. Safe Harbor: every identifier gone from the bytes
// ---------------------------------------------------------------------------

/// The 18 Safe Harbor identifiers (45 CFR 164.514(b)(2)(i)) as sentinels
/// planted in the data: `(identifier, sentinel)`; several per identifier.
fn sentinels() -> Vec<(&'static str, String)> {
    let b64 = |s: &str| STANDARD.encode(s.as_bytes());
    let v: Vec<(&'static str, &str)> = vec![
        ("#1 names (patient)", "Qx01Wexley"),
        ("#1 names (patient given)", "Qx01Bartholomew"),
        ("#1 names (contact relative)", "Qx01Contactkin"),
        ("#1 names (contact given)", "Qx01Ophelia"),
        ("#1 names (contained RelatedPerson)", "Qx01Containedkin"),
        ("#1 names (RelatedPerson)", "Qx01Relatedkin"),
        ("#1 names (household member in free text)", "Qx01Mildred"),
        (
            "#2 geographic subdivisions (street)",
            "Qx02 Sentinel Street",
        ),
        (
            "#2 geographic subdivisions (second street)",
            "Qx02 Hilltop Road",
        ),
        ("#2 geographic subdivisions (city)", "Qx02Cambridgeport"),
        (
            "#2 geographic subdivisions (second city)",
            "Qx02Acworthville",
        ),
        ("#2 geographic subdivisions (district)", "Qx02County"),
        (
            "#2 geographic subdivisions (RelatedPerson street)",
            "Qx02 Kinfolk Lane",
        ),
        ("#2 geographic subdivisions (5-digit ZIP)", "\"02139"),
        ("#2 geographic subdivisions (restricted ZIP)", "\"03601"),
        ("#3 dates (birth date)", "1961-07-14"),
        ("#3 dates (death date)", "2024-03-17"),
        ("#3 dates (admission date)", "2022-02-03"),
        ("#3 dates (discharge date)", "2022-02-08"),
        ("#3 dates (observation date)", "2022-02-05"),
        ("#3 dates (RelatedPerson birth date)", "1958-11-23"),
        ("#4 telephone numbers", "555 0104"),
        ("#4 telephone numbers (contact)", "555 0114"),
        ("#4 telephone numbers (RelatedPerson)", "555 0124"),
        ("#5 fax numbers", "555 0105"),
        ("#6 email addresses", "qx06.wexley@example.org"),
        ("#7 social security numbers", "123-45-6707"),
        ("#8 medical record numbers", "MRN-QX08-4471"),
        (
            "#9 health plan beneficiary numbers (subscriber id)",
            "QX09-SUB-5521",
        ),
        (
            "#9 health plan beneficiary numbers (member id)",
            "QX09-MEM-7781",
        ),
        ("#10 account numbers", "QX10-ACCT-9931"),
        (
            "#10 account numbers (account name)",
            "Qx10 Wexley household",
        ),
        ("#11 certificate/license numbers", "QX11-LIC-3321"),
        ("#12 vehicle identifiers", "QX12-VIN-1HGCM82633A004352"),
        ("#13 device serial numbers", "QX13-SN-88812"),
        ("#13 device identifiers (UDI DI)", "QX13-UDI-00844588003288"),
        ("#13 device identifiers (UDI HRF)", "QX13HRF"),
        ("#14 URLs (telecom)", "qx14-home.example.org"),
        ("#14 URLs (note)", "qx14-note.example.org"),
        ("#15 IP addresses", "203.0.113.57"),
        ("#16 biometric identifiers (title)", "Qx16 fingerprint"),
        (
            "#16 biometric identifiers (url)",
            "qx16-biometrics.example.org",
        ),
        ("#16 biometric identifiers (description)", "Qx16 minutiae"),
        ("#17 full-face photographs (url)", "qx17-photos.example.org"),
        ("#17 full-face photographs (title)", "Qx17 face"),
        ("#18 other unique numbers (narrative)", "77418823"),
        (
            "#18 other unique characteristics (narrative)",
            "Qx18 narrative",
        ),
        (
            "#18 other unique numbers (pre-admission id)",
            "QX18-PREADMIT-5150",
        ),
        ("#18 other unique numbers (visit id)", "QX18-VISIT-0042"),
        (
            "#18 other unique characteristics (discharge text)",
            "Qx18 discharged",
        ),
        (
            "#18 other unique characteristics (organization display)",
            "Qx18 Wexley Family Clinic",
        ),
    ];
    let mut out: Vec<(&'static str, String)> =
        v.into_iter().map(|(k, s)| (k, s.to_owned())).collect();
    out.push((
        "#16 biometric identifiers (data)",
        b64("Qx16-fingerprint-minutiae"),
    ));
    out.push((
        "#17 full-face photographs (data)",
        b64("Qx17-face-jpeg-bytes"),
    ));
    out
}

/// sh1 (every identifier), sh2 (born over 90 years ago), sh-deny (a
/// patient-privacy deny-all Consent).
async fn load_safe_harbor(t: &TestApp) {
    let b64 = |s: &str| STANDARD.encode(s.as_bytes());
    let rs = vec![
        json!({"resourceType": "Organization", "id": "sh-org", "name": "Wexley Family Clinic"}),
        json!({"resourceType": "Patient", "id": "sh1",
            "text": {"status": "generated",
                "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Qx18 narrative: Qx01Wexley, chart 77418823</div>"},
            "contained": [{"resourceType": "RelatedPerson", "id": "kin",
                "patient": {"reference": "Patient/sh1"},
                "name": [{"family": "Qx01Containedkin"}]}],
            "extension": [{"url": "http://example.org/fhir/StructureDefinition/vehicle-id",
                "valueString": "QX12-VIN-1HGCM82633A004352"}],
            "identifier": [
                {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6707"},
                {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                 "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-QX08-4471"}],
            "active": true,
            "name": [{"use": "official", "family": "Qx01Wexley", "given": ["Qx01Bartholomew"]}],
            "telecom": [
                {"system": "phone", "value": "+1 617 555 0104", "use": "home"},
                {"system": "fax", "value": "+1 617 555 0105"},
                {"system": "email", "value": "qx06.wexley@example.org"},
                {"system": "url", "value": "https://qx14-home.example.org/wexley"}],
            "gender": "female",
            "birthDate": "1961-07-14",
            "deceasedDateTime": "2024-03-17T08:15:00Z",
            "address": [
                {"use": "home", "line": ["42 Qx02 Sentinel Street"], "city": "Qx02Cambridgeport",
                 "district": "Qx02County", "state": "MA", "postalCode": "02139", "country": "US"},
                {"use": "old", "line": ["7 Qx02 Hilltop Road"], "city": "Qx02Acworthville",
                 "state": "NH", "postalCode": "03601", "country": "US"}],
            "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
            "photo": [{"contentType": "image/jpeg", "data": b64("Qx17-face-jpeg-bytes"),
                "url": "https://qx17-photos.example.org/face.jpg", "title": "Qx17 face"}],
            "contact": [{
                "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
                "name": {"family": "Qx01Contactkin", "given": ["Qx01Ophelia"]},
                "telecom": [{"system": "phone", "value": "+1 617 555 0114"}]}],
            "managingOrganization": {"reference": "Organization/sh-org", "display": "Qx18 Wexley Family Clinic"}}),
        json!({"resourceType": "RelatedPerson", "id": "sh1-kin",
            "patient": {"reference": "Patient/sh1"},
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "SIS"}]}],
            "name": [{"family": "Qx01Relatedkin", "given": ["Qx01Mildred"]}],
            "telecom": [{"system": "phone", "value": "+1 617 555 0124"}],
            "birthDate": "1958-11-23",
            "address": [{"line": ["9 Qx02 Kinfolk Lane"], "city": "Qx02Cambridgeport", "state": "MA", "postalCode": "02139"}]}),
        json!({"resourceType": "Encounter", "id": "sh1-enc", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "identifier": [{"system": "http://example.org/visits", "value": "QX18-VISIT-0042"}],
            "subject": {"reference": "Patient/sh1", "display": "Qx01Wexley"},
            "period": {"start": "2022-02-03T09:00:00Z", "end": "2022-02-08T17:30:00Z"},
            "hospitalization": {
                "preAdmissionIdentifier": {"system": "http://example.org/preadmit", "value": "QX18-PREADMIT-5150"},
                "admitSource": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/admit-source", "code": "emd"}]},
                "dischargeDisposition": {"text": "Qx18 discharged to sister Qx01Mildred"}}}),
        json!({"resourceType": "Coverage", "id": "sh1-cov", "status": "active",
            "identifier": [{"system": "http://example.org/members", "value": "QX09-MEM-7781"}],
            "subscriberId": "QX09-SUB-5521",
            "beneficiary": {"reference": "Patient/sh1"},
            "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self"}]},
            "payor": [{"reference": "Organization/sh-org"}]}),
        json!({"resourceType": "Account", "id": "sh1-acct", "status": "active",
            "identifier": [{"system": "http://example.org/accounts", "value": "QX10-ACCT-9931"}],
            "name": "Qx10 Wexley household account",
            "subject": [{"reference": "Patient/sh1"}]}),
        json!({"resourceType": "Practitioner", "id": "sh-dr",
            "name": [{"family": "Lee"}],
            "qualification": [{"identifier": [{"system": "http://example.org/licenses", "value": "QX11-LIC-3321"}],
                "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "MD"}]}}]}),
        json!({"resourceType": "Device", "id": "sh1-dev", "status": "active",
            "patient": {"reference": "Patient/sh1"},
            "serialNumber": "QX13-SN-88812",
            "udiCarrier": [{"deviceIdentifier": "QX13-UDI-00844588003288",
                "carrierHRF": "(01)QX13HRF00844588003288"}],
            "type": {"coding": [{"system": "http://snomed.info/sct", "code": "14106009"}]}}),
        json!({"resourceType": "DocumentReference", "id": "sh1-doc", "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "34133-9"}]},
            "subject": {"reference": "Patient/sh1"},
            "description": "Qx16 minutiae of the right index finger",
            "content": [{"attachment": {"contentType": "image/png",
                "data": b64("Qx16-fingerprint-minutiae"),
                "url": "https://qx16-biometrics.example.org/fp.png",
                "title": "Qx16 fingerprint of the patient"}}]}),
        json!({"resourceType": "Observation", "id": "sh1-obs", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/sh1", "display": "Qx01Wexley Qx01Bartholomew"},
            "effectiveDateTime": "2022-02-05T10:20:00Z",
            "valueString": "portal login from 203.0.113.57",
            "note": [{"text": "see https://qx14-note.example.org/chart"}]}),
        json!({"resourceType": "Patient", "id": "sh2-nonagenarian", "gender": "male",
            "birthDate": "1931-05-05", "address": [{"state": "MA", "postalCode": "02139"}]}),
        json!({"resourceType": "Patient", "id": "sh-deny", "gender": "other",
            "name": [{"family": "Qx00Denied"}]}),
        obs("sh-deny-obs", "sh-deny", "2345-7", "2022-01-01T00:00:00Z"),
    ];
    t.load(rs).await;
    consent(t, "sh-deny", "sh-deny-all", "patient-privacy", "deny").await;
}

const SH_IDS: &[&str] = &[
    "sh1",
    "sh1-kin",
    "sh1-enc",
    "sh1-cov",
    "sh1-acct",
    "sh-dr",
    "sh1-dev",
    "sh1-doc",
    "sh1-obs",
    "sh2-nonagenarian",
    "sh-deny",
    "sh-deny-obs",
    "sh-org",
];

const SH_TYPES: &str =
    "Patient,RelatedPerson,Encounter,Coverage,Account,Practitioner,Device,DocumentReference,Observation";

#[tokio::test]
async fn every_safe_harbor_identifier_is_gone_from_the_export_bytes() {
    let w = world("opt-out").await;
    load_safe_harbor(&w.t).await;
    // the plain export (exempt loader, full record) carries every sentinel:
    // each absence below is the profile's doing
    let plain = w
        .export(&w.t.token, &format!("/fhir/$export?_type={SH_TYPES}"), None)
        .await;
    for (what, s) in sentinels() {
        assert!(plain.bytes.contains(&s), "{what}: {s} not planted");
    }

    let e = w
        .export(
            &w.researcher,
            &format!("/fhir/$export?_anonymizationConfig=safe-harbor&_type={SH_TYPES}"),
            Some("HRESCH"),
        )
        .await;
    for (what, s) in sentinels() {
        assert!(
            !e.bytes.contains(&s),
            "{what}: {s} is in the de-identified export:\n{}",
            e.bytes
        );
    }
    // no original id, anywhere
    let mut leaves = Vec::new();
    for (_, r) in &e.resources {
        strings(r, &mut leaves);
    }
    for id in SH_IDS {
        for s in &leaves {
            let token_hit = s
                .split(['/', '#', ' ', '?', '=', '&', ',', ':'])
                .any(|tok| tok == *id);
            assert!(!token_hit, "original id {id} in {s:?}");
        }
        if id.len() >= 6 {
            assert!(!e.bytes.contains(id), "original id {id} in the bytes");
        }
    }
    // no date finer than a year, no instant (meta.lastUpdated included)
    for s in &leaves {
        assert!(!has_month(s), "a date finer than the year survived: {s:?}");
    }
    for (t, r) in &e.resources {
        assert!(r["meta"].get("lastUpdated").is_none(), "{t}: {r}");
        assert!(r["meta"].get("versionId").is_none(), "{t}: {r}");
        assert!(r.get("text").is_none(), "{t} kept its narrative: {r}");
    }
    assert_tagged(&e, "ANONYED");

    // consent first: the denied patient is out (withheld and counted)
    let patients = e.of_type("Patient");
    assert_eq!(patients.len(), 2, "sh1 and sh2 only: {patients:?}");
    assert!(
        patients.iter().all(|p| p["gender"] != "other"),
        "{patients:?}"
    );
    assert!(
        e.of_type("Observation")
            .iter()
            .all(|o| !o["code"].to_string().contains("2345-7")),
        "the denied patient's Observation is out"
    );
    assert!(e.withheld() >= 2, "{}", e.manifest);

    // coded content survives; ZIPs generalized; birthDate to the year
    let p1 = *patients.iter().find(|p| p["gender"] == "female").unwrap();
    let p2 = *patients.iter().find(|p| p["gender"] == "male").unwrap();
    assert_eq!(p1["birthDate"], "1961", "{p1}");
    assert!(
        p2.get("birthDate").is_none(),
        "a birthDate of someone over 89 is removed: {p2}"
    );
    let mut zips: Vec<&str> = p1["address"]
        .as_array()
        .unwrap_or_else(|| panic!("address generalized, not removed: {p1}"))
        .iter()
        .map(|a| a["postalCode"].as_str().unwrap_or_else(|| panic!("{a}")))
        .collect();
    zips.sort_unstable();
    assert_eq!(zips, ["000", "021"], "{p1}");
    let states: Vec<&str> = p1["address"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["state"].as_str())
        .collect();
    assert!(states.contains(&"MA"), "the state is kept: {p1}");
    assert!(p1["maritalStatus"].to_string().contains("\"M\""), "{p1}");
    let o = e.one("Observation");
    assert_eq!(o["code"]["coding"][0]["system"], "http://loinc.org", "{o}");
    assert_eq!(o["code"]["coding"][0]["code"], "8867-4", "{o}");
    assert_eq!(o["status"], "final");
    let enc = e.one("Encounter");
    assert_eq!(enc["class"]["code"], "IMP", "{enc}");
    assert_eq!(enc["status"], "finished");
    assert_eq!(
        e.one("Practitioner")["qualification"][0]["code"]["coding"][0]["code"],
        "MD"
    );

    // references consistent within the export
    let pid = p1["id"].as_str().unwrap();
    assert_ne!(pid, "sh1");
    let to_p1 = format!("Patient/{pid}");
    assert_eq!(reference(&o["subject"]), to_p1, "{o}");
    assert!(o["subject"].get("display").is_none(), "{o}");
    assert_eq!(reference(&enc["subject"]), to_p1, "{enc}");
    assert_eq!(reference(&e.one("RelatedPerson")["patient"]), to_p1);
    assert_eq!(reference(&e.one("Coverage")["beneficiary"]), to_p1);
    assert_eq!(reference(&e.one("Account")["subject"][0]), to_p1);
    assert_eq!(reference(&e.one("Device")["patient"]), to_p1);
    assert_eq!(reference(&e.one("DocumentReference")["subject"]), to_p1);
    assert_eq!(
        e.one("DocumentReference")["type"]["coding"][0]["code"],
        "34133-9"
    );

    // the manifest names the profile, purpose and tag (no key set)
    let d = e.deid();
    assert_eq!(d["profile"], "safe-harbor", "{}", e.manifest);
    assert_eq!(d["securityTag"], "ANONYED", "{}", e.manifest);
    assert_eq!(d["purpose"], "HRESCH", "{}", e.manifest);
    assert!(d["keySet"].is_null(), "{}", e.manifest);
    assert!(
        e.manifest["deleted"].as_array().unwrap().is_empty(),
        "{}",
        e.manifest
    );

    // the shifted variant under a key set: the same identifiers gone (dates
    // shifted instead of cut to the year, identifiers hashed), PSEUDED
    let e = w
        .export(
            &w.researcher,
            &format!(
                "/fhir/$export?_anonymizationConfig=safe-harbor-shifted&_anonymizationKeySet=k1&_type={SH_TYPES}"
            ),
            Some("HRESCH"),
        )
        .await;
    for (what, s) in sentinels() {
        assert!(
            !e.bytes.contains(&s),
            "safe-harbor-shifted, {what}: {s} is in the export:\n{}",
            e.bytes
        );
    }
    for id in SH_IDS.iter().filter(|i| i.len() >= 6) {
        assert!(!e.bytes.contains(id), "original id {id} in the bytes");
    }
    assert_tagged(&e, "PSEUDED");
    assert_eq!(
        e.of_type("Patient").len(),
        2,
        "the denied patient stays out"
    );
    let p1 = e
        .of_type("Patient")
        .into_iter()
        .find(|p| p["gender"] == "female")
        .unwrap();
    let bd = p1["birthDate"].as_str().unwrap_or_else(|| panic!("{p1}"));
    assert_eq!(bd.len(), 10, "a shifted full date: {p1}");
    let d = engine(&w.t, "safe-harbor-shifted", "k1");
    assert_eq!(days(bd) - days("1961-07-14"), d.shift_days("sh1"), "{p1}");
    let mrn = p1["identifier"]
        .as_array()
        .unwrap_or_else(|| panic!("identifiers hashed, not removed: {p1}"));
    assert_eq!(mrn.len(), 2, "{p1}");
    for i in mrn {
        let v = i["value"].as_str().unwrap_or_else(|| panic!("{i}"));
        assert!(v.len() >= 16, "a keyed hash: {i}");
    }
}

// ---------------------------------------------------------------------------
// 2. Pseudonyms and date shifts per key set
// ---------------------------------------------------------------------------

/// Three patients, each with one Encounter told apart by its class code.
const PS: &[(&str, &str, &str)] = &[
    ("ps1", "AMB", "2021-04-10"),
    ("ps2", "IMP", "2019-01-20"),
    ("ps3", "EMER", "2015-09-01"),
];

async fn load_pseudonym_world(t: &TestApp) {
    let mut rs = Vec::new();
    for (p, class, start) in PS {
        rs.push(json!({"resourceType": "Patient", "id": p, "gender": "female",
            "birthDate": "1970-06-15",
            "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": format!("MRN-{p}-77")}],
            "name": [{"family": format!("Fam-{p}")}]}));
        rs.push(
            json!({"resourceType": "Encounter", "id": format!("{p}-enc"), "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
            "subject": {"reference": format!("Patient/{p}")},
            "period": {"start": start, "end": start}}),
        );
    }
    t.load(rs).await;
}

/// Per original patient: `(pseudonym, date shift in days)`, read off each
/// Encounter (its class code names the patient).
fn pseudonyms(e: &Export) -> BTreeMap<&'static str, (String, i64)> {
    let mut out = BTreeMap::new();
    for enc in e.of_type("Encounter") {
        let (p, _, start) = PS
            .iter()
            .find(|(_, c, _)| enc["class"]["code"] == *c)
            .unwrap_or_else(|| panic!("the class code is kept: {enc}"));
        let subject = reference(&enc["subject"]);
        let pseudonym = subject.strip_prefix("Patient/").unwrap().to_owned();
        assert!(
            e.of_type("Patient").iter().any(|x| x["id"] == pseudonym),
            "Encounter.subject {subject} names an exported Patient"
        );
        let shifted = enc["period"]["start"].as_str().unwrap();
        out.insert(*p, (pseudonym, days(shifted) - days(start)));
    }
    assert_eq!(out.len(), PS.len(), "{out:?}");
    out
}

#[tokio::test]
async fn pseudonyms_are_stable_per_key_set_and_differ_across_keys() {
    let w = world("opt-out").await;
    load_pseudonym_world(&w.t).await;
    let url = |key: Option<&str>| {
        let mut u =
            "/fhir/$export?_type=Patient,Encounter&_anonymizationConfig=safe-harbor-shifted"
                .to_owned();
        if let Some(k) = key {
            u.push_str(&format!("&_anonymizationKeySet={k}"));
        }
        u
    };
    let k1a = w
        .export(&w.researcher, &url(Some("k1")), Some("HRESCH"))
        .await;
    let k1b = w
        .export(&w.researcher, &url(Some("k1")), Some("HRESCH"))
        .await;
    let k2 = w
        .export(&w.researcher, &url(Some("k2")), Some("HRESCH"))
        .await;
    let none_a = w.export(&w.researcher, &url(None), Some("HRESCH")).await;
    let none_b = w.export(&w.researcher, &url(None), Some("HRESCH")).await;
    for e in [&k1a, &k1b, &k2] {
        assert_tagged(e, "PSEUDED");
        assert_eq!(e.deid()["securityTag"], "PSEUDED", "{}", e.manifest);
        assert_eq!(e.deid()["profile"], "safe-harbor-shifted");
    }
    assert_eq!(k1a.deid()["keySet"], "k1");
    assert_eq!(k2.deid()["keySet"], "k2");
    for e in [&none_a, &none_b] {
        assert_tagged(e, "ANONYED");
        assert_eq!(e.deid()["securityTag"], "ANONYED", "{}", e.manifest);
        assert!(e.deid()["keySet"].is_null());
    }
    let (a, b, c, n1, n2) = (
        pseudonyms(&k1a),
        pseudonyms(&k1b),
        pseudonyms(&k2),
        pseudonyms(&none_a),
        pseudonyms(&none_b),
    );
    // k1 twice: the same pseudonyms and shifts, and non-zero shifts
    assert_eq!(a, b, "k1 exports must agree");
    let d1 = engine(&w.t, "safe-harbor-shifted", "k1");
    for (p, (id, shift)) in &a {
        assert_eq!(*id, d1.pseudonym(p), "{p}: the k1 pseudonym");
        assert_eq!(*shift, d1.shift_days(p), "{p}: the k1 offset");
    }
    for (p, (_, shift)) in &a {
        assert_ne!(*shift, 0, "{p}: dates are shifted");
    }
    // each patient has their own pseudonym
    let mut ids: Vec<&String> = a.values().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), PS.len());
    // the crypto-hashed identifier is stable with k1 too, and not the MRN
    let ident = |e: &Export| -> Vec<String> {
        let mut v: Vec<String> = e
            .of_type("Patient")
            .iter()
            .map(|p| p["identifier"].to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ident(&k1a), ident(&k1b));
    assert_ne!(ident(&k1a), ident(&k2));
    for e in [&k1a, &k2, &none_a] {
        assert!(!e.bytes.contains("MRN-ps"), "{}", e.bytes);
        assert!(!e.bytes.contains("Fam-ps"), "{}", e.bytes);
    }
    // another key, or no key set: other pseudonyms and other shifts
    let shifts = |m: &BTreeMap<&str, (String, i64)>| m.values().map(|v| v.1).collect::<Vec<_>>();
    for (name, other) in [("k2", &c), ("no key set", &n1), ("no key set again", &n2)] {
        for (p, (id, _)) in &a {
            assert_ne!(*id, other[p].0, "{p}: k1 and {name} pseudonyms collide");
        }
        assert_ne!(shifts(&a), shifts(other), "k1 and {name} shift alike");
    }
    for (p, (id, _)) in &n1 {
        assert_ne!(
            *id, n2[p].0,
            "{p}: two exports without a key set are linkable"
        );
        assert_ne!(*id, c[p].0);
    }
}

fn p_id(e: &Export) -> String {
    e.one("Patient")["id"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// 3. Date shifts keep intervals
// ---------------------------------------------------------------------------

#[tokio::test]
async fn date_shifts_preserve_intervals_within_a_patient() {
    let w = world("opt-out").await;
    w.t.load(
        vec![
            json!({"resourceType": "Patient", "id": "iv1", "gender": "female", "birthDate": "1980-05-20"}),
            json!({"resourceType": "Encounter", "id": "iv1-enc", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": {"reference": "Patient/iv1"},
                "period": {"start": "2022-02-03T09:00:00Z", "end": "2022-02-08T09:00:00Z"}}),
            obs("iv1-a", "iv1", "2345-7", "2022-03-01T10:00:00Z"),
            obs("iv1-b", "iv1", "4548-4", "2022-03-31T10:00:00Z"),
        ],
    )
    .await;
    let e = w
        .export(
            &w.researcher,
            "/fhir/$export?_type=Patient,Encounter,Observation&_anonymizationConfig=safe-harbor-shifted&_anonymizationKeySet=k1",
            Some("HRESCH"),
        )
        .await;
    assert_tagged(&e, "PSEUDED");
    let enc = e.one("Encounter");
    let start = enc["period"]["start"]
        .as_str()
        .unwrap_or_else(|| panic!("{enc}"));
    let end = enc["period"]["end"]
        .as_str()
        .unwrap_or_else(|| panic!("{enc}"));
    assert!(!start.starts_with("2022-02-03"), "shifted: {enc}");
    assert!(!end.starts_with("2022-02-08"), "shifted: {enc}");
    assert_eq!(days(end) - days(start), 5, "the 5-day stay is kept: {enc}");
    let when = |code: &str| -> String {
        let o = e
            .of_type("Observation")
            .into_iter()
            .find(|o| o["code"]["coding"][0]["code"] == code)
            .unwrap_or_else(|| panic!("Observation {code}"));
        o["effectiveDateTime"]
            .as_str()
            .unwrap_or_else(|| panic!("{o}"))
            .to_owned()
    };
    let (a, b) = (when("2345-7"), when("4548-4"));
    assert!(!a.starts_with("2022-03-01"), "shifted: {a}");
    assert!(!b.starts_with("2022-03-31"), "shifted: {b}");
    assert_eq!(days(&b) - days(&a), 30, "the 30-day gap is kept: {a} {b}");
    // one offset per patient, across resources
    let shift = days(start) - days("2022-02-03");
    assert_ne!(shift, 0);
    let d = engine(&w.t, "safe-harbor-shifted", "k1");
    assert_eq!(shift, d.shift_days("iv1"), "the patient's keyed offset");
    assert!((1..=365).contains(&shift.abs()), "{shift}");
    assert_eq!(p_id(&e), d.pseudonym("iv1"));
    assert_eq!(days(&a) - days("2022-03-01"), shift, "{a}");
    let p = e.one("Patient");
    assert_eq!(
        reference(&enc["subject"]),
        format!("Patient/{}", p["id"].as_str().unwrap())
    );
    if let Some(bd) = p["birthDate"].as_str() {
        if bd.len() >= 10 {
            assert_eq!(days(bd) - days("1980-05-20"), shift, "{p}");
        }
    }
    // The original dates are gone, unless a shifted date lands on one (the
    // key, so the offset, is new each run: 2022-03-01 shifted by -26 days
    // is 2022-02-03).
    let shifted: Vec<&str> = [start, end, a.as_str(), b.as_str()]
        .iter()
        .map(|s| &s[..10])
        .collect();
    for original in ["2022-02-03", "2022-02-08", "2022-03-01", "2022-03-31"] {
        if !shifted.contains(&original) {
            assert!(!e.bytes.contains(original), "{original} in the export");
        }
    }
}

// ---------------------------------------------------------------------------
// 4. Research consent
// ---------------------------------------------------------------------------

/// r-in (no Consent, female), r-out (research deny, male), r-priv
/// (patient-privacy deny-all, other); one Observation each.
async fn load_research_world(t: &TestApp) {
    let mut rs = Vec::new();
    for (p, g) in [("r-in", "female"), ("r-out", "male"), ("r-priv", "other")] {
        rs.push(json!({"resourceType": "Patient", "id": p, "gender": g, "name": [{"family": format!("Fam-{p}")}]}));
        rs.push(obs(
            &format!("{p}-obs"),
            p,
            "2345-7",
            "2022-01-01T00:00:00Z",
        ));
    }
    t.load(rs).await;
    consent(t, "r-out", "r-out-research", "research", "deny").await;
    consent(t, "r-priv", "r-priv-all", "patient-privacy", "deny").await;
}

#[tokio::test]
async fn research_opt_out_patients_are_absent() {
    let w = world("opt-out").await;
    load_research_world(&w.t).await;
    for purpose in ["HRESCH", "HMARKT"] {
        // HRESCH: research Consents also apply in consent's own judgement;
        // HMARKT: only the research gate keeps r-out away
        let e = w
            .export(
                &w.researcher,
                "/fhir/$export?_type=Patient,Observation&_anonymizationConfig=safe-harbor&_anonymizationKeySet=k1",
                Some(purpose),
            )
            .await;
        let patients = e.of_type("Patient");
        assert_eq!(patients.len(), 1, "{purpose}: r-in only: {patients:?}");
        assert_eq!(patients[0]["gender"], "female", "{purpose}");
        let obs = e.of_type("Observation");
        assert_eq!(obs.len(), 1, "{purpose}: {obs:?}");
        assert_eq!(
            reference(&obs[0]["subject"]),
            format!("Patient/{}", patients[0]["id"].as_str().unwrap())
        );
        assert!(
            e.withheld() >= 4,
            "{purpose}: r-out's and r-priv's Patient and Observation are counted: {}",
            e.manifest
        );
        assert_eq!(e.deid()["purpose"], purpose);
        assert!(!e.bytes.contains("r-out") && !e.bytes.contains("Fam-"));
        // a named key set links ids and references across exports: PSEUDED
        assert_tagged(&e, "PSEUDED");
        // no pseudonym of theirs appears (k1 pseudonyms, recomputed)
        let d = engine(&w.t, "safe-harbor", "k1");
        assert_eq!(patients[0]["id"], d.pseudonym("r-in"), "{purpose}");
        for p in ["r-out", "r-priv", "r-out-obs", "r-priv-obs"] {
            assert!(
                !e.bytes.contains(&d.pseudonym(p)),
                "{purpose}: the pseudonym of {p} is in the export"
            );
        }
    }
    // a plain export by a plain client: r-out is there (research Consents
    // are for secondary use), r-priv is not
    let plain = w
        .export(&w.exporter, "/fhir/$export?_type=Patient,Observation", None)
        .await;
    let mut ids: Vec<String> = plain
        .resources
        .iter()
        .map(|(t, r)| format!("{t}/{}", r["id"].as_str().unwrap()))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "Observation/r-in-obs",
            "Observation/r-out-obs",
            "Patient/r-in",
            "Patient/r-out"
        ]
    );
}

#[tokio::test]
async fn research_opt_in_exports_only_permitting_patients() {
    let w = world("opt-in").await;
    let mut rs = Vec::new();
    for (p, g) in [("o-yes", "female"), ("o-none", "male"), ("o-no", "other")] {
        rs.push(json!({"resourceType": "Patient", "id": p, "gender": g}));
        rs.push(obs(
            &format!("{p}-obs"),
            p,
            "2345-7",
            "2022-01-01T00:00:00Z",
        ));
    }
    w.t.load(rs).await;
    consent(&w.t, "o-yes", "o-yes-research", "research", "permit").await;
    consent(&w.t, "o-no", "o-no-research", "research", "deny").await;
    for purpose in ["HRESCH", "HMARKT"] {
        let e = w
            .export(
                &w.researcher,
                "/fhir/$export?_type=Patient,Observation&_anonymizationConfig=safe-harbor",
                Some(purpose),
            )
            .await;
        let patients = e.of_type("Patient");
        assert_eq!(patients.len(), 1, "{purpose}: o-yes only: {patients:?}");
        assert_eq!(patients[0]["gender"], "female", "{purpose}");
        assert_eq!(e.of_type("Observation").len(), 1, "{purpose}");
        assert!(e.withheld() >= 4, "{purpose}: {}", e.manifest);
    }
    // opt-in is for de-identified exports only: a plain export has everyone
    let plain = w
        .export(&w.exporter, "/fhir/$export?_type=Patient", None)
        .await;
    assert_eq!(plain.of_type("Patient").len(), 3);
}

// ---------------------------------------------------------------------------
// 5. The secondary-use gate
// ---------------------------------------------------------------------------

#[tokio::test]
async fn secondary_use_is_required() {
    let w = world("opt-out").await;
    w.t.load(
        vec![json!({"resourceType": "Patient", "id": "g1", "gender": "female", "name": [{"family": "Gatewell"}]})],
    )
    .await;
    let sh = "/fhir/$export?_type=Patient&_anonymizationConfig=safe-harbor";
    let refused = |r: &TestResponse, status: StatusCode, what: &str| {
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(r.json["resourceType"], "OperationOutcome", "{what}");
    };
    let r = w.kick(&w.researcher, sh, None).await;
    refused(&r, StatusCode::FORBIDDEN, "no purpose");
    assert!(r.text().contains("HRESCH"), "{}", r.text());
    let r = w.kick(&w.researcher, sh, Some("TREAT")).await;
    refused(&r, StatusCode::FORBIDDEN, "purpose TREAT");
    let r = w.kick(&w.outsider, sh, Some("HRESCH")).await;
    refused(&r, StatusCode::FORBIDDEN, "a client not in [deid.clients]");
    let r = w
        .kick(
            &w.limited,
            &format!("{sh}&_anonymizationKeySet=k1"),
            Some("HRESCH"),
        )
        .await;
    refused(&r, StatusCode::FORBIDDEN, "limited naming k1");
    let r = w.kick(&w.limited, sh, Some("HMARKT")).await;
    refused(&r, StatusCode::FORBIDDEN, "limited stating HMARKT");
    let r = w
        .kick(
            &w.researcher,
            "/fhir/$export?_anonymizationConfig=no-such-profile",
            Some("HRESCH"),
        )
        .await;
    refused(&r, StatusCode::BAD_REQUEST, "an unknown profile");
    let r = w
        .kick(
            &w.researcher,
            "/fhir/$export?_anonymizationKeySet=k1",
            Some("HRESCH"),
        )
        .await;
    refused(&r, StatusCode::BAD_REQUEST, "a key set without a profile");
    let r = w
        .kick(
            &w.researcher,
            &format!("{sh}&_anonymizationKeySet=k9"),
            Some("HRESCH"),
        )
        .await;
    refused(&r, StatusCode::BAD_REQUEST, "an undeclared key set");
    // nothing of these was queued: no job ran
    assert_eq!(
        fhirgate::bulk::jobs::count_active(&w.t.app.state)
            .await
            .unwrap(),
        0
    );

    // the limited client without a key set may
    let e = w.export(&w.limited, sh, Some("HRESCH")).await;
    assert_eq!(e.of_type("Patient").len(), 1);
    assert_tagged(&e, "ANONYED");
    // POST with Parameters works too (at patient level)
    let r = w
        .kick_post(
            &w.researcher,
            "/fhir/Patient/$export",
            json!([{"name": "_anonymizationConfig", "valueString": "safe-harbor-shifted"},
                   {"name": "_anonymizationKeySet", "valueString": "k2"},
                   {"name": "_type", "valueString": "Patient"}]),
            Some("HMARKT"),
        )
        .await;
    let e = w.finish(&w.researcher, r).await;
    assert_eq!(e.deid()["profile"], "safe-harbor-shifted", "{}", e.manifest);
    assert_eq!(e.deid()["keySet"], "k2");
    assert_eq!(e.deid()["purpose"], "HMARKT");
    let p = e.one("Patient");
    assert_ne!(p["id"], "g1");
    assert!(!e.bytes.contains("Gatewell"), "{}", e.bytes);
    assert_tagged(&e, "PSEUDED");
    // the purpose may come from the token instead of the header
    let tok =
        w.t.token_as(
            "researcher",
            "system/*.rs",
            None,
            None,
            None,
            Some("HRESCH"),
        )
        .await;
    let e = w.export(&tok, sh, None).await;
    assert_eq!(e.deid()["purpose"], "HRESCH");
    assert_eq!(e.of_type("Patient").len(), 1);
    // a POST without the purpose is refused as a GET is
    let r = w
        .kick_post(
            &w.researcher,
            "/fhir/$export",
            json!([{"name": "_anonymizationConfig", "valueString": "safe-harbor"}]),
            None,
        )
        .await;
    refused(&r, StatusCode::FORBIDDEN, "POST without a purpose");
}

// ---------------------------------------------------------------------------
// 6. The audit trail
// ---------------------------------------------------------------------------

#[tokio::test]
async fn purpose_and_profile_are_audited() {
    let w = world("opt-out").await;
    w.t.load(vec![
        json!({"resourceType": "Patient", "id": "au1", "gender": "female"}),
        obs("au1-obs", "au1", "2345-7", "2022-01-01T00:00:00Z"),
    ])
    .await;
    let e = w
        .export(
            &w.researcher,
            "/fhir/$export?_type=Patient,Observation&_anonymizationConfig=safe-harbor&_anonymizationKeySet=k1",
            Some("HRESCH"),
        )
        .await;
    assert_eq!(e.resources.len(), 2);
    let ledger = fhirgate::audit::Ledger::new(w.t.app.state.clone());
    let rows = ledger.entries(0, 100_000).await.unwrap();
    let rid = format!("bulk-{}", e.job);
    let batch: Vec<(i64, Value)> = rows
        .iter()
        .filter(|r| r.request_id.as_deref() == Some(rid.as_str()))
        .map(|r| (r.seq, serde_json::from_str::<Value>(&r.entry).unwrap()))
        .filter(|(_, v)| v["kind"] == "rest")
        .collect();
    assert!(
        batch.len() >= 2,
        "every batch (Patient, Observation) is on the ledger: {batch:?}"
    );
    for (seq, v) in &batch {
        assert_eq!(v["purpose"], "HRESCH", "entry {seq}: {v}");
    }
    // the request events (no patient named) carry the query: the profile
    // and key set
    let auditor =
        w.t.token_as("auditor", "system/AuditEvent.rs", None, None, None, None)
            .await;
    let requests: Vec<i64> = batch
        .iter()
        .filter(|(_, v)| v.get("patient").is_none())
        .map(|(s, _)| *s)
        .collect();
    assert!(!requests.is_empty(), "{batch:?}");
    for seq in requests {
        let ev =
            w.t.request_with(
                &auditor,
                Method::GET,
                &format!("/fhir/AuditEvent/{seq}"),
                &[],
                None,
            )
            .await;
        assert_eq!(ev.status, StatusCode::OK, "{}", ev.text());
        let purposes = ev.json["agent"].to_string() + &ev.json["purposeOfEvent"].to_string();
        assert!(
            purposes.contains("HRESCH"),
            "AuditEvent/{seq}: {}",
            ev.text()
        );
        let queries: Vec<String> = ev.json["entity"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["query"].as_str())
            .map(|q| String::from_utf8(STANDARD.decode(q).unwrap()).unwrap())
            .collect();
        assert!(
            queries
                .iter()
                .any(|q| q.contains("_anonymizationConfig=safe-harbor")
                    && q.contains("_anonymizationKeySet=k1")),
            "AuditEvent/{seq} does not name the profile and key set: queries {queries:?}\n{}",
            ev.text()
        );
    }
}

/// The research gate runs after consent's release; what it keeps out was
/// not disclosed and must not be on the ledger as disclosed (a patient's
/// access history would show a secondary-use disclosure they never allowed).
#[tokio::test]
async fn research_gated_patients_are_not_recorded_as_disclosed() {
    let w = world("opt-in").await;
    let mut rs = Vec::new();
    for p in ["o-yes", "o-none"] {
        rs.push(json!({"resourceType": "Patient", "id": p}));
        rs.push(obs(
            &format!("{p}-obs"),
            p,
            "2345-7",
            "2022-01-01T00:00:00Z",
        ));
    }
    w.t.load(rs).await;
    consent(&w.t, "o-yes", "o-yes-research", "research", "permit").await;
    let e = w
        .export(
            &w.researcher,
            "/fhir/$export?_type=Patient,Observation&_anonymizationConfig=safe-harbor",
            Some("HMARKT"),
        )
        .await;
    assert_eq!(e.resources.len(), 2, "o-yes's Patient and Observation");
    let ledger = fhirgate::audit::Ledger::new(w.t.app.state.clone());
    let rows = ledger.entries(0, 100_000).await.unwrap();
    let rid = format!("bulk-{}", e.job);
    let released = |patient: &str| -> u64 {
        let pz = w.t.app.audit.pseudonym(&format!("Patient/{patient}"));
        rows.iter()
            .filter(|r| r.request_id.as_deref() == Some(rid.as_str()))
            .map(|r| serde_json::from_str::<Value>(&r.entry).unwrap())
            .filter(|v| v["kind"] == "rest" && v["patient"] == pz.as_str())
            .map(|v| v["refs"]["n"].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(released("o-yes"), 2, "o-yes's two resources were disclosed");
    assert_eq!(
        released("o-none"),
        0,
        "o-none's resources were kept out by the research gate, yet the ledger records them as disclosed"
    );
}

/// `[deid] purposes` replaces the default secondary-use purposes: a
/// configured one is accepted, a default one no longer listed is refused.
#[tokio::test]
async fn the_secondary_use_purposes_are_configurable() {
    let t = TestApp::with_config(
        "[deid]\npurposes = [\"PUBHLTH\"]\n[deid.clients.health-dept]\npurposes = [\"PUBHLTH\", \"HRESCH\"]\n",
    )
    .await;
    let token = t
        .token_as("health-dept", "system/*.rs", None, None, None, None)
        .await;
    for (purpose, want) in [
        ("PUBHLTH", StatusCode::ACCEPTED),
        ("HRESCH", StatusCode::FORBIDDEN),
    ] {
        let r = t
            .request_with(
                &token,
                Method::GET,
                "/fhir/$export?_type=Patient&_anonymizationConfig=safe-harbor",
                &[ASYNC, ("x-purpose-of-use", purpose)],
                None,
            )
            .await;
        assert_eq!(r.status, want, "{purpose}: {}", r.text());
    }
}
