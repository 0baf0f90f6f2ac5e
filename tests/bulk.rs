//! Bulk Data `$export` end to end, in process, on the embedded store: the
//! three levels by GET and POST, every manifest field, NDJSON that parses
//! as the declared type, consent (a patient's deny-all Consent keeps their
//! data out; the count is reported, never ids), `_elements`, `_typeFilter`,
//! `_since`, every negative case of issue 6's proof list, and a restart in
//! the middle of a job (the job resumes and finishes with exact counts).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{TestApp, TestResponse, BASE};
use serde_json::{json, Value};

const FAST: &str = "[bulk]\nmin_poll_seconds = 0\nscan_millis = 20\n";
const CONSENT: &str = "[consent]\nexempt_clients = [\"test-client\"]\n";

fn obs(id: &str, patient: &str, code: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 7, "unit": "mg/dL"}})
}

/// p1, p2 (deny-all Consent), p3; two Observations and a Condition each;
/// Group g1 = {p1, p2}; a Practitioner.
struct World {
    t: TestApp,
    /// `exporter`, system/*.rs, subject to consent.
    exporter: String,
    /// Another backend client.
    other: String,
    worker: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

async fn world(extra: &str) -> World {
    let t = TestApp::with_config(&format!("{FAST}{extra}\n{CONSENT}")).await;
    let mut rs =
        vec![json!({"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Lee"}]})];
    for p in ["p1", "p2", "p3"] {
        rs.push(json!({"resourceType": "Patient", "id": p, "name": [{"family": format!("Fam{p}")}], "gender": "female"}));
        rs.push(obs(&format!("{p}-glu"), p, "2345-7"));
        rs.push(obs(&format!("{p}-hba1c"), p, "4548-4"));
        rs.push(
            json!({"resourceType": "Condition", "id": format!("{p}-cond"),
            "subject": {"reference": format!("Patient/{p}")}, "code": {"text": "asthma"}}),
        );
    }
    rs.push(json!({"resourceType": "Group", "id": "g1", "type": "person", "actual": true,
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}]}));
    t.load(rs).await;
    // p2 denies everything, written through the facade as p2.
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
    let exporter = t
        .token_as("exporter", "system/*.rs", None, None, None, None)
        .await;
    let other = t
        .token_as("someone-else", "system/*.rs", None, None, None, None)
        .await;
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    World {
        t,
        exporter,
        other,
        worker,
    }
}

fn rel(url: &str) -> String {
    url.strip_prefix("http://fhirgate.test").unwrap().to_owned()
}

const ASYNC: (&str, &str) = ("prefer", "respond-async");

impl World {
    async fn kick_get(&self, path: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut h = vec![ASYNC];
        h.extend_from_slice(headers);
        self.t
            .request_with(&self.exporter, Method::GET, path, &h, None)
            .await
    }

    async fn kick_post(&self, path: &str, params: Value) -> TestResponse {
        let body = json!({"resourceType": "Parameters", "parameter": params});
        self.t
            .request_with(&self.exporter, Method::POST, path, &[ASYNC], Some(&body))
            .await
    }

