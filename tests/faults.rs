//! Limits and faults, in process: a fake HTTP upstream on port 0 that can be
//! told to answer, fail (500, 503, garbage), hang, or be gone, and counts the
//! requests it sees; the facade in front of it configured by TOML. Covers the
//! upstream's fault answers, the circuit breaker (open, fast 503, half-open
//! probe, recovery), read-only retries, the per-client rate limit, the
//! request time limit and the graceful shutdown of `serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use common::{TestApp, TestResponse};
use serde_json::json;

/// How the fake upstream answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// 200 with a Patient (201 for a POST).
    Healthy,
    /// 500 with a stack trace naming an internal host.
    Fail500,
    /// 503 every time.
    Unavailable,
    /// 503 on odd-numbered hits, healthy on even ones.
    Flaky,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Healthy after this long.
    Slow(Duration),
}

#[derive(Clone)]
struct Fake {
    hits: Arc<AtomicUsize>,
    mode: Arc<Mutex<Mode>>,
}

impl Fake {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answer(State(fake): State<Fake>, req: Request) -> Response {
    let n = fake.hits.fetch_add(1, Ordering::SeqCst) + 1;
    let mode = *fake.mode.lock().unwrap();
    let batch = req.method() == Method::POST && req.uri().path().trim_end_matches('/') == "/fhir";
    let healthy = |method: &Method| {
        if batch {
            // One read entry's answer in a batch-response.
            let patient =
                json!({"resourceType": "Patient", "id": "p1", "meta": {"versionId": "1"}});
            let bundle = json!({"resourceType": "Bundle", "type": "batch-response", "entry": [
                {"resource": patient, "response": {"status": "200 OK"}}
            ]});
            return (
                StatusCode::OK,
                [("content-type", "application/fhir+json")],
                bundle.to_string(),
            )
                .into_response();
        }
        let status = if method == Method::POST {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        (
            status,
            [("content-type", "application/fhir+json")],
            json!({"resourceType": "Patient", "id": "p1", "meta": {"versionId": "1"}}).to_string(),
        )
            .into_response()
    };
    match mode {
        Mode::Healthy => healthy(req.method()),
        Mode::Fail500 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "java.lang.NullPointerException at db-7.internal",
        )
            .into_response(),
        Mode::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Mode::Flaky if n % 2 == 1 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Mode::Flaky => healthy(req.method()),
        Mode::Garbage => "<html>this is not FHIR</html>".into_response(),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            healthy(req.method())
        }
    }
}

async fn fake_upstream(mode: Mode) -> (Fake, SocketAddr) {
    let fake = Fake {
        hits: Arc::default(),
        mode: Arc::new(Mutex::new(mode)),
    };
    let app = Router::new().fallback(answer).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fake, addr)
}

/// The facade over `addr` with extra `[upstream]` keys (`timeout_secs`
/// 1 unless given) and more TOML.
async fn facade(addr: SocketAddr, upstream: &str, more: &str) -> TestApp {
    let timeout = if upstream.contains("timeout_secs") {
        ""
    } else {
        "timeout_secs = 1\n"
    };
    let toml = format!(
        "[upstream]\nurl = \"http://{addr}/fhir\"\n{timeout}connect_timeout_secs = 1\nretry_backoff_ms = 10\n{upstream}\n{more}"
    );
    if upstream.contains("breaker_failures") {
        TestApp::single_replica(
            "the circuit breaker is each replica's own (in memory), so its counts are per replica",
            &toml,
        )
        .await
    } else {
        TestApp::with_config(&toml).await
    }
}

fn assert_outcome(r: &TestResponse, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome", "{}", r.text());
    assert_eq!(r.json["issue"][0]["code"], code, "{}", r.text());
}

#[tokio::test]
async fn upstream_down_is_502_operation_outcome() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let t = facade(closed, "", "").await;
    let r = t.get("/fhir/Patient/p1").await;
    assert_outcome(&r, 502, "transient");
    assert!(!r.text().contains(&closed.to_string()), "{}", r.text());
}

