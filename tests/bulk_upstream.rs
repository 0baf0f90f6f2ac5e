//! `bulk.upstream_export = true`: the export runs through the HTTP
//! upstream's own Bulk Data `$export`, the way Azure Health Data Services
//! offers it. The upstream is Medplum (FhirRouter + MemoryRepository) with
//! an AHDS-style `$export` writing NDJSON into Azure Blob Storage (Azurite,
//! the real Blob REST protocol); fhirgate kicks it off on its own upstream
//! identity, polls, reads the blobs through object_store's Azure client,
//! releases every resource through the same checks as a paged export
//! (consent at export time: a patient's deny-all Consent keeps their data
//! out, counted never named), serves its own files, then deletes the
//! upstream job and the upstream's blobs. Skips with a message when Azurite
//! is not installed unless `FHIRGATE_REQUIRE_AZURITE=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod azurite;
mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use serde_json::{json, Value};

const CONTAINER: &str = "fhir-export";

async fn seed(up: &azurite::Medplum) {
    for p in ["p1", "p2", "p3"] {
        up.put(
            json!({"resourceType": "Patient", "id": p, "name": [{"family": format!("Fam{p}")}]}),
        )
        .await;
        for code in ["2345-7", "4548-4"] {
            up.put(json!({"resourceType": "Observation", "id": format!("{p}-{code}"), "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": format!("Patient/{p}")}}))
                .await;
        }
        up.put(
            json!({"resourceType": "Condition", "id": format!("{p}-cond"),
            "subject": {"reference": format!("Patient/{p}")}, "code": {"text": "asthma"}}),
        )
        .await;
    }
}

async fn app(up: &azurite::Medplum, storage: &str) -> TestApp {
    TestApp::with_config(&format!(
        "[upstream]\nurl = \"{}\"\n\
         [bulk]\nmin_poll_seconds = 0\nscan_millis = 20\nupstream_export = true\n\
         {storage}\n\
         [consent]\nexempt_clients = [\"test-client\"]\n",
        up.base()
    ))
    .await
}

/// p2 denies everything, written through the facade as p2.
async fn deny_p2(t: &TestApp) {
    let pat = t
        .token_as(
            "portal-app",
            "patient/*.cruds",
            Some("p2"),
            Some("Patient/p2"),
            Some("patient"),
            None,
        )
        .await;
    let c = json!({"resourceType": "Consent", "id": "deny-p2", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p2"}, "performer": [{"reference": "Patient/p2"}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}});
    let r = t
        .request_with(&pat, Method::PUT, "/fhir/Consent/deny-p2", &[], Some(&c))
        .await;
    assert!(r.status.is_success(), "consent: {}", r.text());
}

fn about(r: &Value) -> String {
    match r["resourceType"].as_str().unwrap() {
        "Patient" => format!("Patient/{}", r["id"].as_str().unwrap()),
        _ => r["subject"]["reference"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn upstream_export_is_filtered_reserved_and_cleaned_up() {
    if !azurite::available() {
        return;
    }
    let az = azurite::Azurite::start();
    let up = azurite::Medplum::start(&az.endpoint(), CONTAINER);
    seed(&up).await;
    let t = app(
        &up,
        &format!(
            "[bulk.upstream_storage]\nuse_emulator = true\nendpoint = \"{}\"",
            az.endpoint()
        ),
    )
    .await;
    deny_p2(&t).await;
    let exporter = t
        .token_as("exporter", "system/*.rs", None, None, None, None)
        .await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());

    let (status, manifest, res) = azurite::export(
        &t,
        &exporter,
        "/fhir/$export?_type=Patient,Observation,Condition",
    )
    .await;
    // p1 and p3: a Patient, two Observations, a Condition each; p2 withheld
    let mut ids: Vec<String> = res
        .iter()
        .map(|(ty, r)| format!("{ty}/{}", r["id"].as_str().unwrap()))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "Condition/p1-cond",
            "Condition/p3-cond",
            "Observation/p1-2345-7",
            "Observation/p1-4548-4",
            "Observation/p3-2345-7",
            "Observation/p3-4548-4",
            "Patient/p1",
            "Patient/p3"
        ]
    );
    assert!(
        res.iter().all(|(_, r)| about(r) != "Patient/p2"),
        "a denied patient's data never appears"
    );
    let types: Vec<&str> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Patient", "Observation", "Condition"]);
    assert_eq!(manifest["requiresAccessToken"], true);
    let withheld = manifest["extension"]["https://fhirgate.dev/fhir/bulk/withheld-by-consent"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(withheld, 4, "{manifest}");
    // the error file (consent count only) never names a resource
    let text = manifest.to_string();
    assert!(!text.contains("p2-"), "{text}");

    // the upstream job was deleted, and its blobs removed
    let jobs = up.export_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].1, "deleted", "{jobs:?}");
    let blobs = az.list(CONTAINER).await;
    assert!(blobs.is_empty(), "upstream blobs left: {blobs:?}");

    // DELETE of fhirgate's job as usual
    let d = t
        .request_with(&exporter, Method::DELETE, &status, &[], None)
        .await;
    assert_eq!(d.status, StatusCode::ACCEPTED);
    worker.abort();
}

#[tokio::test]
async fn unreadable_upstream_files_are_reported_in_the_error_file() {
    if !azurite::available() {
        return;
    }
    let az = azurite::Azurite::start();
    let up = azurite::Medplum::start(&az.endpoint(), CONTAINER);
    seed(&up).await;
    // no [bulk.upstream_storage]: the blob URLs are on another origin than
    // the upstream, so fhirgate will not send its upstream token there
    let t = app(&up, "").await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let (_, manifest, res) = azurite::export(&t, &t.token, "/fhir/$export?_type=Patient").await;
    assert!(res.is_empty());
    let errors = manifest["error"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{manifest}");
    let url = errors[0]["url"].as_str().unwrap();
    let f = t
        .request_with(
            &t.token,
            Method::GET,
            url.strip_prefix("http://fhirgate.test").unwrap(),
            &[],
            None,
        )
        .await;
    assert_eq!(f.status, StatusCode::OK);
    let text = f.text();
    assert!(text.contains("another origin"), "{text}");
    assert!(!text.contains("127.0.0.1"), "no upstream address: {text}");
    // the upstream job is deleted all the same
    let jobs = up.export_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].1, "deleted");
    worker.abort();
}

