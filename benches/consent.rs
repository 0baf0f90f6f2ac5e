//! Consent benchmark (issue 4): prints, from one run,
//! - decision time per resource, in process, for a patient whose Consent has
//!   50 provisions: `consent::decide` alone (p50/p99 over the seeded
//!   resources of one patient, under `Policy::starter`), classification plus
//!   decision, and the pipeline's judge (`pipeline::consent::judge::Session`:
//!   cached classification, decision, tag stripping, obligations); a 50-deep
//!   chain of provisions as the worst case; and a session's `prepare` (the
//!   index lookup a page pays once);
//! - search throughput through the facade over HTTP on loopback with consent
//!   filtering on and off (off = the same caller's client listed in
//!   `[consent] exempt_clients`), same data, same server, same run, as a
//!   ratio: 100 seeded patients (a few thousand Observations), a few Consents,
//!   page size 50; once with the audit trail on (as deployed: consent also
//!   lists every patient touched and every decision for the ledger) and once
//!   on a second, identical server with `[audit] enabled = false` (consent's
//!   own cost).
//!
//! Run: `scripts/bench.sh consent` (or `cargo bench --bench consent -- [patients]`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{body::Body, http::Request};
use fhirgate::{
    config::Config,
    consent::{
        classify, decide, parse_consent, Action, BasePolicy, DecisionInput, Effect, Policy,
        Requester,
    },
    fhir::{FhirRequest, Interaction},
    pipeline::consent::judge::Session,
    AppState,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use smart_launch::{context::AccessContext, scope::ScopeSet};
use tower::ServiceExt;

const CONCURRENCY: usize = 4;
const PAGE: usize = 50;
const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
/// The caller's client when consent applies, and when it is exempt.
const ON: &str = "ehr";
const OFF: &str = "ehr-exempt";

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

/// Runs `n` calls of `f(i)` with `CONCURRENCY` tasks; returns per-call
/// latencies and the wall time.
async fn drive<F, Fut>(n: usize, f: F) -> (Vec<Duration>, Duration)
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
    (all, started.elapsed())
}

/// Per-call latencies of a synchronous closure, `n` calls.
fn time_each(n: usize, mut f: impl FnMut(usize)) -> Stats {
    for i in 0..n / 10 {
        f(i); // warm-up
    }
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f(i);
        lat.push(t.elapsed());
    }
    stats(lat, started.elapsed())
}

/// An access token minted and recorded as the token endpoint would.
async fn token(
    app: &AppState,
    client: &str,
    scope: &str,
    patient: Option<&str>,
    fhir_user: Option<&str>,
    role: Option<&str>,
) -> String {
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
        client_id: client.into(),
        scope: scope.into(),
        patient: patient.map(str::to_owned),
        encounter: None,
        fhir_user: fhir_user.map(str::to_owned),
        role: role.map(str::to_owned),
        purpose_of_use: None,
        organization: None,
        acr: None,
        amr: Vec::new(),
        auth_time: None,
    };
    app.state
        .access_put(&jti, client, None, now + 36_000)
        .await
        .unwrap();
    smart_launch::token::mint_access(&app.keys, &claims).unwrap()
}

