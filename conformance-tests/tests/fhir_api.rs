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

use std::collections::BTreeSet;

use conformance_tests::{Api, Fhirgate, Medplum, Resp, TestResult};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Upstream {
    Embedded,
    Medplum,
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

/// State carried between the steps of one run.
struct Run<'a> {
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
    let api = Api::new(&gate.fhir_base(), vec![])?;
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
    let api = Api::new(&gate.fhir_base(), forbidden)?;
    run_suite(&api, Upstream::Medplum)
        .map_err(|e| format!("{e}\n--- fhirgate log ---\n{}", gate.log_tail()).into())
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
        ("search by token and string", search),
        ("POST _search equals GET", post_search),
        ("history instance", history),
        ("transaction with urn:uuid references", transaction),
        ("batch", batch),
        ("paging links followed through the facade", paging),
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

fn expect_status(r: &Resp, want: &[u16], what: &str) -> TestResult {
    ensure!(
        want.contains(&r.status),
        "{what}: status {} (wanted {want:?}): {}",
        r.status,
        r.text
    );
    Ok(())
}

fn expect_outcome(r: &Resp, status: u16, what: &str) -> TestResult {
    expect_status(r, &[status], what)?;
    ensure!(
        r.json["resourceType"] == "OperationOutcome",
        "{what}: body is not an OperationOutcome: {}",
        r.text
    );
    Ok(())
}

/// Bundle entry resource ids, in order.
fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| {
                    e["search"]["mode"] != "outcome"
                        && e["resource"]["resourceType"] != "OperationOutcome"
                })
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every link and fullUrl of a Bundle is on the facade's base.
fn expect_facade_urls(api: &Api, bundle: &Value) -> TestResult {
    let mut urls: Vec<&str> = Vec::new();
    urls.extend(
        bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["url"].as_str()),
    );
    urls.extend(
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["fullUrl"].as_str()),
    );
    for u in urls {
        ensure!(
            u.starts_with(&api.base) || u.starts_with("urn:"),
            "URL not on the facade base: {u}"
        );
    }
    Ok(())
}

fn etag_of(r: &Resp) -> Option<String> {
    let v = r.header("etag")?;
    Some(v.trim_start_matches("W/").trim_matches('"').to_owned())
}