#[tokio::test]
async fn a_job_taken_over_after_a_crash_resumes_the_same_upstream_job() {
    if !azurite::available() {
        return;
    }
    let az = azurite::Azurite::start();
    let up = azurite::Medplum::start(&az.endpoint(), CONTAINER);
    seed(&up).await;
    let t = TestApp::with_config(&format!(
        "[upstream]\nurl = \"{}\"\n\
         [bulk]\nmin_poll_seconds = 0\nscan_millis = 20\nlease_seconds = 3\nupstream_export = true\n\
         [bulk.upstream_storage]\nuse_emulator = true\nendpoint = \"{}\"\n\
         [consent]\nexempt_clients = [\"test-client\"]\n",
        up.base(),
        az.endpoint()
    ))
    .await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let r = t
        .request_with(
            &t.token,
            Method::GET,
            "/fhir/$export?_type=Patient,Observation",
            &[("prefer", "respond-async")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    // the worker dies once the upstream job is running
    for _ in 0..200 {
        if !up.export_jobs().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // (past the kick-off's marker write; the upstream job runs about 1 s)
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    worker.abort();
    assert_eq!(up.export_jobs().await.len(), 1);
    // after the lease ran out, a new worker takes the job over
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let status = r
        .header("content-location")
        .unwrap()
        .strip_prefix("http://fhirgate.test")
        .unwrap()
        .to_owned();
    let mut manifest = None;
    for _ in 0..1000 {
        let p = t
            .request_with(&t.token, Method::GET, &status, &[], None)
            .await;
        match p.status {
            StatusCode::ACCEPTED => tokio::time::sleep(std::time::Duration::from_millis(40)).await,
            StatusCode::OK => {
                manifest = Some(p.json);
                break;
            }
            s => panic!("poll {s}: {}", p.text()),
        }
    }
    let manifest = manifest.expect("the resumed job did not finish");
    let counts: Vec<(String, u64)> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["type"].as_str().unwrap().to_owned(),
                o["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [("Patient".to_owned(), 3), ("Observation".to_owned(), 6)]
    );
    // one upstream job only (the resumed one), deleted at the end
    let jobs = up.export_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].1, "deleted");
    worker.abort();
}

#[tokio::test]
async fn deleting_the_job_cancels_the_upstream_job() {
    if !azurite::available() {
        return;
    }
    let az = azurite::Azurite::start();
    let up = azurite::Medplum::start(&az.endpoint(), CONTAINER);
    seed(&up).await;
    let t = app(
        &up,
        &format!(
            "[bulk.upstream_storage]\nuse_emulator = true\nendpoint = \"{}\"",
            az.endpoint()
        ),
    )
    .await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let r = t
        .request_with(
            &t.token,
            Method::GET,
            "/fhir/$export?_type=Patient",
            &[("prefer", "respond-async")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    for _ in 0..200 {
        if !up.export_jobs().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = r
        .header("content-location")
        .unwrap()
        .strip_prefix("http://fhirgate.test")
        .unwrap()
        .to_owned();
    let d = t
        .request_with(&t.token, Method::DELETE, &status, &[], None)
        .await;
    assert_eq!(d.status, StatusCode::ACCEPTED);
    let mut jobs = up.export_jobs().await;
    for _ in 0..100 {
        if jobs.iter().all(|(_, s)| s == "deleted") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        jobs = up.export_jobs().await;
    }
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].1, "deleted", "{jobs:?}");
    assert!(az.list(CONTAINER).await.is_empty());
    worker.abort();
}

/// An instant `ms` milliseconds from now, as `_since` takes it.
fn instant_from_now(ms: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ms);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn since_exports_list_deletions_made_through_fhirgate() {
    if !azurite::available() {
        return;
    }
    let az = azurite::Azurite::start();
    let up = azurite::Medplum::start(&az.endpoint(), CONTAINER);
    seed(&up).await;
    let t = app(
        &up,
        &format!(
            "[bulk.upstream_storage]\nuse_emulator = true\nendpoint = \"{}\"",
            az.endpoint()
        ),
    )
    .await;
    deny_p2(&t).await;
    // Medplum keeps no history of a deleted resource and has no type history
    let direct = reqwest::get(format!("{}/Observation/_history", up.base()))
        .await
        .unwrap();
    assert_eq!(
        direct.status().as_u16(),
        404,
        "the upstream has no type history"
    );

    // deleted before `_since`: not listed
    let early = t.delete("/fhir/Observation/p3-4548-4").await;
    assert!(early.status.is_success(), "{}", early.text());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let since = instant_from_now(-500);
    // deleted after it: by DELETE, by a batch entry, and one of the patient
    // whose consent denies everything (never named)
    for path in ["/fhir/Observation/p1-2345-7", "/fhir/Observation/p2-2345-7"] {
        let r = t.delete(path).await;
        assert!(r.status.is_success(), "{path}: {}", r.text());
    }
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "DELETE", "url": "Condition/p3-cond"}},
        {"request": {"method": "DELETE", "url": "Condition/never-there"}}]});
    let b = t.post("/fhir", &batch).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());

    let exporter = t
        .token_as("exporter", "system/*.rs", None, None, None, None)
        .await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let since_q: String = url::form_urlencoded::byte_serialize(since.as_bytes()).collect();
    let (_, manifest, _) = azurite::export(
        &t,
        &exporter,
        &format!("/fhir/$export?_type=Observation,Condition&_since={since_q}"),
    )
    .await;
    worker.abort();
    assert!(
        up.export_jobs().await.is_empty(),
        "a _since export pages searches (the upstream's $export lists no deletions)"
    );
    let mut deleted = Vec::new();
    for d in manifest["deleted"].as_array().unwrap() {
        assert_eq!(d["type"], "Bundle", "{manifest}");
        let url = d["url"].as_str().unwrap();
        let f = t
            .request_with(
                &exporter,
                Method::GET,
                url.strip_prefix("http://fhirgate.test").unwrap(),
                &[],
                None,
            )
            .await;
        assert_eq!(f.status, StatusCode::OK, "{}", f.text());
        for line in f.text().lines().filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["type"], "transaction");
            assert_eq!(v["entry"][0]["request"]["method"], "DELETE");
            deleted.push(v["entry"][0]["request"]["url"].as_str().unwrap().to_owned());
        }
    }
    deleted.sort();
    assert_eq!(
        deleted,
        ["Condition/p3-cond", "Observation/p1-2345-7"],
        "{manifest}"
    );
    assert!(!manifest.to_string().contains("p2-"), "{manifest}");
}