/// A Consent root provision with exactly 50 provisions: a permit root, seven
/// deny exceptions (by actor, purpose and confidentiality, class, period and
/// confidentiality, action and data period, purpose, sensitivity), each with
/// six nested exceptions to the exception (security labels, codes, classes,
/// data periods, purposes).
fn fifty_provisions() -> Value {
    let label = |system: &str, code: &str| json!([{"system": system, "code": code}]);
    let leaf = |i: usize, j: usize| -> Value {
        const SENSITIVE: [&str; 6] = ["HIV", "PSY", "SUD", "MH", "GDIS", "SDV"];
        const CONFIDENTIAL: [&str; 6] = ["R", "V", "R", "V", "R", "V"];
        const ICD: [&str; 6] = ["B20", "F32.1", "F11.20", "Z15.01", "F41.1", "A54.9"];
        const CLASSES: [&str; 6] = [
            "Observation",
            "Condition",
            "MedicationRequest",
            "DiagnosticReport",
            "Encounter",
            "DocumentReference",
        ];
        const PURPOSES: [&str; 6] = ["HRESCH", "HPAYMT", "HOPERAT", "PUBHLTH", "HMARKT", "TREAT"];
        let mut p = json!({});
        match (i + j) % 6 {
            0 => p["securityLabel"] = label(ACT, SENSITIVE[j]),
            1 => p["securityLabel"] = label(CONF, CONFIDENTIAL[j]),
            2 => {
                let code = ICD[j];
                p["code"] = json!([{"coding": [{"system": ICD10CM, "code": code}]}]);
            }
            3 => {
                let class = CLASSES[j];
                p["class"] = json!([{ "code": class }]);
            }
            4 => {
                let (start, end) = (
                    format!("{}-01-01", 2000 + 3 * j),
                    format!("{}-12-31", 2002 + 3 * j),
                );
                p["dataPeriod"] = json!({"start": start, "end": end});
            }
            _ => {
                let purpose = PURPOSES[j];
                p["purpose"] = json!([{ "code": purpose }]);
            }
        }
        p
    };
    let groups: Vec<Value> = (0..7)
        .map(|i| {
            let mut g = match i {
                0 => json!({"type": "deny", "actor": [{"reference": {"reference": "Practitioner/practitioner-patel"}}]}),
                1 => json!({"type": "deny", "purpose": [{"code": "TREAT"}],
                    "securityLabel": [{"system": CONF, "code": "R"}]}),
                2 => json!({"type": "deny", "class": [{"code": "Condition"}, {"code": "DiagnosticReport"}]}),
                3 => json!({"type": "deny", "period": {"start": "2000-01-01", "end": "2999-01-01"},
                    "securityLabel": [{"system": CONF, "code": "V"}]}),
                4 => json!({"type": "deny", "action": [{"coding": [{"code": "access"}]}],
                    "dataPeriod": {"end": "2015-12-31"}}),
                5 => json!({"type": "deny", "purpose": [{"code": "HRESCH"}]}),
                _ => json!({"type": "deny", "securityLabel": [{"system": ACT, "code": "PSY"}, {"system": ACT, "code": "MH"}]}),
            };
            // children are exceptions to their deny: permits, a few denies again
            let kids: Vec<Value> = (0..6)
                .map(|j| {
                    let mut k = leaf(i, j);
                    k["type"] = json!(if j == 5 { "deny" } else { "permit" });
                    k
                })
                .collect();
            g["provision"] = Value::Array(kids);
            g
        })
        .collect();
    json!({"type": "permit", "provision": groups})
}

/// Fifty provisions nested one in the other, each matching every read.
fn fifty_deep() -> Value {
    let mut p = json!({"type": "deny", "period": {"start": "2000-01-01"}});
    for i in 0..49 {
        let kind = if i % 2 == 0 { "permit" } else { "deny" };
        p = json!({"type": kind, "period": {"start": "2000-01-01"}, "provision": [p]});
    }
    p
}

fn count_provisions(p: &Value) -> usize {
    1 + p["provision"]
        .as_array()
        .map(|a| a.iter().map(count_provisions).sum())
        .unwrap_or(0)
}

