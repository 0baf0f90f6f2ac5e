//! Measurements, not assertions (ignored; run in release):
//! `cargo test --release --test audit -- --ignored --nocapture`.
//! - FHIR read throughput through the router with the ledger on vs. off, in
//!   one run on one data dir (the same state, two `Auditor`s);
//! - durable audit appends per second through the group-commit writer.

use std::{sync::Arc, time::Instant};

use axum::{body::Body, http::Request};
use fhirgate::{
    audit::{Auditor, HttpFacts},
    pipeline::disclosure::Disclosure,
    AppState,
};
use tower::ServiceExt;

use crate::common::TestApp;

async fn reads(
    router: axum::Router,
    token: &str,
    ids: &[String],
    n: usize,
    concurrency: usize,
) -> (f64, u128) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (router, token, ids) = (router.clone(), token.to_owned(), ids.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in (w..n).step_by(concurrency) {
                let t0 = Instant::now();
                let res = router
                    .clone()
                    .oneshot(
                        Request::get(format!("/fhir/Patient/{}", ids[i % ids.len()]))
                            .header("authorization", format!("Bearer {token}"))
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                assert!(res.status().is_success());
                lat.push(t0.elapsed().as_micros());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    lat.sort_unstable();
    (n as f64 / started.elapsed().as_secs_f64(), lat[n / 2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
async fn bench_read_throughput_with_the_ledger_on_and_off() {
    let t = TestApp::new().await;
    fhirgate::demo::seed_population(&t.app, 20).await.unwrap();
    let ids: Vec<String> = (0..20).map(fhirgate::seed::patient_id).collect();
    let mut off_config = (*t.app.config).clone();
    off_config.audit.enabled = false;
    let off = AppState {
        audit: Arc::new(Auditor::open(&off_config, t.app.state.clone()).unwrap()),
        ..t.app.clone()
    };
    let on_router = fhirgate::app(t.app.clone());
    let off_router = fhirgate::app(off);
    let n = 4000;
    reads(off_router.clone(), &t.token, &ids, 200, 4).await;
    reads(on_router.clone(), &t.token, &ids, 200, 4).await;
    for concurrency in [4, 16, 64] {
        let (off_rps, off_p50) = reads(off_router.clone(), &t.token, &ids, n, concurrency).await;
        let (on_rps, on_p50) = reads(on_router.clone(), &t.token, &ids, n, concurrency).await;
        eprintln!(
            "FHIR read Patient/{{id}}, concurrency {concurrency}: ledger off {off_rps:.0} req/s (p50 {off_p50} us), ledger on {on_rps:.0} req/s (p50 {on_p50} us), on/off = {:.2}",
            on_rps / off_rps
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
async fn bench_durable_audit_appends() {
    let t = TestApp::new().await;
    for clients in [1usize, 16, 256] {
        let per = 4000 / clients.max(1);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let app = t.app.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in 0..per {
                    let mut d = Disclosure::default();
                    d.patient(&format!("Patient/p{}", (c * per + i) % 1000))
                        .released = vec![format!("Observation/o{i}")];
                    let http = HttpFacts {
                        method: "GET".into(),
                        path: "/fhir/Observation".into(),
                        recorded: 1_700_000_000_000,
                        ..HttpFacts::default()
                    };
                    let t0 = Instant::now();
                    app.audit
                        .record_fhir(&format!("b{c}-{i}"), &http, None, &d, 200)
                        .await
                        .unwrap();
                    lat.push(t0.elapsed().as_micros());
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        lat.sort_unstable();
        let n = lat.len();
        eprintln!(
            "durable audit appends (SQLite, fsync, group commit), {clients} concurrent requesters: {:.0} events/s, p50 {} us, p99 {} us",
            n as f64 / started.elapsed().as_secs_f64(),
            lat[n / 2],
            lat[n * 99 / 100]
        );
    }
}