#[tokio::test]
async fn upstream_slow_past_the_timeout_is_504() {
    let (fake, addr) = fake_upstream(Mode::Slow(Duration::from_secs(3))).await;
    let t = facade(addr, "read_retries = 0", "").await;
    let started = Instant::now();
    let r = t.get("/fhir/Patient/p1").await;
    assert_outcome(&r, 504, "timeout");
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(fake.hits(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn upstream_500_and_invalid_json_are_clear_outcomes() {
    let (fake, addr) = fake_upstream(Mode::Fail500).await;
    let t = facade(addr, "", "").await;
    let r = t.get("/fhir/Patient/p1").await;
    assert_outcome(&r, 502, "transient");
    let text = r.json["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("upstream FHIR server failed"), "{text}");
    assert!(!r.text().contains("NullPointer") && !r.text().contains("db-7"));
    fake.set(Mode::Garbage);
    let r = t.get("/fhir/Patient/p1").await;
    assert_outcome(&r, 502, "transient");
    assert!(!r.text().contains("<html>"), "{}", r.text());
    // both failures are audited like any answer
    assert!(r.header("x-ledger-seq").is_some());
}

#[tokio::test]
async fn breaker_opens_after_n_failures_and_fails_fast_without_the_upstream() {
    let (fake, addr) = fake_upstream(Mode::Fail500).await;
    let t = facade(
        addr,
        "breaker_failures = 3\nbreaker_cooldown_secs = 60\nread_retries = 0",
        "",
    )
    .await;
    for _ in 0..3 {
        assert_outcome(&t.get("/fhir/Patient/p1").await, 502, "transient");
    }
    assert_eq!(fake.hits(), 3);
    fake.set(Mode::Healthy);
    for _ in 0..5 {
        let started = Instant::now();
        let r = t.get("/fhir/Patient/p1").await;
        assert_outcome(&r, 503, "transient");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    assert_eq!(
        fake.hits(),
        3,
        "an open breaker does not touch the upstream"
    );
    // writes fail fast too
    let r = t
        .post("/fhir/Patient", &json!({"resourceType": "Patient"}))
        .await;
    assert_outcome(&r, 503, "transient");
    assert_eq!(fake.hits(), 3);
}

#[tokio::test]
async fn half_open_lets_one_probe_through_and_recovers() {
    let (fake, addr) = fake_upstream(Mode::Unavailable).await;
    let t = facade(
        addr,
        "breaker_failures = 2\nbreaker_cooldown_secs = 1\nread_retries = 0",
        "",
    )
    .await;
    for _ in 0..2 {
        assert_outcome(&t.get("/fhir/Patient/p1").await, 502, "transient");
    }
    assert_outcome(&t.get("/fhir/Patient/p1").await, 503, "transient");
    assert_eq!(fake.hits(), 2);
    // after the cool-down one probe goes through; it fails: open again
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_outcome(&t.get("/fhir/Patient/p1").await, 502, "transient");
    assert_eq!(fake.hits(), 3);
    assert_outcome(&t.get("/fhir/Patient/p1").await, 503, "transient");
    assert_eq!(fake.hits(), 3);
    // the upstream is back: the next probe succeeds and closes the breaker
    fake.set(Mode::Healthy);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let r = t.get("/fhir/Patient/p1").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json["id"], "p1");
    }
    assert_eq!(fake.hits(), 6);
}

#[tokio::test]
async fn a_read_or_a_batch_of_reads_is_retried_once_but_a_write_never() {
    let (fake, addr) = fake_upstream(Mode::Flaky).await;
    let t = facade(addr, "breaker_failures = 100", "").await;
    // 503 then 200: the read succeeds on its second try
    let r = t.get("/fhir/Patient/p1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(fake.hits(), 2);
    // a search is a read too
    let r = t.get("/fhir/Patient?name=x").await;
    assert_eq!(fake.hits(), 4, "{}", r.text());
    // a create hitting the 503 is answered 502 and never sent again
    let r = t
        .post("/fhir/Patient", &json!({"resourceType": "Patient"}))
        .await;
    assert_outcome(&r, 502, "transient");
    assert_eq!(fake.hits(), 5, "a create is never retried");
    // (the 6th hit is healthy, so the batch below meets a 503 first)
    assert_eq!(t.get("/fhir/Patient/p1").await.status, StatusCode::OK);
    assert_eq!(fake.hits(), 6);
    // a batch of reads is a read: 503, then its answer
    let reads = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/p1"}}
    ]});
    let r = t.post("/fhir", &reads).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json["entry"][0]["response"]["status"],
        "200 OK",
        "{}",
        r.text()
    );
    assert_eq!(fake.hits(), 8, "a batch of reads is tried again");
    // a batch with a write in it is not: its 503 is the answer
    let mixed = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient"}}
    ]});
    assert_outcome(&t.post("/fhir", &mixed).await, 502, "transient");
    assert_eq!(fake.hits(), 9, "a batch with a write is never retried");
    // a read that keeps failing is tried twice, no more
    fake.set(Mode::Unavailable);
    assert_outcome(&t.get("/fhir/Patient/p1").await, 502, "transient");
    assert_eq!(fake.hits(), 11);
    // a 500 is not transient: not retried
    fake.set(Mode::Fail500);
    assert_outcome(&t.get("/fhir/Patient/p1").await, 502, "transient");
    assert_eq!(fake.hits(), 12);
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after_for_one_client_only() {
    let t = TestApp::single_replica(
        "the rate limiter's token buckets are each replica's own (in memory)",
        "[limits]\nrate_per_second = 0.05\nrate_burst = 2\n",
    )
    .await;
    let a = t
        .token_as("client-a", "system/*.rs", None, None, None, None)
        .await;
    let b = t
        .token_as("client-b", "system/*.rs", None, None, None, None)
        .await;
    for _ in 0..2 {
        let r = t
            .request_with(&a, Method::GET, "/fhir/Patient", &[], None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = t
        .request_with(&a, Method::GET, "/fhir/Patient", &[], None)
        .await;
    assert_outcome(&r, 429, "throttled");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    assert!(r.header("x-ledger-seq").is_some(), "refusals are audited");
    // another client has its own bucket
    for _ in 0..2 {
        let r = t
            .request_with(&b, Method::GET, "/fhir/Patient", &[], None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    // the public CapabilityStatement is not limited
    let r = t
        .request_raw(Method::GET, "/fhir/metadata", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_request_past_the_time_limit_is_503_timeout_and_audited() {
    let (_fake, addr) = fake_upstream(Mode::Slow(Duration::from_secs(3))).await;
    let t = facade(
        addr,
        "timeout_secs = 10\nread_retries = 0",
        "[limits]\nrequest_timeout_secs = 1\n",
    )
    .await;
    let started = Instant::now();
    let r = t.get("/fhir/Patient/p1").await;
    assert_outcome(&r, 503, "timeout");
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(r.header("x-ledger-seq").is_some());
}

#[tokio::test]
async fn shutdown_drains_the_request_in_flight_then_closes_the_stores() {
    let (fake, addr) = fake_upstream(Mode::Slow(Duration::from_millis(600))).await;
    let t = facade(addr, "timeout_secs = 5", "").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let facade_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fhirgate::shutdown::serve(
        t.app.clone(),
        None,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let url = format!("http://{facade_addr}/fhir/Patient/p1");
    let in_flight = tokio::spawn(client.get(&url).bearer_auth(&t.token).send());
    // the request reaches the (slow) upstream, then the stop signal comes
    while fake.hits() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer.headers().contains_key("x-ledger-seq"));
    let done = tokio::time::timeout(Duration::from_secs(10), server).await;
    done.expect("serve returns after draining")
        .unwrap()
        .unwrap();
    // no longer accepting; the ledger tail is checkpointed; the store is closed
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
    assert!(t.app.state.ping().await.is_err());
}

/// The binary, black-box: SIGTERM after a FHIR request; `serve` drains,
/// checkpoints the ledger tail, closes the stores and exits 0.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_serve_with_exit_status_zero() {
    use std::{
        io::{BufRead, BufReader, Read},
        process::{Command, Stdio},
    };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fhirgate"))
        .arg("serve")
        .env("FHIRGATE_DATA_DIR", dir.path())
        .env("FHIRGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("FHIRGATE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("FHIRGATE_DEMO", "0")
        .env("FHIRGATE_LOG_FORMAT", "json")
        .env("FHIRGATE_LOG_LEVEL", "info")
        .env_remove("FHIRGATE_UPSTREAM_URL")
        .env_remove("FHIRGATE_DATABASE_URL")
        .env_remove("FHIRGATE_CONFIG")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // stdout is read to its end (a closed pipe would fail the banner's prints)
    let (running, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("fhirgate is running") {
                let _ = running.send(());
            }
        }
    });
    started
        .recv_timeout(Duration::from_secs(120))
        .expect("serve starts");
    // one audited request, so the ledger has an entry to checkpoint
    let r = reqwest::get(format!("http://127.0.0.1:{port}/fhir/metadata"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop within 30 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let logs = logs.join().unwrap();
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(logs.contains("final ledger checkpoint"), "{logs}");
    assert!(logs.contains("fhirgate stopped"), "{logs}");
}