    /// Polls the status URL until the manifest (200).
    async fn complete(&self, r: &TestResponse) -> (String, TestResponse) {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        assert!(
            r.header("x-ledger-seq").is_some(),
            "the kick-off is audited"
        );
        let status_url = r.header("content-location").unwrap();
        assert!(
            status_url.starts_with(&format!("{BASE}/bulk/status/")),
            "{status_url}"
        );
        for _ in 0..600 {
            let p = self
                .t
                .request_with(&self.exporter, Method::GET, &rel(&status_url), &[], None)
                .await;
            match p.status {
                StatusCode::ACCEPTED => {
                    assert!(p.header("x-progress").is_some());
                    assert!(p.header("retry-after").is_some());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                StatusCode::OK => return (status_url, p),
                s => panic!("poll {s}: {}", p.text()),
            }
        }
        panic!("export did not finish");
    }

    /// Downloads every output file; `(type, resource)` pairs.
    async fn download(&self, manifest: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for o in manifest["output"].as_array().unwrap() {
            let url = o["url"].as_str().unwrap();
            assert!(url.starts_with(&format!("{BASE}/bulk/files/")), "{url}");
            let f = self
                .t
                .request_with(&self.exporter, Method::GET, &rel(url), &[], None)
                .await;
            assert_eq!(f.status, StatusCode::OK);
            assert_eq!(
                f.header("content-type").as_deref(),
                Some("application/fhir+ndjson")
            );
            let lines: Vec<&str> = std::str::from_utf8(&f.body)
                .unwrap()
                .lines()
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(lines.len() as u64, o["count"].as_u64().unwrap());
            for l in lines {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["resourceType"], o["type"]);
                out.push((o["type"].as_str().unwrap().to_owned(), v));
            }
        }
        out
    }

    async fn export(&self, r: TestResponse) -> (Value, Vec<(String, Value)>) {
        let (_, done) = self.complete(&r).await;
        let m = done.json.clone();
        assert!(done.header("expires").is_some());
        let res = self.download(&m).await;
        (m, res)
    }
}

fn ids(res: &[(String, Value)]) -> Vec<String> {
    let mut v: Vec<String> = res
        .iter()
        .map(|(t, r)| format!("{t}/{}", r["id"].as_str().unwrap()))
        .collect();
    v.sort();
    v
}

fn check_manifest(m: &Value, request_suffix: &str) {
    assert!(m["transactionTime"].as_str().unwrap().ends_with('Z'));
    let req = m["request"].as_str().unwrap();
    assert!(
        req.starts_with(BASE) && req.contains(request_suffix),
        "{req}"
    );
    assert_eq!(m["requiresAccessToken"], true);
    assert!(m["output"].is_array());
    assert!(m["error"].is_array());
    assert!(m["deleted"].is_array());
}

#[tokio::test]
async fn system_level_by_get_and_post() {
    let w = world("").await;
    let (m, res) = w
        .export(
            w.kick_get(
                "/fhir/$export?_type=Patient,Observation&_outputFormat=application%2Ffhir%2Bndjson",
                &[],
            )
            .await,
        )
        .await;
    check_manifest(&m, "/$export");
    assert_eq!(
        ids(&res),
        [
            "Observation/p1-glu",
            "Observation/p1-hba1c",
            "Observation/p3-glu",
            "Observation/p3-hba1c",
            "Patient/p1",
            "Patient/p3"
        ]
    );
    // Consent withheld p2's Patient and Observations: counted, never named.
    let withheld = &m["extension"][fhirgate::bulk::manifest::WITHHELD_EXTENSION];
    assert_eq!(withheld, 3, "{m}");
    assert_eq!(m["error"].as_array().unwrap().len(), 1);
    let err_url = m["error"][0]["url"].as_str().unwrap();
    let e =
        w.t.request_with(&w.exporter, Method::GET, &rel(err_url), &[], None)
            .await;
    assert!(e.text().contains("withheld"), "{}", e.text());
    assert!(!e.text().contains("p2"), "{}", e.text());

    let (m, res) = w
        .export(
            w.kick_post(
                "/fhir/$export",
                json!([{"name": "_type", "valueString": "Condition,Practitioner"},
                       {"name": "_outputFormat", "valueString": "ndjson"}]),
            )
            .await,
        )
        .await;
    check_manifest(&m, "/$export");
    assert_eq!(
        ids(&res),
        ["Condition/p1-cond", "Condition/p3-cond", "Practitioner/dr"]
    );
}

