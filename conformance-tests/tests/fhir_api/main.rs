//! FHIR R4 REST API, common subset, black-box against the real `fhirgate`
//! binary on both upstreams: the embedded SQLite store and a real independent
//! FHIR engine (Medplum, `conformance-tests/medplum/`) as the HTTP upstream.
//!
//! Every answer is checked by the client for the upstream's address
//! (`127.0.0.1:<medplum port>` and its `/fhir/R4` base path) in any header or
//! body: the facade's rule is that it never reaches a client. Where the two
//! engines legitimately differ (version ids, read after delete) the
//! expectation says so; see `conformance-tests/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use conformance_tests::{check, ensure, Api, Fhirgate, Medplum, TestResult};
use serde_json::{json, Value};

mod bundles;
mod search;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Upstream {
    Embedded,
    Medplum,
}

/// State carried between the steps of one run.
pub(crate) struct Run<'a> {
    api: &'a Api,
    up: Upstream,
    /// Created Patient id and its first and second version ids.
    id: String,
    v1: String,
    v2: String,
}

#[test]
fn embedded_upstream_passes_the_common_suite() -> TestResult {
    let gate = Fhirgate::start(None)?;
    let api = Api::new(&gate.fhir_base(), vec![])?.with_bearer(gate.system_token()?);
    run_suite(&api, Upstream::Embedded)
        .map_err(|e| format!("{e}\n--- fhirgate log ---\n{}", gate.log_tail()).into())
}

#[test]
fn medplum_upstream_passes_the_common_suite() -> TestResult {
    let medplum = Medplum::start()?;
    let gate = Fhirgate::start(Some(&medplum.base_url()))?;
    let forbidden = vec![
        format!("127.0.0.1:{}", medplum.port),
        format!("localhost:{}", medplum.port),
        "/fhir/R4".to_owned(),
    ];
    let api = Api::new(&gate.fhir_base(), forbidden)?.with_bearer(gate.system_token()?);
    run_suite(&api, Upstream::Medplum)
        .map_err(|e| format!("{e}\n--- fhirgate log ---\n{}", gate.log_tail()).into())
}

/// The leak guard is not vacuous: talking to Medplum directly, its own
/// address is in its answers, and the client must refuse them.
#[test]
fn leak_guard_catches_the_upstream_address() -> TestResult {
    let medplum = Medplum::start()?;
    let direct = Api::new(
        &medplum.base_url(),
        vec![format!("127.0.0.1:{}", medplum.port)],
    )?;
    match direct.get("metadata") {
        Err(e) => {
            ensure!(
                e.to_string().contains("leaks the upstream address"),
                "unexpected error: {e}"
            );
            Ok(())
        }
        Ok(r) => Err(format!("leak not detected in: {}", r.text).into()),
    }
}

type Step = fn(&mut Run) -> TestResult;