fn metadata(run: &mut Run) -> TestResult {
    let r = run.api.get("metadata")?;
    expect_status(&r, &[200], "GET metadata")?;
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

fn patient(family: &str, value: &str) -> Value {
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
    expect_status(&r, &[201], "POST Patient")?;
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
    expect_status(&r, &[200], "read")?;
    ensure!(
        r.json["id"] == run.id.as_str(),
        "read returned id {}",
        r.json["id"]
    );
    ensure!(
        etag_of(&r).as_deref() == Some(run.v1.as_str()),
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
    expect_status(&r, &[200], "vread")?;
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
    expect_status(&r, &[200], "update")?;
    let v2 = r.json["meta"]["versionId"]
        .as_str()
        .ok_or("updated body has no versionId")?
        .to_owned();
    ensure!(v2 != run.v1, "update kept version {v2}");
    ensure!(
        etag_of(&r).as_deref() == Some(v2.as_str()),
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
    expect_outcome(&r, 412, "update with stale If-Match")
}

fn search_ids(run: &Run, query: &str) -> TestResult<Vec<String>> {
    let r = run.api.get(&format!("Patient?{query}"))?;
    expect_status(&r, &[200], &format!("GET Patient?{query}"))?;
    ensure!(r.json["type"] == "searchset", "not a searchset: {}", r.text);
    expect_facade_urls(run.api, &r.json)?;
    Ok(ids(&r.json))
}

fn search(run: &mut Run) -> TestResult {
    let by_token = search_ids(run, "identifier=urn%3Afhirgate%3Aconformance%7Cp-1")?;
    ensure!(
        by_token == [run.id.clone()],
        "identifier search found {by_token:?}"
    );
    let by_string = search_ids(run, "family=Conformance")?;
    ensure!(
        by_string == [run.id.clone()],
        "family search found {by_string:?}"
    );
    let none = search_ids(run, "family=Nobody")?;
    ensure!(none.is_empty(), "family=Nobody found {none:?}");
    Ok(())
}

fn post_search(run: &mut Run) -> TestResult {
    let get = search_ids(run, "identifier=urn%3Afhirgate%3Aconformance%7Cp-1")?;
    let form = b"identifier=urn%3Afhirgate%3Aconformance%7Cp-1".to_vec();
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let r = run
        .api
        .send("POST", "Patient/_search", &headers, Some(form))?;
    expect_status(&r, &[200], "POST Patient/_search")?;
    expect_facade_urls(run.api, &r.json)?;
    ensure!(
        ids(&r.json) == get,
        "POST _search found {:?}, GET found {get:?}",
        ids(&r.json)
    );
    Ok(())
}

fn history(run: &mut Run) -> TestResult {
    let r = run.api.get(&format!("Patient/{}/_history", run.id))?;
    expect_status(&r, &[200], "history")?;
    ensure!(r.json["type"] == "history", "not a history Bundle");
    expect_facade_urls(run.api, &r.json)?;
    let versions: BTreeSet<&str> = r.json["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["meta"]["versionId"].as_str())
        .collect();
    let want: BTreeSet<&str> = [run.v1.as_str(), run.v2.as_str()].into();
    ensure!(
        versions == want,
        "history versions {versions:?}, wanted {want:?}"
    );
    Ok(())
}

fn transaction(run: &mut Run) -> TestResult {
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
    expect_status(&r, &[200], "transaction")?;
    ensure!(
        r.json["type"] == "transaction-response",
        "type is {}",
        r.json["type"]
    );
    expect_facade_urls(run.api, &r.json)?;
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
    expect_status(&obs, &[200], "read transacted Observation")?;
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

fn batch(run: &mut Run) -> TestResult {
    let bundle = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": format!("Patient/{}", run.id)}},
            {"resource": patient("Batched", "b-1"), "request": {"method": "POST", "url": "Patient"}}
        ]
    });
    let r = run.api.send_json("POST", "", &[], &bundle)?;
    expect_status(&r, &[200], "batch")?;
    ensure!(
        r.json["type"] == "batch-response",
        "type is {}",
        r.json["type"]
    );
    expect_facade_urls(run.api, &r.json)?;
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

fn paging(run: &mut Run) -> TestResult {
    let mut created = BTreeSet::new();
    for i in 0..3 {
        let r = run.api.send_json(
            "POST",
            "Patient",
            &[],
            &patient("Pagetest", &format!("pg-{i}")),
        )?;
        expect_status(&r, &[201], "create for paging")?;
        created.insert(r.json["id"].as_str().unwrap_or("").to_owned());
    }
    let first = run.api.get("Patient?family=Pagetest&_count=2")?;
    expect_status(&first, &[200], "first page")?;
    expect_facade_urls(run.api, &first.json)?;
    let mut seen = ids(&first.json);
    ensure!(seen.len() == 2, "first page has {} entries", seen.len());
    let next = first.json["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .ok_or("first page has no next link")?;
    let second = run.api.get(next)?;
    expect_status(&second, &[200], "next page")?;
    seen.extend(ids(&second.json));
    let seen_set: BTreeSet<String> = seen.iter().cloned().collect();
    ensure!(
        seen.len() == 3 && seen_set == created,
        "pages gave {seen:?}, created {created:?}"
    );
    Ok(())
}

fn bad_requests(run: &mut Run) -> TestResult {
    let api = run.api;
    expect_outcome(&api.get("Foo")?, 404, "unknown resource type")?;
    let json = [("content-type", "application/fhir+json")];
    let r = api.send(
        "POST",
        "Patient",
        &json,
        Some(b"{\"resourceType\": \"Patient\",".to_vec()),
    )?;
    expect_outcome(&r, 400, "malformed JSON")?;
    let r = api.send_json(
        "POST",
        "Patient",
        &[],
        &json!({"resourceType": "Observation", "status": "final"}),
    )?;
    expect_outcome(&r, 400, "resourceType mismatch")?;
    expect_outcome(&api.get("Patient/bad_id!")?, 400, "invalid id")?;
    Ok(())
}

fn delete(run: &mut Run) -> TestResult {
    let r = run
        .api
        .send("DELETE", &format!("Patient/{}", run.id), &[], None)?;
    expect_status(&r, &[200, 204], "delete")?;
    let r = run.api.get(&format!("Patient/{}", run.id))?;
    // The embedded store keeps a tombstone (410 Gone); Medplum's in-memory
    // repository forgets the resource (404). Both are allowed by R4 http.html §3.1.0.7.
    let want = match run.up {
        Upstream::Embedded => 410,
        Upstream::Medplum => 404,
    };
    expect_outcome(&r, want, "read after delete")
}
