//! Prior-authorization benchmark (issue 7): prints, from one run, over HTTP
//! on loopback against an in-process server on the embedded store (SQLite
//! state store, audit ledger on, as deployed):
//! - CRD `order-sign` response time p50/p99 over a few thousand sequential
//!   calls, each with its own signed CDS client JWT (RS384, verified, `jti`
//!   recorded), one order per call cycling through the demo rules' verdicts
//!   (auto-approve, needs-doc, pend, no-auth, auto-deny), the member's
//!   Patient and Coverage prefetched so the PAS authorization lookup runs
//!   (a few approvals are on file; the auto-approve code answers
//!   `satisfied`). CRD asks for answers within 5 s in 90% of calls; the
//!   target here is under 20 ms;
//! - `Claim/$submit` decisions per second for auto-adjudicated PAS requests
//!   (half auto-approved, half auto-denied, each a new Claim identifier),
//!   with p50/p99, and as a ratio to a baseline measured on the same server
//!   in the same run: a FHIR read of a small resource (an Organization)
//!   through the same pipeline (token, scopes, consent, audit).
//!
//! Run: `cargo bench --bench prior_auth`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/pas.rs"]
mod pas;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use fhirgate::{config::Config, AppState};
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, RsaPrivateKey};
use serde_json::{json, Value};

/// Concurrent clients for the throughput runs.
const CONCURRENCY: usize = 4;
/// The public URL the server believes it has (CDS JWT `aud`).
const PUBLIC: &str = "http://fhirgate.bench";
/// The CDS client.
const ISS: &str = "https://ehr.bench";
const N_CRD: usize = 3_000;
const N_READ: usize = 3_000;
const N_SUBMIT: usize = 2_000;
/// Order codes cycled through by the CRD calls (demo rules): auto-approve
/// (satisfied by an approval on file), needs-doc, pend, no-auth, auto-deny.
const CRD_CODES: [&str; 5] = ["97110", "73722", "27447", "99213", "0042T"];

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

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs `n` calls of `f(i)` with `tasks` concurrent tasks; per-call
/// latencies and the wall time.
async fn drive<F, Fut>(n: usize, tasks: usize, f: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..tasks {
        let f = f.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n / tasks + 1);
            let mut i = w;
            while i < n {
                let t = Instant::now();
                f(i).await;
                lat.push(t.elapsed());
                i += tasks;
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(n);
    for h in handles {
        all.extend(h.await.unwrap());
    }
    (all, started.elapsed())
}

/// An access token minted and recorded as the token endpoint would.
async fn token(app: &AppState, client: &str, scope: &str) -> String {
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
        .access_put(&jti, client, None, now + 36_000)
        .await
        .unwrap();
    smart_launch::token::mint_access(&app.keys, &claims).unwrap()
}

/// The order-sign request for call `i`: one ServiceRequest, the member's
/// Patient and Coverage prefetched (the PAS builder's member).
fn order_sign(i: usize) -> Value {
    let code = CRD_CODES[i % CRD_CODES.len()];
    let order = json!({"resourceType": "ServiceRequest", "id": format!("sr-{i}"), "status": "draft",
        "intent": "order", "code": {"coding": [{"system": pas::CPT, "code": code}]},
        "quantityQuantity": {"value": 6}, "subject": {"reference": "Patient/p1"}});
    json!({"hook": "order-sign", "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {"userId": "Practitioner/dr1", "patientId": "p1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1",
                "identifier": [{"system": "http://example.org/MIN", "value": "12345678901"}]},
            "coverage": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource":
                {"resourceType": "Coverage", "id": "cov-1", "status": "active", "subscriberId": "12345678901",
                 "beneficiary": {"reference": "Patient/p1"}, "payor": [{"reference": "Organization/payer"}]}}]}}})
}

