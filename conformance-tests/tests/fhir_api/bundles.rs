//! Transaction (atomic, `urn:uuid` references resolved) and batch Bundles
//! POSTed to the base.

use conformance_tests::{check, ensure, TestResult};
use serde_json::json;

use super::{patient, Run};

pub fn transaction(run: &mut Run) -> TestResult {
    let pid = "urn:uuid:6f1c0a52-3c1e-4d2a-9a51-0c8f5a6b7d01";
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": pid, "resource": patient("Transacted", "t-1"),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final",
                          "code": {"text": "heart rate"}, "subject": {"reference": pid}},
             "request": {"method": "POST", "url": "Observation"}}
        ]
    });
    let r = run.api.send_json("POST", "", &[], &bundle)?;
    check::status(&r, &[200], "transaction")?;
    ensure!(
        r.json["type"] == "transaction-response",
        "type is {}",
        r.json["type"]
    );
    check::facade_urls(run.api, &r.json)?;
    let entries = r.json["entry"].as_array().ok_or("no entries")?;
    ensure!(entries.len() == 2, "{} entries", entries.len());
    let mut locations = Vec::new();
    for e in entries {
        let status = e["response"]["status"].as_str().unwrap_or("");
        ensure!(status.starts_with("201"), "entry status {status}");
        let loc = e["response"]["location"]
            .as_str()
            .ok_or("entry without response.location")?;
        ensure!(
            loc.starts_with(&run.api.base),
            "location {loc} not on the facade"
        );
        locations.push(loc.to_owned());
    }
    let patient = run.api.get(&locations[0])?;
    let obs = run.api.get(&locations[1])?;
    check::status(&obs, &[200], "read transacted Observation")?;
    let pid_real = patient.json["id"]
        .as_str()
        .ok_or("transacted Patient unreadable")?;
    let subject = obs.json["subject"]["reference"].as_str().unwrap_or("");
    ensure!(
        subject.ends_with(&format!("Patient/{pid_real}")),
        "subject {subject} not resolved to {pid_real}"
    );
    Ok(())
}

pub fn batch(run: &mut Run) -> TestResult {
    let bundle = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": format!("Patient/{}", run.id)}},
            {"resource": patient("Batched", "b-1"), "request": {"method": "POST", "url": "Patient"}}
        ]
    });
    let r = run.api.send_json("POST", "", &[], &bundle)?;
    check::status(&r, &[200], "batch")?;
    ensure!(
        r.json["type"] == "batch-response",
        "type is {}",
        r.json["type"]
    );
    check::facade_urls(run.api, &r.json)?;
    let statuses: Vec<&str> = r.json["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["response"]["status"].as_str().unwrap_or(""))
        .collect();
    ensure!(
        statuses.len() == 2 && statuses[0].starts_with("200") && statuses[1].starts_with("201"),
        "batch statuses {statuses:?}"
    );
    Ok(())
}