fn consent(id: &str, patient: &str, provision: Value) -> Value {
    json!({"resourceType": "Consent", "id": id, "status": "active",
        "meta": {"versionId": "1"},
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "performer": [{"reference": format!("Patient/{patient}")}],
        "provision": provision})
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn decision_row(name: &str, s: &Stats) {
    println!(
        "| {name:<62} | {:>8.2} | {:>8.2} | {:>10.0} |",
        us(s.p50),
        us(s.p99),
        s.rps
    );
}

/// Decision time per resource, `decide` alone and with classification.
fn bench_decide(patient_k: u32, dr: &str) {
    let patient = fhirgate::seed::patient_id(patient_k);
    let resources: Vec<Value> = fhirgate::seed::patient_resources(patient_k)
        .into_iter()
        .filter(|r| r["resourceType"] != "Patient")
        .collect();
    let policy = Policy::starter(BasePolicy::OptOut);
    let classes: Vec<_> = resources
        .iter()
        .map(|r| classify(r, &policy.value_sets))
        .collect();
    let reference = format!("Patient/{patient}");
    let wide = {
        let mut m = parse_consent(&consent("c50", &patient, fifty_provisions())).unwrap();
        m.patient = Some(reference.clone());
        m
    };
    let deep = {
        let mut m = parse_consent(&consent("d50", &patient, fifty_deep())).unwrap();
        m.patient = Some(reference.clone());
        m
    };
    let clinician = Requester {
        client_id: ON.into(),
        fhir_user: Some(dr.to_owned()),
        role: Some("clinician".into()),
        organization: None,
    };
    let now = fhirgate::oauth::now();
    let n = 200_000;
    let input = |i: usize, purpose: Option<&'static str>| DecisionInput {
        class: &classes[i % classes.len()],
        patient: Some(reference.as_str()),
        patient_state: Some("TX"),
        requester: &clinician,
        purpose,
        reason: None,
        action: Action::Read,
        now,
    };
    let released = (0..classes.len())
        .filter(|i| {
            decide(&input(*i, None), std::slice::from_ref(&wide), &policy).effect != Effect::Deny
        })
        .count();
    let treat = time_each(n, |i| {
        black_box(decide(
            &input(i, None),
            std::slice::from_ref(&wide),
            &policy,
        ));
    });
    let research = time_each(n, |i| {
        black_box(decide(
            &input(i, Some("HRESCH")),
            std::slice::from_ref(&wide),
            &policy,
        ));
    });
    let chain = time_each(n, |i| {
        black_box(decide(
            &input(i, None),
            std::slice::from_ref(&deep),
            &policy,
        ));
    });
    let none = time_each(n, |i| {
        black_box(decide(&input(i, None), &[], &policy));
    });
    let with_classify = time_each(n / 4, |i| {
        let c = classify(&resources[i % resources.len()], &policy.value_sets);
        let mut inp = input(i, None);
        inp.class = &c;
        black_box(decide(&inp, std::slice::from_ref(&wide), &policy));
    });
    println!(
        "\n## Decision time per resource, in process ({} resources of {patient}, TX, Policy::starter(opt-out))\n",
        resources.len()
    );
    println!(
        "Consent provisions: {} (wide tree), {} (chain); clinician {dr}; the wide tree releases {released} of {} to TREAT\n",
        count_provisions(&fifty_provisions()),
        count_provisions(&fifty_deep()),
        classes.len()
    );
    println!("| decision                                                       | p50 (us) | p99 (us) | decisions/s |");
    println!("|----------------------------------------------------------------|----------|----------|------------|");
    decision_row(
        "decide, 50-provision Consent, purpose TREAT (default)",
        &treat,
    );
    decision_row("decide, 50-provision Consent, purpose HRESCH", &research);
    decision_row("decide, 50-deep provision chain", &chain);
    decision_row("decide, no Consent (base policy + rules)", &none);
    decision_row("classify + decide, 50-provision Consent", &with_classify);
}

async fn open(patients: u32, audit: bool) -> (AppState, tempfile::TempDir, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
        ("FHIRGATE_LOG_LEVEL".to_owned(), "warn".to_owned()),
    ];
    let toml = format!(
        "[consent]\nexempt_clients = [\"{OFF}\"]\npoll_seconds = 0\n[audit]\nenabled = {audit}\n"
    );
    let config = Config::from_parts(&toml, std::path::Path::new("none.toml"), &env).unwrap();
    let (app, store) = AppState::open(config).await.unwrap();
    let t = Instant::now();
    let report = fhirgate::demo::seed_population(&app, patients)
        .await
        .unwrap();
    if let Some(s) = store {
        s.optimize().await.unwrap();
    }
    (app, dir, report.dr_lee, t.elapsed())
}

