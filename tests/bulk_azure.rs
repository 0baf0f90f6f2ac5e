//! Bulk Data export files in Azure Blob Storage (`bulk.storage_url =
//! "az://<container>/<prefix>"`), against Azurite, Microsoft's Azure Storage
//! emulator speaking the real Blob REST protocol: the files are written as
//! blobs, served by fhirgate (never a storage URL), and DELETE removes them.
//! Skips with a message when Azurite is not installed unless
//! `FHIRGATE_REQUIRE_AZURITE=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod azurite;
mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::TestApp;
use serde_json::json;

#[tokio::test]
async fn export_files_live_in_blob_storage_and_delete_removes_them() {
    if !azurite::available() {
        return;
    }
    let az = azurite::Azurite::start();
    az.create_container("exports").await;
    let t = TestApp::with_config(&format!(
        "[bulk]\nmin_poll_seconds = 0\nscan_millis = 20\nfile_max_resources = 2\n\
         storage_url = \"az://exports/fhirgate-test\"\n\
         [bulk.azure]\nuse_emulator = true\nendpoint = \"{}\"\n",
        az.endpoint()
    ))
    .await;
    let mut entries = Vec::new();
    for p in ["a1", "a2", "a3"] {
        entries.push(
            json!({"resource": {"resourceType": "Patient", "id": p, "gender": "male"},
            "request": {"method": "PUT", "url": format!("Patient/{p}")}}),
        );
        entries.push(json!({"resource": {"resourceType": "Observation", "id": format!("{p}-o"),
            "status": "final", "code": {"text": "weight"}, "subject": {"reference": format!("Patient/{p}")}},
            "request": {"method": "PUT", "url": format!("Observation/{p}-o")}}));
    }
    let r = t
        .post(
            "/fhir",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());

    let (status, manifest, res) =
        azurite::export(&t, &t.token, "/fhir/$export?_type=Patient,Observation").await;
    let mut ids: Vec<String> = res
        .iter()
        .map(|(ty, r)| format!("{ty}/{}", r["id"].as_str().unwrap()))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "Observation/a1-o",
            "Observation/a2-o",
            "Observation/a3-o",
            "Patient/a1",
            "Patient/a2",
            "Patient/a3"
        ]
    );
    // split at 2 lines: two files per type
    assert_eq!(manifest["output"].as_array().unwrap().len(), 4);

    // the files are blobs below the prefix, one per manifest entry
    let job = status.rsplit('/').next().unwrap().to_owned();
    let mut blobs = az.list("exports").await;
    blobs.sort();
    let mut expected: Vec<String> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let name = o["url"].as_str().unwrap().rsplit('/').next().unwrap();
            format!("fhirgate-test/{job}/{name}")
        })
        .collect();
    expected.sort();
    assert_eq!(blobs, expected);

    // DELETE removes the blobs; later polls are 404
    let d = t
        .request_with(&t.token, Method::DELETE, &status, &[], None)
        .await;
    assert_eq!(d.status, StatusCode::ACCEPTED, "{}", d.text());
    let mut left = az.list("exports").await;
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = az.list("exports").await;
    }
    assert!(left.is_empty(), "blobs left after DELETE: {left:?}");
    let p = t
        .request_with(&t.token, Method::GET, &status, &[], None)
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    worker.abort();
}

#[tokio::test]
async fn a_missing_container_fails_the_job_without_crashing() {
    if !azurite::available() {
        return;
    }
    let az = azurite::Azurite::start();
    let t = TestApp::with_config(&format!(
        "[bulk]\nmin_poll_seconds = 0\nscan_millis = 20\n\
         storage_url = \"az://no-such-container\"\n\
         [bulk.azure]\nuse_emulator = true\nendpoint = \"{}\"\n",
        az.endpoint()
    ))
    .await;
    t.put(
        "/fhir/Patient/x1",
        &json!({"resourceType": "Patient", "id": "x1"}),
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
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let status = r
        .header("content-location")
        .unwrap()
        .strip_prefix("http://fhirgate.test")
        .unwrap()
        .to_owned();
    let mut last = None;
    for _ in 0..600 {
        let p = t
            .request_with(&t.token, Method::GET, &status, &[], None)
            .await;
        if p.status != StatusCode::ACCEPTED {
            last = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = last.expect("the job did not end");
    assert!(
        p.status == StatusCode::INTERNAL_SERVER_ERROR || p.status == StatusCode::OK,
        "{}: {}",
        p.status,
        p.text()
    );
    worker.abort();
}
