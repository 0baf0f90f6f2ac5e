//! Observability (issue 10 item 3): `/metrics` counts and times requests by
//! route template, never by raw path, and carries no ids; the upstream,
//! consent, ledger and bulk families move; `/metrics` access policy;
//! `/readyz` is 200 on a working instance and 503 naming the upstream when
//! it cannot be reached; access logs carry the route template; the audit
//! entry carries the request id.
//!
//! The metrics registry is per process, so tests in this binary share it:
//! they compare values before and after, never absolute counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use common::{logs::Captured, TestApp};
use serde_json::{json, Value};

/// Samples of an exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

async fn scrape(t: &TestApp) -> (String, BTreeMap<String, f64>) {
    let r = t.request_raw(Method::GET, "/metrics", &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    let s = samples(&text);
    (text, s)
}

fn value(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    s.get(key).copied().unwrap_or(0.0)
}

async fn seed_patient(t: &TestApp, id: &str) {
    let body = json!({"resourceType": "Patient", "id": id, "name": [{"family": "Metricsson"}]});
    let r = t.put(&format!("/fhir/Patient/{id}"), &body).await;
    assert!(r.status.is_success(), "{}", r.text());
}

#[tokio::test]
async fn requests_are_counted_by_route_template() {
    let t = TestApp::new().await;
    seed_patient(&t, "obs-tmpl-4711").await;
    let (_, before) = scrape(&t).await;
    let read =
        r#"fhirgate_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="200"}"#;
    let vread = r#"fhirgate_http_requests_total{method="GET",route="/fhir/{type}/{id}/_history/{vid}",status="200"}"#;
    let search = r#"fhirgate_http_requests_total{method="GET",route="/fhir/{type}",status="200"}"#;
    let missing =
        r#"fhirgate_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="404"}"#;
    let hist = r#"fhirgate_http_request_duration_seconds_count{method="GET",route="/fhir/{type}/{id}",status="2xx"}"#;
    for _ in 0..2 {
        assert_eq!(
            t.get("/fhir/Patient/obs-tmpl-4711").await.status,
            StatusCode::OK
        );
    }
    let r = t.get("/fhir/Patient/obs-tmpl-4711/_history/1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = t.get("/fhir/Patient?_id=obs-tmpl-4711").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        t.get("/fhir/Patient/obs-no-such-4712").await.status,
        StatusCode::NOT_FOUND
    );
    let (text, after) = scrape(&t).await;
    assert!(value(&after, read) >= value(&before, read) + 2.0, "{text}");
    assert!(
        value(&after, vread) >= value(&before, vread) + 1.0,
        "{text}"
    );
    assert!(
        value(&after, search) >= value(&before, search) + 1.0,
        "{text}"
    );
    assert!(
        value(&after, missing) >= value(&before, missing) + 1.0,
        "{text}"
    );
    assert!(value(&after, hist) >= value(&before, hist) + 2.0, "{text}");
    assert!(text.contains("# TYPE fhirgate_http_request_duration_seconds histogram"));
    assert!(text.contains(
        r#"fhirgate_http_request_duration_seconds_bucket{method="GET",route="/fhir/{type}/{id}",status="2xx",le="+Inf"}"#
    ));
    // Non-FHIR routes keep axum's template; unknown paths collapse.
    t.request_raw(Method::GET, "/no/such/obs-tmpl-4711", &[], None)
        .await;
    let (text, _) = scrape(&t).await;
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(text.contains(r#"route="/metrics""#), "{text}");
}

/// Label values of an exposition.
fn label_values(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((labels, _)) = rest.rsplit_once('}') else {
            continue;
        };
        for pair in labels.split("\",") {
            let (k, v) = pair.split_once("=\"").unwrap();
            out.push((k.to_owned(), v.trim_end_matches('"').to_owned()));
        }
    }
    out
}

/// Whether `s` holds an id-like token: a UUID, a run of 3+ digits, or a
/// word mixing letters and digits.
fn id_like(s: &str) -> Option<String> {
    for word in s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        let digits = word.chars().filter(char::is_ascii_digit).count();
        let letters = word.chars().filter(char::is_ascii_alphabetic).count();
        let run = word
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        if run >= 3 || (digits > 0 && letters > 0) {
            return Some(word.to_owned());
        }
    }
    None
}

#[tokio::test]
async fn the_exposition_carries_no_ids() {
    let t = TestApp::new().await;
    let pid = "obs-secret-p9081";
    seed_patient(&t, pid).await;
    let obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": format!("Patient/{pid}")}});
    let oid = t.create(obs).await;
    let mut request_ids = Vec::new();
    for path in [
        format!("/fhir/Patient/{pid}"),
        format!("/fhir/Patient/{pid}/_history/1"),
        format!("/fhir/Patient/{pid}/Observation"),
        format!("/fhir/Patient/{pid}/$everything"),
        format!("/fhir/Observation/{oid}"),
        format!("/fhir/Observation?subject=Patient/{pid}"),
        format!("/fhir/Patient/{pid}/$p9081-op"),
        "/fhir/$p9081".to_owned(),
        format!("/portal/consents/{pid}/revoke"),
        format!("/cds-services/{pid}"),
        "/admin/api/ledger/proof/9081".to_owned(),
    ] {
        let r = t.get(&path).await;
        request_ids.push(r.header("x-request-id").unwrap());
    }
    // A bulk job: its id is in the status URL.
    let r = t
        .request(
            Method::GET,
            "/fhir/$export",
            &[("prefer", "respond-async")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let status_url = r.header("content-location").unwrap();
    let job = status_url.rsplit('/').next().unwrap().to_owned();
    let status_path = status_url.strip_prefix("http://fhirgate.test").unwrap();
    t.get(status_path).await;

    let (text, _) = scrape(&t).await;
    // Series names and labels, without the sample values.
    let series: String = text
        .lines()
        .filter_map(|l| l.rsplit_once(' ').map(|(k, _)| format!("{k}\n")))
        .collect();
    for needle in [pid, oid.as_str(), job.as_str(), "test-client", "9081"] {
        assert!(
            !series.contains(needle),
            "`{needle}` in the exposition:\n{text}"
        );
    }
    for id in &request_ids {
        assert!(
            !text.contains(id.as_str()),
            "a request id in the exposition"
        );
    }
    for (k, v) in label_values(&text) {
        // Buckets, status codes and the version are numbers by design.
        if matches!(k.as_str(), "le" | "status" | "version") {
            continue;
        }
        assert!(id_like(&v).is_none(), "id-like label {k}={v:?}:\n{text}");
    }
    assert!(
        text.contains(r#"route="/fhir/bulk/status/{job}""#),
        "{text}"
    );
    assert!(text.contains(r#"route="/fhir/{type}/{id}/$op""#), "{text}");
    assert!(text.contains(r#"route="/fhir/$op""#), "{text}");
    assert!(
        text.contains(r#"route="/portal/consents/{id}/revoke""#),
        "{text}"
    );
}

#[tokio::test]
async fn upstream_consent_ledger_and_bulk_families_move() {
    let t = TestApp::new().await;
    seed_patient(&t, "obs-fam-1").await;
    let (_, before) = scrape(&t).await;
    // A client that is not consent-exempt: its reads are judged.
    let judged = t
        .token_as("judged-app", "system/*.rs", None, None, None, None)
        .await;
    let r = t
        .request_with(&judged, Method::GET, "/fhir/Patient/obs-fam-1", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let kick = t
        .request(
            Method::GET,
            "/fhir/$export",
            &[("prefer", "respond-async")],
            None,
        )
        .await;
    assert_eq!(kick.status, StatusCode::ACCEPTED, "{}", kick.text());
    let (text, after) = scrape(&t).await;

    let upstream = r#"fhirgate_upstream_request_duration_seconds_count{upstream="embedded",interaction="read",outcome="ok"}"#;
    assert!(value(&after, upstream) > value(&before, upstream), "{text}");
    let permit = r#"fhirgate_consent_decisions_total{effect="permit"}"#;
    assert!(value(&after, permit) > value(&before, permit), "{text}");
    let appended = "fhirgate_ledger_appended_entries_total";
    assert!(value(&after, appended) > value(&before, appended), "{text}");
    let commits = r#"fhirgate_ledger_append_duration_seconds_count{outcome="ok"}"#;
    assert!(value(&after, commits) > value(&before, commits), "{text}");
    // Gauges read from this app's own stores.
    let size = t.app.audit.ledger().size().await.unwrap() as f64;
    assert!(value(&after, "fhirgate_ledger_entries") > 0.0, "{text}");
    assert!(value(&after, "fhirgate_ledger_entries") <= size, "{text}");
    assert_eq!(
        value(&after, r#"fhirgate_bulk_jobs{state="queued"}"#),
        1.0,
        "{text}"
    );
    for state in ["running", "complete", "failed", "deleted"] {
        let key = format!(r#"fhirgate_bulk_jobs{{state="{state}"}}"#);
        assert_eq!(after.get(&key), Some(&0.0), "{text}");
    }
}

#[tokio::test]
async fn admin_metrics_need_an_administrator_or_auditor() {
    let t = TestApp::with_config("[observability]\nmetrics = \"admin\"\n").await;
    let anonymous = t.request_raw(Method::GET, "/metrics", &[], None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let patient = t
        .token_for("patient/*.rs", Some("p1"), None, Some("patient"))
        .await;
    let r = t
        .request_with(&patient, Method::GET, "/metrics", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let auditor = t.token_for("system/AuditEvent.rs", None, None, None).await;
    let r = t
        .request_with(&auditor, Method::GET, "/metrics", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("fhirgate_http_requests_total"));

    let t = TestApp::with_config("[observability]\nmetrics = \"off\"\n").await;
    let r = t.request_raw(Method::GET, "/metrics", &[], None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn readyz_is_200_when_everything_answers() {
    let t = TestApp::new().await;
    let r = t.request_raw(Method::GET, "/readyz", &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json,
        json!({"status": "ready", "checks": {"upstream": "ok", "state": "ok", "ledger": "ok"}})
    );
    // Liveness is unchanged.
    let r = t.request_raw(Method::GET, "/healthz", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn readyz_is_503_naming_an_unreachable_upstream() {
    // A port nobody listens on: bind, note, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = TestApp::with_config(&format!(
        "[upstream]\nurl = \"http://127.0.0.1:{port}/fhir\"\n"
    ))
    .await;
    let r = t.request_raw(Method::GET, "/readyz", &[], None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json["status"], "unavailable");
    assert_eq!(r.json["failed"], json!(["upstream"]));
    assert_eq!(r.json["checks"]["state"], "ok");
    assert_eq!(r.json["checks"]["ledger"], "ok");
    let why = r.json["checks"]["upstream"].as_str().unwrap();
    assert!(
        why == "status 502" || why == "status 503" || why == "timeout",
        "{why}"
    );
    // The body names no upstream address.
    assert!(!r.text().contains(&port.to_string()), "{}", r.text());
}

#[tokio::test]
async fn the_audit_entry_carries_the_request_id() {
    let t = TestApp::new().await;
    seed_patient(&t, "obs-audit-1").await;
    let r = t.get("/fhir/Patient/obs-audit-1").await;
    assert_eq!(r.status, StatusCode::OK);
    let request_id = r.header("x-request-id").unwrap();
    let seq: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    // On the chained ledger row…
    let rows = t.app.audit.ledger().entries(seq, 1).await.unwrap();
    assert_eq!(rows[0].request_id.as_deref(), Some(request_id.as_str()));
    // …and in the BALP AuditEvent, as the X-Request-Id transaction entity.
    let ev = t.get(&format!("/fhir/AuditEvent/{seq}")).await;
    assert_eq!(ev.status, StatusCode::OK, "{}", ev.text());
    let entity = ev.json["entity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"]["code"] == "XrequestId")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(entity["what"]["identifier"]["value"], request_id.as_str());
}

#[tokio::test]
async fn access_log_lines_carry_the_route_template() {
    let captured = Captured::default();
    let subscriber = captured.subscriber();
    // Other tests of this binary register callsites on threads without a
    // subscriber; while only one dispatcher exists, tracing-core rebuilds
    // the global max level from *that* thread's (none: OFF). A second live
    // dispatcher makes rebuilds consult every registered one.
    let _second = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .finish(),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let t = TestApp::new().await;
    let r = t.get("/fhir/Patient/obs-log-77?name=Secretname").await;
    let id = r.header("x-request-id").unwrap();
    let logs = captured.text();
    let line = logs
        .lines()
        .filter(|l| l.contains(&id))
        .find(|l| l.contains("\"route\""))
        .unwrap_or_else(|| panic!("no access line for {id}:\n{logs}"));
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["route"], "/fhir/{type}/{id}");
    assert_eq!(v["status"], 404);
    assert!(!logs.contains("Secretname"), "query strings are not logged");
}