/// Writes a Consent through the facade as its patient (the index follows).
async fn put_consent(app: &AppState, router: &axum::Router, id: &str, k: u32, provision: Value) {
    let p = fhirgate::seed::patient_id(k);
    let tok = token(
        app,
        "portal",
        "patient/*.cruds",
        Some(&p),
        Some(&format!("Patient/{p}")),
        Some("patient"),
    )
    .await;
    let body = consent(id, &p, provision);
    let req = Request::put(format!("/fhir/Consent/{id}"))
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/fhir+json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "Consent/{id}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
}

/// The pipeline's judge for one patient's resources, in process.
async fn bench_judge(app: &AppState, k: u32, dr: &str) {
    let ctx = app.request_context("bench");
    let caller = AccessContext {
        client_id: ON.into(),
        scopes: ScopeSet::parse("user/*.rs").unwrap(),
        patient: None,
        encounter: None,
        fhir_user: Some(dr.to_owned()),
        role: Some("clinician".into()),
        jti: "bench".into(),
        expires_at: i64::MAX,
        purpose_of_use: None,
        organization: None,
        assurance: Default::default(),
    };
    let req = FhirRequest::new(Interaction::SearchType);
    let p = fhirgate::seed::patient_id(k);
    // the stored resources (with versions, so classification is cached)
    let mut resources: Vec<Value> = Vec::new();
    for t in ["Observation", "Condition", "MedicationRequest", "Encounter"] {
        let mut r = FhirRequest::new(Interaction::SearchType);
        r.resource_type = Some(t.into());
        r.params = vec![
            ("patient".into(), p.clone()),
            ("_count".into(), "1000".into()),
        ];
        let resp = app.upstream.execute(&r, &ctx).await.unwrap();
        let body = resp.body.unwrap();
        resources.extend(
            body["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"].clone()),
        );
    }
    let refs: Vec<&Value> = resources.iter().collect();
    let mut sess = Session::new(app, &ctx, &caller, &req);
    sess.prepare(&refs).await.unwrap();
    let mut released = 0usize;
    let n = 100_000;
    for r in &resources {
        released += usize::from(sess.judge(r).released.is_some());
    }
    let judge = time_each(n, |i| {
        black_box(sess.judge(&resources[i % resources.len()]));
    });
    // a session's preparation: index generation check (cache hit), state
    let rounds = 2_000;
    let mut lat = Vec::with_capacity(rounds);
    let started = Instant::now();
    for _ in 0..rounds {
        let t = Instant::now();
        let mut s = Session::new(app, &ctx, &caller, &req);
        s.prepare(&refs[..PAGE.min(refs.len())]).await.unwrap();
        black_box(&s);
        lat.push(t.elapsed());
    }
    let prepare = stats(lat, started.elapsed());
    println!(
        "\n## The pipeline's judge for {p} ({} stored resources, Consent with 50 provisions, clinician)\n",
        resources.len()
    );
    println!("| judge                                                          | p50 (us) | p99 (us) |    calls/s |");
    println!("|----------------------------------------------------------------|----------|----------|------------|");
    decision_row(
        &format!(
            "Session::judge per resource ({released} of {} released)",
            resources.len()
        ),
        &judge,
    );
    decision_row(
        "Session::prepare for a page of 50 (index + state lookup)",
        &prepare,
    );
}

/// A seeded server with a few Consents written by their patients.
struct Server {
    app: AppState,
    router: axum::Router,
    _dir: tempfile::TempDir,
    dr: String,
}

