//! Cases 4–6 of the scale-out suite: the consent index, bulk export and
//! the ledger, shared by the replicas (see `scale_out.rs` for what each
//! checks).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use conformance_tests::{cases::ensure, process::Process};
use serde_json::{json, Value};

use crate::{
    flows::PatientLogin,
    lb::{Body, Lb, NAMES},
    want, A, B,
};

/// `pat.jones`'s Consent `so-deny`, `active` or `inactive`.
fn consent(patient: &str, status: &str) -> Value {
    json!({"resourceType": "Consent", "id": "so-deny", "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "performer": [{"reference": format!("Patient/{patient}")}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}})
}

/// Case 4: `reader` is dr.lee's token from the EHR launch.
pub fn consent_enforced(lb: &Lb, login: &PatientLogin, reader: &str) -> Result<(), String> {
    let path = format!("/fhir/Patient/{}", login.patient);
    let read = |at, token: &str, status, what: &str| {
        want(&lb.get(Some(at), &path, token)?, &[status], what)
    };
    let put = |at, status, what: &str| {
        let consent = Body::Json(consent(&login.patient, status));
        let token = Some(login.token.as_str());
        let r = lb.send(
            Some(at),
            "PUT",
            "/fhir/Consent/so-deny",
            token,
            consent,
            &[],
        )?;
        want(&r, &[200, 201], what)
    };
    read(A, reader, 200, "A reads the patient before any Consent")?;
    read(B, reader, 200, "B reads the patient before any Consent")?;
    put(A, "active", "the patient's deny Consent through A")?;
    read(B, reader, 404, "B's next read after the deny Consent")?;
    read(A, reader, 404, "A's read after the deny Consent")?;
    read(B, &login.token, 200, "the patient's own read on B")?;
    put(B, "inactive", "the Consent set inactive through B")?;
    read(A, reader, 200, "A after the Consent went inactive on B")?;
    read(B, reader, 200, "B after the Consent went inactive")
}

/// Case 5.
pub fn bulk_export(lb: &Lb, system: &str) -> Result<(), String> {
    let r = lb.send(
        Some(A),
        "GET",
        "/fhir/$export?_type=Patient,Condition,Observation",
        Some(system),
        Body::None,
        &[
            ("accept", "application/fhir+json"),
            ("prefer", "respond-async"),
        ],
    )?;
    want(&r, &[202], "kick-off on A")?;
    let status = r
        .header("content-location")
        .ok_or("no Content-Location")?
        .to_owned();
    let started = Instant::now();
    let manifest = loop {
        let r = lb.get(Some(B), &status, system)?;
        match r.status {
            200 => break r.json,
            202 | 429 => {}
            _ => return Err(format!("status on B: {}", r.describe())),
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the export did not complete in 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(1100));
    };
    let output = manifest["output"].as_array().cloned().unwrap_or_default();
    ensure(output.len() >= 2, || {
        format!("wanted files of several types: {manifest}")
    })?;
    let mut served = [0; 2];
    for f in &output {
        let (ty, url) = (
            f["type"].as_str().unwrap_or_default(),
            f["url"].as_str().unwrap_or_default(),
        );
        let r = lb.send(
            None,
            "GET",
            url,
            Some(system),
            Body::None,
            &[("accept", "application/fhir+ndjson")],
        )?;
        want(&r, &[200], &format!("download {ty}"))?;
        served[r.replica] += 1;
        let lines: Vec<&str> = r.body.lines().filter(|l| !l.trim().is_empty()).collect();
        for l in &lines {
            let v: Value = serde_json::from_str(l).map_err(|e| format!("{ty} line: {e}"))?;
            ensure(v["resourceType"] == ty, || format!("a {ty} file holds {l}"))?;
        }
        if let Some(n) = f["count"].as_u64() {
            ensure(n == lines.len() as u64, || {
                format!("{ty}: manifest count {n}, file has {}", lines.len())
            })?;
        }
    }
    ensure(served.iter().all(|n| *n > 0), || {
        format!("downloads served per replica: {served:?}")
    })?;
    let r = lb.send(Some(B), "DELETE", &status, Some(system), Body::None, &[])?;
    want(&r, &[202], "DELETE of the job on B")?;
    let r = lb.get(Some(A), &status, system)?;
    want(&r, &[404], "status on A after B deleted the job")?;
    let first = output[0]["url"].as_str().unwrap_or_default();
    let r = lb.get(Some(A), first, system)?;
    want(&r, &[404], "a file on A after B deleted the job")?;
    Ok(())
}

/// How many checkpoints `ledger verify` says it verified.
fn checkpoints_verified(text: &str) -> Option<u64> {
    let i = text.find(" checkpoints verified")?;
    text[..i].rsplit(' ').next()?.parse().ok()
}

/// Case 6 (checkpoints every 10 entries: the timer of either replica signs
/// them into the one chain; waits up to 5 s for the first).
pub fn ledger(lb: &Lb, a: &Process, b: &Process) -> Result<String, String> {
    let waited = Instant::now();
    let text = loop {
        let out = a.cli(&["ledger", "verify"]).map_err(|e| e.to_string())?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure(out.status.success(), || {
            format!("ledger verify failed: {text}")
        })?;
        if checkpoints_verified(&text).is_some_and(|n| n > 0)
            || waited.elapsed() > Duration::from_secs(5)
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    ensure(checkpoints_verified(&text).is_some_and(|n| n > 0), || {
        format!("no checkpoint verified: {text}")
    })?;
    let out = b.cli(&["ledger", "export"]).map_err(|e| e.to_string())?;
    ensure(out.status.success(), || {
        format!(
            "ledger export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let mut rows: HashMap<u64, Option<String>> = HashMap::new();
    for (i, line) in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let seq = v["seq"].as_u64().ok_or("a line without seq")?;
        ensure(seq == i as u64, || {
            format!("gap in the ledger: position {i} holds seq {seq}")
        })?;
        rows.insert(seq, v["request_id"].as_str().map(str::to_owned));
    }
    let receipts = lb.receipts.borrow();
    for r in receipts.iter() {
        match rows.get(&r.seq) {
            Some(Some(id)) if *id == r.request_id => {}
            other => {
                return Err(format!(
                    "{} {}: receipt seq {} (request {}) not in the ledger as such: {other:?}",
                    NAMES[r.replica], r.what, r.seq, r.request_id
                ))
            }
        }
    }
    let per: Vec<usize> = (0..2)
        .map(|n| receipts.iter().filter(|r| r.replica == n).count())
        .collect();
    ensure(per.iter().all(|n| *n > 0), || {
        format!("receipts per replica: {per:?}")
    })?;
    let mut seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    ensure(seqs.len() == receipts.len(), || {
        "two answers carried the same X-Ledger-Seq".into()
    })?;
    Ok(format!(
        "{} entries, {} receipts ({per:?} from A, B); {}",
        rows.len(),
        receipts.len(),
        text.trim()
    ))
}