async fn post_json(client: &reqwest::Client, url: &str, auth: &str, body: &Value) -> Value {
    let res = client
        .post(url)
        .header("authorization", auth)
        .header("content-type", "application/fhir+json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The CDS client's key, trusted inline (`[crd] clients.jwks`).
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let (n, e) = (
        URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    );
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(
        key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let toml = format!(
        "[crd]\nclients = [{{ iss = \"{ISS}\", jwks = {{ keys = [{{ kty = \"RSA\", kid = \"bench\", alg = \"RS384\", n = \"{n}\", e = \"{e}\" }}] }} }}]\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("FHIRGATE_PUBLIC_URL".to_owned(), PUBLIC.to_owned()),
        ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
    ];
    let config = Config::from_parts(&toml, std::path::Path::new("none.toml"), &env).unwrap();
    let (app, _) = AppState::open(config).await.unwrap();
    let router = fhirgate::app(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();

    let clinic = format!(
        "Bearer {}",
        token(&app, "clinic-bench", "system/Claim.crs").await
    );
    let admin = format!(
        "Bearer {}",
        token(&app, "admin-bench", "system/*.cruds").await
    );
    let reader = format!(
        "Bearer {}",
        token(&app, "reader-bench", "system/Organization.rs").await
    );

    // A few approvals on file for the member (auto-approve code 97110).
    for k in 0..5 {
        let body = pas::request(&format!("seed-{k}"), "97110", 6, "normal");
        let r = post_json(
            &client,
            &format!("{base}/fhir/Claim/$submit"),
            &clinic,
            &body,
        )
        .await;
        assert!(r["entry"][0]["resource"]["preAuthRef"].is_string(), "{r}");
    }

    // CRD order-sign: JWTs signed ahead (the client's cost, not the server's).
    let aud = format!("{PUBLIC}/cds-services/crd-order-sign");
    let now = fhirgate::oauth::now();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
    header.kid = Some("bench".into());
    let warm = 50;
    let calls: Vec<(String, Value)> = (0..N_CRD + warm)
        .map(|i| {
            let claims = json!({"iss": ISS, "sub": "ehr", "aud": aud, "iat": now, "exp": now + 280,
                "jti": format!("crd-{i}")});
            let jwt = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
            (format!("Bearer {jwt}"), order_sign(i))
        })
        .collect();
    let url = format!("{base}/cds-services/crd-order-sign");
    let mut satisfied = 0usize;
    let mut lat = Vec::with_capacity(N_CRD);
    let mut started = Instant::now();
    for (i, (auth, body)) in calls.iter().enumerate() {
        if i == warm {
            lat.clear();
            satisfied = 0;
            started = Instant::now();
        }
        let t = Instant::now();
        let r = post_json(&client, &url, auth, body).await;
        lat.push(t.elapsed());
        let text = r["systemActions"][0].to_string();
        satisfied += usize::from(text.contains("\"satisfied\""));
    }
    let crd = stats(lat, started.elapsed());
    assert!(satisfied > 0, "the lookup answered satisfied");

    // Baseline: a plain FHIR read of a small resource, same server.
    let org = json!({"resourceType": "Organization", "id": "bench-org", "active": true, "name": "Bench Clinic"});
    let res = client
        .put(format!("{base}/fhir/Organization/bench-org"))
        .header("authorization", &admin)
        .header("content-type", "application/fhir+json")
        .body(org.to_string())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let read = {
        let (cl, url, auth) = (
            client.clone(),
            format!("{base}/fhir/Organization/bench-org"),
            reader.clone(),
        );
        let (lat, wall) = drive(N_READ, CONCURRENCY, move |_| {
            let (cl, url, auth) = (cl.clone(), url.clone(), auth.clone());
            async move {
                let r = cl
                    .get(&url)
                    .header("authorization", &auth)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.unwrap();
            }
        })
        .await;
        stats(lat, wall)
    };

    // $submit, auto-adjudicated: even calls auto-approve, odd auto-deny.
    let bodies: Arc<Vec<Value>> = Arc::new(
        (0..N_SUBMIT)
            .map(|i| {
                let code = if i % 2 == 0 { "97110" } else { "0042T" };
                pas::request(&format!("bench-{i}"), code, 6, "normal")
            })
            .collect(),
    );
    let submit = {
        let (cl, url, auth, bodies) = (
            client.clone(),
            format!("{base}/fhir/Claim/$submit"),
            clinic.clone(),
            bodies.clone(),
        );
        let (lat, wall) = drive(N_SUBMIT, CONCURRENCY, move |i| {
            let (cl, url, auth, bodies) = (cl.clone(), url.clone(), auth.clone(), bodies.clone());
            async move {
                let r = post_json(&cl, &url, &auth, &bodies[i]).await;
                let cr = &r["entry"][0]["resource"];
                assert_eq!(cr["resourceType"], "ClaimResponse", "{r}");
                assert_eq!(cr["preAuthRef"].is_string(), i % 2 == 0, "{cr}");
            }
        })
        .await;
        stats(lat, wall)
    };

    println!("\n## Prior authorization (release, 2 worker threads, HTTP on loopback, embedded SQLite store, audit on)\n");
    println!("| measure | calls | req/s | p50 (ms) | p99 (ms) |\n|---|---|---|---|---|");
    println!(
        "| CRD order-sign, sequential, signed RS384 CDS client JWT, 1 order + prefetch ({satisfied} answered satisfied) | {N_CRD} | {:.0} | {:.2} | {:.2} |",
        crd.rps,
        us(crd.p50) / 1e3,
        us(crd.p99) / 1e3
    );
    println!(
        "| baseline: FHIR read Organization/{{id}}, {CONCURRENCY} concurrent clients | {N_READ} | {:.0} | {:.2} | {:.2} |",
        read.rps,
        us(read.p50) / 1e3,
        us(read.p99) / 1e3
    );
    println!(
        "| Claim/$submit auto-adjudicated (50% approve, 50% deny), {CONCURRENCY} concurrent clients | {N_SUBMIT} | {:.0} | {:.2} | {:.2} |",
        submit.rps,
        us(submit.p50) / 1e3,
        us(submit.p99) / 1e3
    );
    println!(
        "\n$submit decisions/s as a ratio to the baseline read: {:.2}x (CRD target: p99 under 20 ms; CRD asks 5 s in 90% of calls)",
        submit.rps / read.rps
    );
}