async fn server(patients: u32, audit: bool) -> (Server, Duration, usize) {
    let (app, dir, dr, seed_time) = open(patients, audit).await;
    let router = fhirgate::app(app.clone());
    let some = |k: u32| k % patients.max(1);
    let consents: Vec<(&str, u32, Value)> = vec![
        ("bench-50", some(3), fifty_provisions()),
        ("bench-deny-all", some(7), json!({"type": "deny"})),
        (
            "bench-deny-sensitive",
            some(11),
            json!({"type": "permit", "provision": [{"type": "deny", "securityLabel": [
                {"system": ACT, "code": "HIV"}, {"system": ACT, "code": "PSY"}, {"system": ACT, "code": "MH"}]}]}),
        ),
        (
            "bench-deny-actor",
            some(13),
            json!({"type": "permit", "provision": [{"type": "deny", "actor": [{"reference": {"reference": dr.clone()}}],
                "class": [{"code": "Observation"}]}]}),
        ),
        (
            "bench-research-only",
            some(17),
            json!({"type": "deny", "provision": [{"type": "permit", "purpose": [{"code": "HRESCH"}]}]}),
        ),
    ];
    for (id, k, p) in &consents {
        put_consent(&app, &router, id, *k, p.clone()).await;
    }
    let written = consents.len();
    (
        Server {
            app,
            router,
            _dir: dir,
            dr,
        },
        seed_time,
        written,
    )
}

/// Interleaved off/on rounds per query (200 requests each).
const ROUNDS: usize = 6;

const QUERIES: [&str; 2] = [
    "Observation?patient={p}&_count=50",
    "Observation?category={c}&_count=50",
];

