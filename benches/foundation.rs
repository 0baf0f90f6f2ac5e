//! Foundation benchmark (issue 2): prints, from one run,
//! - read and search throughput and p50/p99 latency directly against the
//!   embedded store (`Upstream::execute`), through the facade in-process
//!   (`Router::oneshot`: parsing, bearer-token authentication, scope checks,
//!   pipeline, rendering, no socket) and through the facade over HTTP on
//!   loopback, with the facade's overhead as ratios;
//! - the store's time for `Observation?patient=X&category=laboratory` at a
//!   small and a large population (default 100 and 10,000 patients).
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench foundation -- [small] [large]`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{body::Body, http::Request};
use fhirgate::{
    config::Config,
    fhir::{FhirRequest, Interaction},
    upstream::{embedded::EmbeddedStore, RequestContext, Upstream},
    AppState,
};
use http_body_util::BodyExt;
use tower::ServiceExt;

const CONCURRENCY: usize = 4;

struct Stats {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn stats(mut lat: Vec<Duration>, wall: Duration) -> Stats {
    lat.sort_unstable();
    let pick = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        rps: lat.len() as f64 / wall.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

/// Runs `n` calls of `f(i)` with `CONCURRENCY` tasks; returns per-call latencies.
async fn drive<F, Fut>(n: usize, f: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n / CONCURRENCY + 1);
            let mut i = w;
            while i < n {
                let t = Instant::now();
                f(i).await;
                lat.push(t.elapsed());
                i += CONCURRENCY;
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    stats(all, started.elapsed())
}

async fn open(patients: u32) -> (AppState, EmbeddedStore, tempfile::TempDir, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
        ("FHIRGATE_LOG_LEVEL".to_owned(), "warn".to_owned()),
    ];
    let config = Config::from_parts("", std::path::Path::new("none.toml"), &env).unwrap();
    let (app, store) = AppState::open(config).await.unwrap();
    let store = store.unwrap();
    let t = Instant::now();
    fhirgate::demo::seed_population(&app, patients)
        .await
        .unwrap();
    store.optimize().await.unwrap();
    (app, store, dir, t.elapsed())
}

/// A `system/*.rs` token minted and recorded as the token endpoint would.
async fn system_token(app: &AppState) -> String {
    let base = app.config.fhir_base();
    let now = fhirgate::oauth::now();
    let jti = smart_launch::token::random_token(16);
    let claims = smart_launch::token::AccessClaims {
        iss: base.clone(),
        sub: "bench".into(),
        aud: base,
        exp: now + 36_000,
        iat: now,
        jti: jti.clone(),
        client_id: "bench".into(),
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
    app.state
        .access_put(&jti, "bench", None, now + 36_000)
        .await
        .unwrap();
    smart_launch::token::mint_access(&app.keys, &claims).unwrap()
}

fn patient(i: usize, patients: u32) -> String {
    fhirgate::seed::patient_id((i % patients as usize) as u32)
}

fn read_req(i: usize, patients: u32) -> FhirRequest {
    let mut r = FhirRequest::new(Interaction::Read);
    r.resource_type = Some("Patient".into());
    r.id = Some(patient(i, patients));
    r
}

fn search_req(i: usize, patients: u32) -> FhirRequest {
    let mut r = FhirRequest::new(Interaction::SearchType);
    r.resource_type = Some("Observation".into());
    r.params = vec![
        ("patient".into(), patient(i, patients)),
        ("category".into(), "laboratory".into()),
    ];
    r
}

fn row(name: &str, s: &Stats, base: Option<&Stats>) {
    let ratio = base
        .map(|b| format!("{:>6.2}x", b.rps / s.rps))
        .unwrap_or_else(|| "     - ".into());
    println!(
        "| {name:<56} | {:>9.0} | {:>9.1} | {:>9.1} | {ratio} |",
        s.rps,
        s.p50.as_secs_f64() * 1e6,
        s.p99.as_secs_f64() * 1e6
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let small = args.first().copied().unwrap_or(100);
    let large = args.get(1).copied().unwrap_or(10_000);
    let reads = 20_000;
    let searches = 4_000;

    let (app, store, _dir, seed_time) = open(small).await;
    println!(
        "seeded {small} patients ({} resources) in {:.1}s",
        store.count(None).await.unwrap(),
        seed_time.as_secs_f64()
    );
    let ctx: RequestContext = app.request_context("bench");
    let router = fhirgate::app(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = router.clone();
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let bearer = format!("Bearer {}", system_token(&app).await);

    let mut results = Vec::new();
    for (label, n, make, path) in [
        (
            "read Patient/{id}",
            reads,
            read_req as fn(usize, u32) -> FhirRequest,
            "Patient/{}",
        ),
        (
            "search Observation?patient&category",
            searches,
            search_req as fn(usize, u32) -> FhirRequest,
            "Observation?patient={}&category=laboratory",
        ),
    ] {
        let (s, c) = (store.clone(), ctx.clone());
        let direct = drive(n, move |i| {
            let (s, c) = (s.clone(), c.clone());
            async move {
                s.execute(&make(i, small), &c).await.unwrap();
            }
        })
        .await;
        let r = router.clone();
        let path_in = path.to_owned();
        let b1 = bearer.clone();
        let oneshot = drive(n, move |i| {
            let r = r.clone();
            let uri = format!("/fhir/{}", path_in.replace("{}", &patient(i, small)));
            let b = b1.clone();
            async move {
                let res = r
                    .oneshot(
                        Request::get(uri)
                            .header("authorization", b)
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                assert!(res.status().is_success());
                res.into_body().collect().await.unwrap();
            }
        })
        .await;
        let cl = client.clone();
        let path_http = path.to_owned();
        let b2 = bearer.clone();
        let http = drive(n, move |i| {
            let cl = cl.clone();
            let b = b2.clone();
            let url = format!(
                "http://{addr}/fhir/{}",
                path_http.replace("{}", &patient(i, small))
            );
            async move {
                let res = cl.get(url).header("authorization", b).send().await.unwrap();
                assert!(res.status().is_success());
                res.bytes().await.unwrap();
            }
        })
        .await;
        results.push((label, direct, oneshot, http));
    }

    println!(
        "\n## Facade overhead ({small} patients, concurrency {CONCURRENCY}, 2 worker threads)\n"
    );
    println!("| path                                                     |     req/s |  p50 (us) |  p99 (us) | slower by |");
    println!("|----------------------------------------------------------|-----------|-----------|-----------|-----------|");
    for (label, direct, oneshot, http) in &results {
        row(&format!("{label}: store direct"), direct, None);
        row(
            &format!("{label}: facade in-process"),
            oneshot,
            Some(direct),
        );
        row(&format!("{label}: facade over HTTP"), http, Some(direct));
    }
    drop(client);

    println!("\n## Store search time, Observation?patient=X&category=laboratory\n");
    let small_stats = search_only(&store, &ctx, small).await;
    drop(store);
    let (_app2, big, _dir2, big_seed) = open(large).await;
    println!(
        "(seeded {large} patients, {} resources, in {:.0}s)",
        big.count(None).await.unwrap(),
        big_seed.as_secs_f64()
    );
    let big_stats = search_only(&big, &ctx, large).await;
    println!("| patients | resources in store |  p50 (us) |  p99 (us) |");
    println!("|----------|--------------------|-----------|-----------|");
    println!(
        "| {small:>8} | {:>18} | {:>9.1} | {:>9.1} |",
        small_stats.0,
        small_stats.1.p50.as_secs_f64() * 1e6,
        small_stats.1.p99.as_secs_f64() * 1e6
    );
    println!(
        "| {large:>8} | {:>18} | {:>9.1} | {:>9.1} |",
        big_stats.0,
        big_stats.1.p50.as_secs_f64() * 1e6,
        big_stats.1.p99.as_secs_f64() * 1e6
    );
    println!(
        "\ngrowth: {:.0}x the data costs {:.2}x the p50 search time",
        big_stats.0 as f64 / small_stats.0 as f64,
        big_stats.1.p50.as_secs_f64() / small_stats.1.p50.as_secs_f64()
    );
}

async fn search_only(store: &EmbeddedStore, ctx: &RequestContext, patients: u32) -> (i64, Stats) {
    let (s, c) = (store.clone(), ctx.clone());
    let stats = drive(2_000, move |i| {
        let (s, c) = (s.clone(), c.clone());
        // Spread over the population deterministically.
        let k = (i * 7919) % patients as usize;
        async move {
            s.execute(&search_req(k, patients), &c).await.unwrap();
        }
    })
    .await;
    (store.count(None).await.unwrap(), stats)
}
