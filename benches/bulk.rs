//! Bulk Data `$export` benchmark (issue 6): a system-level export of the
//! seeded population, in process, with consent filtering on (a client
//! subject to consent) and off (the same scopes, client listed in
//! `[consent] exempt_clients`), same data, same run, as a ratio. Prints
//! resources per second, MB/s of NDJSON written, and the process's peak
//! resident memory (VmHWM) before and after the exports. Then the same
//! export de-identified (issue 12: `safe-harbor`, and `safe-harbor-shifted`
//! under a key set, purpose HRESCH, consent on) as a ratio to the plain
//! export with consent on.
//!
//! Run: `scripts/bench.sh bulk [patients]` (or `cargo bench --bench bulk -- [patients]
//! [noaudit|storeonly|offonly]`; `noaudit` turns the audit trail off to
//! show its share; `storeonly` pages all Observations straight from the
//! upstream; `offonly` runs only the consent-exempt export; `nodeid` skips
//! the de-identified exports).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use fhirgate::{config::Config, AppState};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: &str,
) -> (StatusCode, Value, Option<String>) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("prefer", "respond-async")
        .header("x-purpose-of-use", "HRESCH")
        .body(Body::empty())
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let loc = res
        .headers()
        .get("content-location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        loc,
    )
}

async fn token(app: &AppState, client: &str) -> String {
    let base = app.config.fhir_base();
    let now = fhirgate::oauth::now();
    let jti = smart_launch::token::random_token(16);
    app.state
        .access_put(&jti, client, None, now + 36_000)
        .await
        .unwrap();
    let claims = smart_launch::token::AccessClaims {
        iss: base.clone(),
        sub: "bench".into(),
        aud: base,
        exp: now + 36_000,
        iat: now,
        jti,
        client_id: client.into(),
        scope: "system/*.rs".into(),
        patient: None,
        encounter: None,
        fhir_user: None,
        role: None,
        purpose_of_use: None,
        organization: None,
        acr: None,
        amr: Vec::new(),
        auth_time: None,
    };
    smart_launch::token::mint_access(&app.keys, &claims).unwrap()
}

/// Exports everything (`query`: extra kick-off parameters); returns
/// (resources, bytes, wall time).
async fn export(
    app: &AppState,
    router: &axum::Router,
    tok: &str,
    query: &str,
) -> (u64, u64, Duration) {
    let started = Instant::now();
    let (s, body, loc) = call(router, "GET", &format!("/fhir/$export{query}"), tok).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let status = loc.unwrap().replace("http://bench.test", "");
    let manifest = loop {
        let (s, body, _) = call(router, "GET", &status, tok).await;
        if s == StatusCode::OK {
            break body;
        }
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed();
    let job = status.rsplit('/').next().unwrap();
    let mut resources = 0;
    let mut bytes = 0;
    for o in manifest["output"].as_array().unwrap() {
        resources += o["count"].as_u64().unwrap();
        let name = o["url"].as_str().unwrap().rsplit('/').next().unwrap();
        bytes += std::fs::metadata(app.config.data_dir.join("bulk").join(job).join(name))
            .map(|m| m.len())
            .unwrap_or(0);
    }
    (resources, bytes, wall)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let patients: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        (
            "FHIRGATE_PUBLIC_URL".to_owned(),
            "http://bench.test".to_owned(),
        ),
        ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
    ];
    let mut toml = "[bulk]\nmin_poll_seconds = 0\nscan_millis = 20\n[consent]\nexempt_clients = [\"exporter-exempt\"]\n\
        [deid.key_sets.bench]\n[deid.clients.researcher]\npurposes = [\"HRESCH\"]\nkey_sets = [\"bench\"]\n"
        .to_owned();
    // `noaudit`: the same run without the audit trail (its share of the cost).
    if std::env::args().any(|a| a == "noaudit") {
        toml.push_str("[audit]\nenabled = false\n");
        println!("audit trail off");
    }
    let toml = toml.as_str();
    let config = Config::from_parts(toml, std::path::Path::new("fhirgate.toml"), &env).unwrap();
    let (app, _) = AppState::open(config).await.unwrap();
    let seeded = fhirgate::demo::seed_population(&app, patients)
        .await
        .unwrap();
    println!(
        "seeded {} resources for {patients} patients",
        seeded.resources
    );
    let on = token(&app, "exporter").await;
    let off = token(&app, "exporter-exempt").await;
    // registered for secondary use (it may only export de-identified)
    let research = token(&app, "researcher").await;
    // `storeonly`: page every Observation straight from the upstream (no
    // pipeline, no bulk code) to see the store's own memory and speed.
    if std::env::args().any(|a| a == "storeonly") {
        let before = peak_rss_mb();
        let ctx = app.request_context("bench");
        let mut req = fhirgate::fhir::FhirRequest::new(fhirgate::fhir::Interaction::SearchType);
        req.resource_type = Some("Observation".into());
        req.params = vec![("_count".into(), "1000".into())];
        let started = Instant::now();
        let mut n = 0;
        loop {
            let body = app
                .upstream
                .execute(&req, &ctx)
                .await
                .unwrap()
                .body
                .unwrap();
            n += body["entry"].as_array().map(Vec::len).unwrap_or(0);
            let next = body["link"]
                .as_array()
                .and_then(|ls| ls.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
            let Some(next) = next else { break };
            let q = next
                .split_once('?')
                .map(|(_, q)| q.to_owned())
                .unwrap_or_default();
            req.params = url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "store only: {n} Observations in {secs:.2}s = {:.0}/s; peak RSS {before:.0} -> {:.0} MB",
            n as f64 / secs,
            peak_rss_mb()
        );
        return;
    }
    let router = fhirgate::app(app.clone());
    let worker = fhirgate::bulk::worker::spawn(app.clone());
    let rss_before = peak_rss_mb();
    let mut results = Vec::new();
    let mut runs = vec![("consent on ", &on, ""), ("consent off", &off, "")];
    // `offonly`: the exempt client alone (memory of the path without consent).
    let offonly = std::env::args().any(|a| a == "offonly");
    if offonly {
        runs.remove(0);
    }
    let deid = !offonly && !std::env::args().any(|a| a == "nodeid");
    if deid {
        runs.push((
            "safe-harbor",
            &research,
            "?_anonymizationConfig=safe-harbor",
        ));
        runs.push((
            "safe-harbor-shifted, key set",
            &research,
            "?_anonymizationConfig=safe-harbor-shifted&_anonymizationKeySet=bench",
        ));
    }
    for (label, tok, query) in runs {
        let (n, bytes, wall) = export(&app, &router, tok, query).await;
        let secs = wall.as_secs_f64();
        println!(
            "{label}: {n} resources, {:.1} MB in {:.2}s = {:.0} resources/s, {:.1} MB/s",
            bytes as f64 / 1e6,
            secs,
            n as f64 / secs,
            bytes as f64 / 1e6 / secs
        );
        results.push(n as f64 / secs);
    }
    if results.len() >= 2 {
        println!(
            "consent on / off throughput ratio: {:.2}",
            results[0] / results[1]
        );
    }
    if deid {
        println!(
            "de-identified / plain (consent on) throughput ratio: safe-harbor {:.2}, safe-harbor-shifted {:.2}",
            results[2] / results[0],
            results[3] / results[0]
        );
    }
    println!(
        "peak RSS: {:.0} MB after seeding, {:.0} MB after both exports",
        rss_before,
        peak_rss_mb()
    );
    worker.abort();
}