/// Search throughput over HTTP with consent off and on, per query: after a
/// warm-up, [`ROUNDS`] interleaved rounds of each.
async fn search_bench(s: &Server, patients: u32) -> Vec<(&'static str, Stats, Stats)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = s.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let dr = Some(s.dr.as_str());
    let on = format!(
        "Bearer {}",
        token(&s.app, ON, "user/*.rs", None, dr, Some("clinician")).await
    );
    let off = format!(
        "Bearer {}",
        token(&s.app, OFF, "user/*.rs", None, dr, Some("clinician")).await
    );
    let n = 200;
    let mut rows = Vec::new();
    for path in QUERIES {
        let run = |bearer: String, n: usize| {
            let cl = client.clone();
            drive(n, move |i| {
                let cl = cl.clone();
                let b = bearer.clone();
                let k = (i * 7) as u32 % patients.max(1);
                let url = format!(
                    "http://{addr}/fhir/{}",
                    path.replace("{p}", &fhirgate::seed::patient_id(k)).replace(
                        "{c}",
                        ["laboratory", "vital-signs", "social-history", "survey"][i % 4]
                    )
                );
                async move {
                    let res = cl.get(url).header("authorization", b).send().await.unwrap();
                    let status = res.status();
                    let body = res.bytes().await.unwrap();
                    assert!(
                        status.is_success(),
                        "{status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    black_box(body);
                }
            })
        };
        run(off.clone(), n / 4).await;
        run(on.clone(), n / 4).await;
        // interleaved rounds, alternating which goes first, so background
        // load falls on both alike
        let (mut lat_off, mut lat_on) = (Vec::new(), Vec::new());
        let (mut wall_off, mut wall_on) = (Duration::ZERO, Duration::ZERO);
        for round in 0..ROUNDS {
            for on_turn in [round % 2 == 1, round % 2 == 0] {
                let (lat, wall) = run(if on_turn { on.clone() } else { off.clone() }, n).await;
                if on_turn {
                    lat_on.extend(lat);
                    wall_on += wall;
                } else {
                    lat_off.extend(lat);
                    wall_off += wall;
                }
            }
        }
        rows.push((path, stats(lat_off, wall_off), stats(lat_on, wall_on)));
    }
    server.abort();
    rows
}

/// One search page in process (`Router::oneshot`, no socket), one request
/// at a time, off and on alternating: what consent adds to a page.
async fn sequential(s: &Server, patients: u32) -> Vec<(&'static str, Stats, Stats)> {
    let dr = Some(s.dr.as_str());
    let on = format!(
        "Bearer {}",
        token(&s.app, ON, "user/*.rs", None, dr, Some("clinician")).await
    );
    let off = format!(
        "Bearer {}",
        token(&s.app, OFF, "user/*.rs", None, dr, Some("clinician")).await
    );
    let get = |uri: String, bearer: String| {
        let router = s.router.clone();
        async move {
            let t = Instant::now();
            let res = router
                .oneshot(
                    Request::get(uri)
                        .header("authorization", bearer)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert!(res.status().is_success());
            black_box(res.into_body().collect().await.unwrap());
            t.elapsed()
        }
    };
    let mut rows = Vec::new();
    for path in QUERIES {
        let n = 400;
        let (mut lat_off, mut lat_on) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut wall_off, mut wall_on) = (Duration::ZERO, Duration::ZERO);
        for i in 0..n + n / 10 {
            let k = (i * 7) as u32 % patients.max(1);
            let uri = format!(
                "/fhir/{}",
                path.replace("{p}", &fhirgate::seed::patient_id(k)).replace(
                    "{c}",
                    ["laboratory", "vital-signs", "social-history", "survey"][i % 4]
                )
            );
            let a = get(uri.clone(), off.clone()).await;
            let b = get(uri, on.clone()).await;
            if i >= n / 10 {
                lat_off.push(a);
                wall_off += a;
                lat_on.push(b);
                wall_on += b;
            }
        }
        rows.push((path, stats(lat_off, wall_off), stats(lat_on, wall_on)));
    }
    rows
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let patients: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let (s, seed_time, written) = server(patients, true).await;
    let ctx = s.app.request_context("bench");
    let mut count = FhirRequest::new(Interaction::SearchType);
    count.resource_type = Some("Observation".into());
    count.params = vec![("_summary".into(), "count".into())];
    let observations = s
        .app
        .upstream
        .execute(&count, &ctx)
        .await
        .unwrap()
        .body
        .unwrap()["total"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "seeded {patients} patients ({observations} Observations) in {:.1}s; {written} Consents written",
        seed_time.as_secs_f64(),
    );
    let k = 3 % patients.max(1);
    bench_decide(k, &s.dr);
    bench_judge(&s.app, k, &s.dr).await;

    let in_process = sequential(&s, patients).await;
    let audited = search_bench(&s, patients).await;
    drop(s);
    let (quiet, _, _) = server(patients, false).await;
    let unaudited = search_bench(&quiet, patients).await;
    drop(quiet);

    println!(
        "\n## One search page in process, one request at a time, consent off vs. on (audit on)\n"
    );
    println!("| search                              | consent |  p50 (us) |  p99 (us) | consent adds (p50) |");
    println!("|-------------------------------------|---------|-----------|-----------|--------------------|");
    for (label, off, on) in &in_process {
        println!(
            "| {label:<35} | off     | {:>9.1} | {:>9.1} |                  - |",
            us(off.p50),
            us(off.p99)
        );
        println!(
            "| {label:<35} | on      | {:>9.1} | {:>9.1} | {:>15.1} us |",
            us(on.p50),
            us(on.p99),
            us(on.p50) - us(off.p50)
        );
    }
    println!(
        "\n## Search throughput over HTTP, consent filtering on vs. off ({patients} patients, page size {PAGE}, concurrency {CONCURRENCY}, 2 worker threads, interleaved rounds)\n"
    );
    println!("off = the same clinician's client listed in [consent] exempt_clients; audit = [audit] enabled\n");
    println!("| search                              | audit | consent |     req/s |  p50 (us) |  p99 (us) | on/off throughput |");
    println!("|-------------------------------------|-------|---------|-----------|-----------|-----------|-------------------|");
    for (audit, rows) in [("on", &audited), ("off", &unaudited)] {
        for (label, off, on) in rows {
            let line = |mode: &str, s: &Stats, ratio: String| {
                println!(
                    "| {label:<35} | {audit:<5} | {mode:<7} | {:>9.0} | {:>9.1} | {:>9.1} | {ratio:>17} |",
                    s.rps,
                    us(s.p50),
                    us(s.p99)
                );
            };
            line("off", off, "-".into());
            line("on", on, format!("{:.2}", on.rps / off.rps));
        }
    }
}
