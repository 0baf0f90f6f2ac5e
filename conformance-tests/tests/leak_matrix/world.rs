//! The state a cell runs in: loading the seeds, writing Consents (as the
//! patient, as the exempt loader), waiting for the poller, and the checks
//! that span requests (notifications, revocation, sealed paging links).

use std::time::{Duration, Instant};

use conformance_tests::{Api, TestResult};
use serde_json::Value;

use crate::cx::{Cx, Who};
use crate::seed::{self, consent, provision, P1};

/// How long the poller may take to see a Consent written elsewhere.
const POLL_WAIT: Duration = Duration::from_secs(15);

/// Loads the seeds as the exempt loader and reads each back as stored.
pub fn load(cx: &mut Cx, loader: &Api) -> TestResult {
    for s in cx.seeds {
        let path = s.reference();
        if let Some(p) = &s.prior {
            let r = loader.send_json("PUT", &path, &[], &p.body)?;
            let v = r.json["meta"]["versionId"].as_str();
            match (r.status, v) {
                (200 | 201, Some(v)) => {
                    cx.prior_versions.insert(path.clone(), v.to_owned());
                }
                _ => return Err(format!("loading {path} v1: {} {}", r.status, r.text).into()),
            }
        }
        let r = loader.send_json("PUT", &path, &[], &s.body)?;
        if !matches!(r.status, 200 | 201) {
            return Err(format!("loading {path}: {} {}", r.status, r.text).into());
        }
    }
    for s in cx.seeds {
        let path = s.reference();
        let r = loader.get(&path)?;
        if r.status != 200 {
            return Err(format!("reading back {path}: {} {}", r.status, r.text).into());
        }
        cx.stored.insert(path, r.json);
    }
    for s in cx.seeds.iter().filter(|s| s.deleted) {
        let r = loader.send("DELETE", &s.reference(), &[], None)?;
        if !matches!(r.status, 200 | 204) {
            return Err(format!("deleting {}: {} {}", s.reference(), r.status, r.text).into());
        }
    }
    Ok(())
}

/// PUTs a Consent of P1 as `who`; the Consent id becomes a needle.
pub fn write_consent(cx: &mut Cx, who: &impl Put, id: &str, status: &str, provision: Value) {
    let body = consent(id, status, provision);
    match who.put(&format!("Consent/{id}"), &body) {
        Ok((200 | 201, _)) => {}
        Ok((s, text)) => cx.fail(
            "writer",
            &format!("PUT Consent/{id}"),
            format!("{s} {text}"),
        ),
        Err(e) => cx.fail("writer", &format!("PUT Consent/{id}"), e),
    }
    if !cx.consents.iter().any(|c| c == id) {
        cx.consents.push(id.to_owned());
    }
}

/// A PUT of JSON (the loader's `Api` or a caller).
pub trait Put {
    fn put(&self, path: &str, body: &Value) -> TestResult<(u16, String)>;
}

impl Put for Api {
    fn put(&self, path: &str, body: &Value) -> TestResult<(u16, String)> {
        let r = self.send_json("PUT", path, &[], body)?;
        Ok((r.status, r.text))
    }
}

impl Put for Who {
    fn put(&self, path: &str, body: &Value) -> TestResult<(u16, String)> {
        let r = self.json("PUT", path, &[], body)?;
        Ok((r.status, r.text))
    }
}

/// Polls `GET path` until it answers `status` (the Consent poller runs every second).
pub fn wait_for(who: &Who, path: &str, status: u16) -> bool {
    let start = Instant::now();
    while start.elapsed() < POLL_WAIT {
        if who.get(path).is_ok_and(|r| r.status == status) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The patient's break-the-glass notifications (as the exempt loader sees them).
pub fn notifications(loader: &Api) -> TestResult<Vec<Value>> {
    let r = loader.get(&format!("Communication?subject=Patient/{P1}&_count=1000"))?;
    if r.status != 200 {
        return Err(format!("Communication search: {} {}", r.status, r.text).into());
    }
    Ok(r.json["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .filter(|c| c.to_string().contains("BTG"))
        .collect())
}

/// The patient sees their own record whole: the SUD record Part 2 hides
/// from others, and their own sensitivity tags.
pub fn own_record(cx: &mut Cx, patient: &Who) {
    for (path, must) in [
        ("Condition/cnd-sud", "F11.20"),
        ("Condition/cnd-psy", "\"PSY\""),
    ] {
        match patient.get(path) {
            Ok(r) if r.status == 200 && r.text.contains(must) => {}
            Ok(r) => cx.fail(
                "patient",
                path,
                format!("own record: {} {}", r.status, r.text),
            ),
            Err(e) => cx.fail("patient", path, e),
        }
    }
}

/// Paging links are bound to their caller: another caller's use is refused.
pub fn sealed_links(cx: &mut Cx, clin: &Who, payer: &Who) {
    let path = format!("Observation?{}&_count=1", seed::PG_QUERY);
    let next = match clin.get(&path) {
        Ok(r) => r.json["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str().map(str::to_owned)),
        Err(e) => return cx.fail("clinician", &path, e),
    };
    let Some(next) = next else {
        return cx.fail(
            "clinician",
            &path,
            "no next link with one visible match per page",
        );
    };
    match payer.get(&next) {
        Ok(r) if r.status == 400 => {}
        Ok(r) => cx.fail(
            "payer",
            "the clinician's next link",
            format!("{} {}", r.status, r.text),
        ),
        Err(e) => cx.fail("payer", "the clinician's next link", e),
    }
}

/// Revocation takes effect on the very next request, and open paging
/// started under the old consent is invalidated.
pub fn revoked(cx: &mut Cx, clin: &Who, patient: &Who) {
    let path = format!("Observation?{}&_count=1", seed::PG_QUERY);
    let next = clin.get(&path).ok().and_then(|r| {
        r.json["link"]
            .as_array()?
            .iter()
            .find(|l| l["relation"] == "next")?["url"]
            .as_str()
            .map(str::to_owned)
    });
    match clin.get("Observation/obs-one-a") {
        Ok(r) if r.status == 404 => {}
        Ok(r) => cx.fail(
            "clinician",
            "GET Observation/obs-one-a under deny all",
            r.status,
        ),
        Err(e) => cx.fail("clinician", "GET Observation/obs-one-a", e),
    }
    write_consent(cx, patient, "cns-matrix", "inactive", provision::deny_all());
    match clin.get("Observation/obs-one-a") {
        Ok(r) if r.status == 200 => {}
        Ok(r) => cx.fail(
            "clinician",
            "GET Observation/obs-one-a right after the revocation",
            format!("{} {}", r.status, r.text),
        ),
        Err(e) => cx.fail("clinician", "GET Observation/obs-one-a", e),
    }
    match next.map(|n| clin.get(&n)) {
        Some(Ok(r)) if r.status == 410 => {}
        Some(Ok(r)) => cx.fail(
            "clinician",
            "a next link from before the revocation",
            format!("{} {}", r.status, r.text),
        ),
        Some(Err(e)) => cx.fail("clinician", "next link", e),
        None => cx.fail("clinician", &path, "no next link"),
    }
}