/// Runs every step, collecting failures so one broken interaction does not hide the rest.
fn run_suite(api: &Api, up: Upstream) -> TestResult {
    let steps: &[(&str, Step)] = &[
        ("metadata", metadata),
        ("create", create),
        ("read", read),
        ("vread", vread),
        ("update", update),
        ("update with stale If-Match", stale_if_match),
        ("search by token and string", search::search),
        ("POST _search equals GET", search::post_search),
        ("history instance", search::history),
        ("transaction with urn:uuid references", bundles::transaction),
        ("batch", bundles::batch),
        ("paging links followed through the facade", search::paging),
        ("bad requests", bad_requests),
        ("delete then read", delete),
    ];
    let mut run = Run {
        api,
        up,
        id: String::new(),
        v1: String::new(),
        v2: String::new(),
    };
    let mut failures = Vec::new();
    for (name, step) in steps {
        if let Err(e) = step(&mut run) {
            failures.push(format!("[{up:?}] {name}: {e}"));
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        steps.len(),
        failures.join("\n")
    );
    Ok(())
}

fn metadata(run: &mut Run) -> TestResult {
    let r = run.api.get("metadata")?;
    check::status(&r, &[200], "GET metadata")?;
    ensure!(
        r.json["resourceType"] == "CapabilityStatement",
        "not a CapabilityStatement"
    );
    ensure!(
        r.json["fhirVersion"] == "4.0.1",
        "fhirVersion is {}",
        r.json["fhirVersion"]
    );
    Ok(())
}

pub(crate) fn patient(family: &str, value: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:fhirgate:conformance", "value": value}],
        "name": [{"family": family, "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1970-01-01"
    })
}

fn create(run: &mut Run) -> TestResult {
    let r = run
        .api
        .send_json("POST", "Patient", &[], &patient("Conformance", "p-1"))?;
    check::status(&r, &[201], "POST Patient")?;
    let id = r.json["id"]
        .as_str()
        .ok_or("created body has no id")?
        .to_owned();
    let v1 = r.json["meta"]["versionId"]
        .as_str()
        .ok_or("created body has no meta.versionId")?
        .to_owned();
    let location = r.header("location").ok_or("no Location")?;
    ensure!(
        location.starts_with(&format!("{}/Patient/{id}", run.api.base)),
        "Location {location} is not the facade's Patient/{id}"
    );
    ensure!(
        r.header("etag") == Some(&format!("W/\"{v1}\"")),
        "ETag {:?} is not W/\"{v1}\"",
        r.header("etag")
    );
    if run.up == Upstream::Embedded {
        ensure!(v1 == "1", "first version is {v1}, not 1");
    }
    run.id = id;
    run.v1 = v1;
    Ok(())
}

fn read(run: &mut Run) -> TestResult {
    let r = run.api.get(&format!("Patient/{}", run.id))?;
    check::status(&r, &[200], "read")?;
    ensure!(
        r.json["id"] == run.id.as_str(),
        "read returned id {}",
        r.json["id"]
    );
    ensure!(
        check::etag(&r).as_deref() == Some(run.v1.as_str()),
        "read ETag {:?}",
        r.header("etag")
    );
    let lm = r
        .header("last-modified")
        .ok_or("read has no Last-Modified")?;
    ensure!(
        lm.ends_with("GMT"),
        "Last-Modified is not an HTTP date: {lm}"
    );
    Ok(())
}

fn vread(run: &mut Run) -> TestResult {
    let r = run
        .api
        .get(&format!("Patient/{}/_history/{}", run.id, run.v1))?;
    check::status(&r, &[200], "vread")?;
    ensure!(
        r.json["meta"]["versionId"] == run.v1.as_str(),
        "vread gave version {}",
        r.json["meta"]["versionId"]
    );
    Ok(())
}

fn update(run: &mut Run) -> TestResult {
    let mut body = patient("Conformance", "p-1");
    body["id"] = json!(run.id);
    body["active"] = json!(true);
    let if_match = format!("W/\"{}\"", run.v1);
    let r = run.api.send_json(
        "PUT",
        &format!("Patient/{}", run.id),
        &[("if-match", &if_match)],
        &body,
    )?;
    check::status(&r, &[200], "update")?;
    let v2 = r.json["meta"]["versionId"]
        .as_str()
        .ok_or("updated body has no versionId")?
        .to_owned();
    ensure!(v2 != run.v1, "update kept version {v2}");
    ensure!(
        check::etag(&r).as_deref() == Some(v2.as_str()),
        "update ETag {:?} vs {v2}",
        r.header("etag")
    );
    ensure!(r.json["active"] == true, "update not applied");
    if run.up == Upstream::Embedded {
        ensure!(v2 == "2", "second version is {v2}, not 2");
    }
    run.v2 = v2;
    Ok(())
}

fn stale_if_match(run: &mut Run) -> TestResult {
    let mut body = patient("Conformance", "p-1");
    body["id"] = json!(run.id);
    let stale = format!("W/\"{}\"", run.v1);
    let r = run.api.send_json(
        "PUT",
        &format!("Patient/{}", run.id),
        &[("if-match", &stale)],
        &body,
    )?;
    check::outcome(&r, 412, "update with stale If-Match")
}

fn bad_requests(run: &mut Run) -> TestResult {
    let api = run.api;
    check::outcome(&api.get("Foo")?, 404, "unknown resource type")?;
    let json = [("content-type", "application/fhir+json")];
    let r = api.send(
        "POST",
        "Patient",
        &json,
        Some(b"{\"resourceType\": \"Patient\",".to_vec()),
    )?;
    check::outcome(&r, 400, "malformed JSON")?;
    let r = api.send_json(
        "POST",
        "Patient",
        &[],
        &json!({"resourceType": "Observation", "status": "final"}),
    )?;
    check::outcome(&r, 400, "resourceType mismatch")?;
    check::outcome(&api.get("Patient/bad_id!")?, 400, "invalid id")?;
    Ok(())
}

fn delete(run: &mut Run) -> TestResult {
    let r = run
        .api
        .send("DELETE", &format!("Patient/{}", run.id), &[], None)?;
    check::status(&r, &[200, 204], "delete")?;
    let r = run.api.get(&format!("Patient/{}", run.id))?;
    // The embedded store keeps a tombstone (410 Gone); Medplum's in-memory
    // repository forgets the resource (404). Both are allowed by R4 http.html §3.1.0.7.
    let want = match run.up {
        Upstream::Embedded => 410,
        Upstream::Medplum => 404,
    };
    check::outcome(&r, want, "read after delete")
}