#[tokio::test]
async fn patient_level_by_get_and_post() {
    let w = world("").await;
    let (m, res) = w
        .export(w.kick_get("/fhir/Patient/$export", &[]).await)
        .await;
    check_manifest(&m, "/Patient/$export");
    let got = ids(&res);
    assert!(got.contains(&"Condition/p1-cond".to_owned()), "{got:?}");
    assert!(got.contains(&"Patient/p3".to_owned()), "{got:?}");
    assert!(!got.iter().any(|i| i.contains("p2")), "{got:?}");
    assert!(
        !got.iter().any(|i| i.starts_with("Practitioner")),
        "{got:?}"
    );

    let (_, res) = w
        .export(
            w.kick_post(
                "/fhir/Patient/$export",
                json!([{"name": "patient", "valueReference": {"reference": "Patient/p3"}},
                       {"name": "_type", "valueString": "Patient,Observation"}]),
            )
            .await,
        )
        .await;
    assert_eq!(
        ids(&res),
        ["Observation/p3-glu", "Observation/p3-hba1c", "Patient/p3"]
    );
}

#[tokio::test]
async fn group_level_by_get_and_post() {
    let w = world("").await;
    let (m, res) = w
        .export(
            w.kick_get(
                "/fhir/Group/g1/$export?_type=Patient,Observation,Condition",
                &[],
            )
            .await,
        )
        .await;
    check_manifest(&m, "/Group/g1/$export");
    // p2 is a member but denied; p3 is not a member.
    assert_eq!(
        ids(&res),
        [
            "Condition/p1-cond",
            "Observation/p1-glu",
            "Observation/p1-hba1c",
            "Patient/p1"
        ]
    );
    let (_, res) = w
        .export(
            w.kick_post(
                "/fhir/Group/g1/$export",
                json!([{"name": "_type", "valueString": "Observation"},
                       {"name": "_typeFilter", "valueString": "Observation?code=4548-4"}]),
            )
            .await,
        )
        .await;
    assert_eq!(ids(&res), ["Observation/p1-hba1c"]);
    // A Group that does not exist.
    let r = w.kick_get("/fhir/Group/nope/$export", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

#[tokio::test]
async fn elements_type_filter_and_since() {
    let w = world("").await;
    let (_, res) = w
        .export(
            w.kick_get(
                "/fhir/$export?_type=Observation&_elements=Observation.status",
                &[],
            )
            .await,
        )
        .await;
    assert_eq!(res.len(), 4);
    for (_, r) in &res {
        assert!(r.get("valueQuantity").is_none(), "{r}");
        assert!(r["meta"]["tag"].to_string().contains("SUBSETTED"), "{r}");
    }
    let (_, res) = w
        .export(
            w.kick_get("/fhir/$export?_type=Observation&_typeFilter=Observation%3Fcode%3D2345-7,Observation%3Fcode%3D4548-4%26subject%3DPatient/p3", &[])
                .await,
        )
        .await;
    assert_eq!(
        ids(&res),
        [
            "Observation/p1-glu",
            "Observation/p3-glu",
            "Observation/p3-hba1c"
        ]
    );
    let (m, res) = w
        .export(
            w.kick_get(
                "/fhir/$export?_type=Patient&_since=2999-01-01T00:00:00Z",
                &[],
            )
            .await,
        )
        .await;
    assert!(res.is_empty());
    assert!(m["output"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn since_reports_deletions_but_not_a_denied_patients() {
    let w = world("").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = fhirgate::fhir::now_instant();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for id in ["p1-glu", "p3-hba1c", "p2-glu"] {
        let r = w.t.delete(&format!("/fhir/Observation/{id}")).await;
        assert!(r.status.is_success(), "{}", r.text());
    }
    let r = w
        .kick_get(
            &format!("/fhir/$export?_type=Observation,Condition&_since={since}"),
            &[],
        )
        .await;
    let (_, done) = w.complete(&r).await;
    let m = done.json;
    assert!(m["output"].as_array().unwrap().is_empty(), "{m}");
    let deleted = m["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{m}");
    assert_eq!(deleted[0]["type"], "Bundle");
    assert_eq!(deleted[0]["count"], 2);
    let f =
        w.t.request_with(
            &w.exporter,
            Method::GET,
            &rel(deleted[0]["url"].as_str().unwrap()),
            &[],
            None,
        )
        .await;
    assert_eq!(f.status, StatusCode::OK);
    let mut urls: Vec<String> = f
        .text()
        .lines()
        .map(|l| {
            let b: Value = serde_json::from_str(l).unwrap();
            assert_eq!(b["resourceType"], "Bundle");
            assert_eq!(b["type"], "transaction");
            assert_eq!(b["entry"][0]["request"]["method"], "DELETE");
            b["entry"][0]["request"]["url"].as_str().unwrap().to_owned()
        })
        .collect();
    urls.sort();
    assert_eq!(urls, ["Observation/p1-glu", "Observation/p3-hba1c"]);
}

/// The lines of a manifest's `deleted` files: the deleted `Type/id`s, sorted.
async fn deleted_urls(w: &World, m: &Value) -> Vec<String> {
    let mut urls = Vec::new();
    for d in m["deleted"].as_array().unwrap() {
        assert_eq!(d["type"], "Bundle");
        let f =
            w.t.request_with(
                &w.exporter,
                Method::GET,
                &rel(d["url"].as_str().unwrap()),
                &[],
                None,
            )
            .await;
        assert_eq!(f.status, StatusCode::OK);
        for l in f.text().lines() {
            let b: Value = serde_json::from_str(l).unwrap();
            assert_eq!(b["entry"][0]["request"]["method"], "DELETE");
            urls.push(b["entry"][0]["request"]["url"].as_str().unwrap().to_owned());
        }
    }
    urls.sort();
    urls
}

#[tokio::test]
async fn since_reports_a_groups_and_named_patients_deletions_only() {
    let w = world("").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = fhirgate::fhir::now_instant();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // p1 is in g1; p2 is in g1 but denies everything; p3 is not in g1
    for id in ["p1-glu", "p2-glu", "p3-hba1c"] {
        let r = w.t.delete(&format!("/fhir/Observation/{id}")).await;
        assert!(r.status.is_success(), "{}", r.text());
    }
    let r = w
        .kick_get(
            &format!("/fhir/Group/g1/$export?_type=Observation&_since={since}"),
            &[],
        )
        .await;
    let (_, done) = w.complete(&r).await;
    assert_eq!(
        deleted_urls(&w, &done.json).await,
        ["Observation/p1-glu"],
        "a member's deletion, not a non-member's nor a denied member's: {}",
        done.json
    );
    let r = w
        .kick_post(
            "/fhir/Patient/$export",
            json!([
                {"name": "_type", "valueString": "Observation"},
                {"name": "_since", "valueInstant": since},
                {"name": "patient", "valueReference": {"reference": "Patient/p3"}}
            ]),
        )
        .await;
    let (_, done) = w.complete(&r).await;
    assert_eq!(
        deleted_urls(&w, &done.json).await,
        ["Observation/p3-hba1c"],
        "{}",
        done.json
    );
}

#[tokio::test]
async fn kick_off_refusals() {
    let w = world("").await;
    let no_prefer =
        w.t.request_with(&w.exporter, Method::GET, "/fhir/$export", &[], None)
            .await;
    assert_eq!(no_prefer.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_prefer.json["resourceType"], "OperationOutcome");
    for bad in [
        "/fhir/$export?_outputFormat=text/csv",
        "/fhir/$export?_since=yesterday",
        "/fhir/$export?_type=Nonsense",
        "/fhir/$export?_typeFilter=garbage",
        "/fhir/$export?_typeFilter=Observation%3Fnot-a-param%3D1",
        "/fhir/Patient/$export?patient=Patient/p1",
        "/fhir/$export?includeAssociatedData=Everything",
        "/fhir/$export?_unknown=1",
    ] {
        let r = w.kick_get(bad, &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.json["resourceType"], "OperationOutcome", "{bad}");
    }
    // Lenient handling ignores what is unsupported.
    let r = w
        .kick_get(
            "/fhir/$export?_type=Patient&_outputFormat=text/csv&includeAssociatedData=Everything",
            &[("prefer", "handling=lenient")],
        )
        .await;
    let (_, res) = w.export(r).await;
    assert_eq!(ids(&res), ["Patient/p1", "Patient/p3"]);
    // Known includeAssociatedData values are accepted.
    let r = w
        .kick_get(
            "/fhir/$export?_type=Patient&includeAssociatedData=LatestProvenanceResources",
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}

#[tokio::test]
async fn status_and_files_belong_to_their_client_and_delete_removes_them() {
    let w = world("").await;
    let r = w.kick_get("/fhir/$export?_type=Patient", &[]).await;
    let (status_url, done) = w.complete(&r).await;
    let file = rel(done.json["output"][0]["url"].as_str().unwrap());
    let status = rel(&status_url);
    // Another client: the job and its files do not exist for it.
    let p =
        w.t.request_with(&w.other, Method::GET, &status, &[], None)
            .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(p.json["resourceType"], "OperationOutcome");
    let f =
        w.t.request_with(&w.other, Method::GET, &file, &[], None)
            .await;
    assert_eq!(f.status, StatusCode::NOT_FOUND);
    let d =
        w.t.request_with(&w.other, Method::DELETE, &status, &[], None)
            .await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);
    // No token.
    let f = w.t.request_raw(Method::GET, &file, &[], None).await;
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);
    let p = w.t.request_raw(Method::GET, &status, &[], None).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    // Every access and refusal is on the ledger before the answer leaves.
    assert!(f.header("x-ledger-seq").is_some());
    let denied =
        w.t.request_with(&w.other, Method::GET, &file, &[], None)
            .await;
    assert!(denied.header("x-ledger-seq").is_some());
    let ok =
        w.t.request_with(&w.exporter, Method::GET, &file, &[], None)
            .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.header("x-ledger-seq").is_some());
    // DELETE: 202, then 404 for status and files.
    let d =
        w.t.request_with(&w.exporter, Method::DELETE, &status, &[], None)
            .await;
    assert_eq!(d.status, StatusCode::ACCEPTED);
    let p =
        w.t.request_with(&w.exporter, Method::GET, &status, &[], None)
            .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(p.json["resourceType"], "OperationOutcome");
    let f =
        w.t.request_with(&w.exporter, Method::GET, &file, &[], None)
            .await;
    assert_eq!(f.status, StatusCode::NOT_FOUND);
    let job = status_url.rsplit('/').next().unwrap().to_owned();
    assert!(!w
        .t
        .dir
        .path()
        .join("bulk")
        .join(&job)
        .join("Patient-1.ndjson")
        .exists());
}

#[tokio::test]
async fn too_many_jobs_and_polling_too_fast_are_429() {
    // No worker: jobs stay queued.
    let t = TestApp::with_config(
        "[bulk]\nmax_concurrent_jobs = 1\nmin_poll_seconds = 30\nretry_after_seconds = 5\n",
    )
    .await;
    let tok = t
        .token_as("exporter", "system/*.rs", None, None, None, None)
        .await;
    let kick = || t.request_with(&tok, Method::GET, "/fhir/$export", &[ASYNC], None);
    let first = kick().await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    let second = kick().await;
    assert_eq!(
        second.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        second.text()
    );
    assert_eq!(second.json["resourceType"], "OperationOutcome");
    assert_eq!(second.header("retry-after").as_deref(), Some("5"));
    let status = rel(&first.header("content-location").unwrap());
    let p = t.request_with(&tok, Method::GET, &status, &[], None).await;
    assert_eq!(p.status, StatusCode::ACCEPTED);
    assert_eq!(p.header("retry-after").as_deref(), Some("5"));
    assert_eq!(p.header("x-progress").as_deref(), Some("queued"));
    let p = t.request_with(&tok, Method::GET, &status, &[], None).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(p.header("retry-after").as_deref(), Some("5"));
}

#[tokio::test]
async fn splits_files_at_the_configured_count() {
    let w = world("file_max_resources = 3\n").await;
    let (m, res) = w
        .export(w.kick_get("/fhir/$export?_type=Observation", &[]).await)
        .await;
    assert_eq!(res.len(), 4);
    let counts: Vec<u64> = m["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [3, 1]);
}

#[tokio::test]
async fn a_job_resumes_after_a_restart_with_exact_counts() {
    let toml = "[limits]\nmax_page_size = 5\ndefault_page_size = 5\n[bulk]\nmin_poll_seconds = 0\nscan_millis = 20\nlease_seconds = 1\nfile_max_resources = 7\n[consent]\nexempt_clients = [\"test-client\", \"app\"]\n";
    let t = TestApp::with_config(toml).await;
    let mut rs = Vec::new();
    for p in 0..20 {
        rs.push(json!({"resourceType": "Patient", "id": format!("r{p}")}));
        for o in 0..6 {
            rs.push(obs(&format!("r{p}-o{o}"), &format!("r{p}"), "2345-7"));
        }
        rs.push(json!({"resourceType": "Condition", "id": format!("r{p}-c"),
            "subject": {"reference": format!("Patient/r{p}")}, "code": {"text": "x"}}));
    }
    t.load(rs).await;
    let tok = t.token.clone();
    let r = t
        .request_with(
            &tok,
            Method::GET,
            "/fhir/$export?_type=Patient,Observation,Condition",
            &[ASYNC],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let status = rel(&r.header("content-location").unwrap());
    let job_id = status.rsplit('/').next().unwrap().to_owned();
    // Run until the first type is checkpointed, then "crash".
    let worker = fhirgate::bulk::worker::spawn(t.app.clone());
    let mut mid = false;
    for _ in 0..5000 {
        let j = fhirgate::bulk::jobs::get(&t.app.state, &job_id)
            .await
            .unwrap()
            .unwrap();
        if !j.progress.done.is_empty() {
            mid = j.progress.done.len() < 3;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    worker.abort();
    let _ = worker.await;
    assert!(mid, "the job should have been stopped in the middle");
    // A new process on the same data (data dir, and in replica mode the
    // same PostgreSQL database).
    let t2 = t.reopen_with_config(toml).await;
    let worker = fhirgate::bulk::worker::spawn(t2.app.clone());
    let mut manifest = Value::Null;
    for _ in 0..1000 {
        let p = t2.request_with(&tok, Method::GET, &status, &[], None).await;
        if p.status == StatusCode::OK {
            manifest = p.json;
            break;
        }
        assert_eq!(p.status, StatusCode::ACCEPTED, "{}", p.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.abort();
    let mut per_type = std::collections::BTreeMap::<String, u64>::new();
    for o in manifest["output"].as_array().unwrap() {
        *per_type
            .entry(o["type"].as_str().unwrap().to_owned())
            .or_default() += o["count"].as_u64().unwrap();
        let f = t2
            .request_with(
                &tok,
                Method::GET,
                &rel(o["url"].as_str().unwrap()),
                &[],
                None,
            )
            .await;
        assert_eq!(f.status, StatusCode::OK);
        assert_eq!(
            f.text().lines().count() as u64,
            o["count"].as_u64().unwrap()
        );
    }
    assert_eq!(per_type.get("Patient"), Some(&20));
    assert_eq!(per_type.get("Observation"), Some(&120));
    assert_eq!(per_type.get("Condition"), Some(&20));
    // Observation: 120 lines in files of 7.
    let obs_files = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "Observation")
        .count();
    assert_eq!(obs_files, 18);
}
