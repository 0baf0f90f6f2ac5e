//! The audit ledger's durability promises (issue 5), black-box against the
//! real binary. Every FHIR response carries `X-Ledger-Seq`, the ledger seq of
//! the request's last entry, and `X-Request-Id`; the entry at that seq must
//! carry that request id. Entries are read back with `fhirgate ledger
//! export` and the chain is checked with `fhirgate ledger verify`.
//!
//! - Crash: concurrent reads while the server is killed with SIGKILL
//!   (`kill -9`) at random moments 3 to 5 times and restarted on the same
//!   data: every response a client received has its entry, and the chain
//!   verifies (the response is released only after its entry is durable).
//! - Scale-out: two `fhirgate` processes on one PostgreSQL (a fresh database
//!   per run), requests round-robin to both: one chain without gaps that
//!   verifies, holding every response's entry. Runs with
//!   `FHIRGATE_TEST_DATABASE_URL` (the test command sets it); without it the
//!   test is skipped unless `FHIRGATE_REQUIRE_POSTGRES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use conformance_tests::{
    fhirgate_bin, free_port,
    ledger::{export, receipt, verify},
    oauth::BackendClient,
    pg::{postgres_url, FreshDb},
    process::Process,
    TestResult,
};
use rand::Rng;
use serde_json::{json, Value};

/// One answer a client received whole.
#[derive(Debug, Clone)]
struct Got {
    /// Which replica answered.
    replica: usize,
    /// Which run of the server (0, then +1 per restart).
    epoch: usize,
    status: u16,
    seq: Option<u64>,
    request_id: Option<String>,
}

fn http() -> TestResult<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Creates `n` Patients; returns their ids.
fn create_patients(base: &str, token: &str, n: usize) -> TestResult<Vec<String>> {
    let http = http()?;
    let mut ids = Vec::new();
    for i in 0..n {
        let r = http
            .post(format!("{base}/Patient"))
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .body(
                json!({"resourceType": "Patient", "name": [{"family": format!("Crash{i}")}]})
                    .to_string(),
            )
            .send()?;
        let status = r.status().as_u16();
        let body: Value = r.json()?;
        if status != 201 {
            return Err(format!("create Patient: {status} {body}").into());
        }
        ids.push(body["id"].as_str().ok_or("no id")?.to_owned());
    }
    Ok(ids)
}

/// Concurrent readers: `workers` threads, each sending `GET Patient/{id}`
/// round-robin over `bases` until `stop`; every answer received is kept.
struct Load {
    stop: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<Got>>>,
    errors: Arc<AtomicU64>,
    epoch: Arc<AtomicUsize>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(bases: &[String], token: &str, ids: &[String], workers: usize) -> TestResult<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let epoch = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for w in 0..workers {
            let (stop, got, errors, epoch) =
                (stop.clone(), got.clone(), errors.clone(), epoch.clone());
            let (bases, ids, token) = (bases.to_vec(), ids.to_vec(), token.to_owned());
            let http = http()?;
            threads.push(thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let replica = i % bases.len();
                    let url = format!("{}/Patient/{}", bases[replica], ids[i % ids.len()]);
                    let started_in = epoch.load(Ordering::SeqCst);
                    match http.get(&url).bearer_auth(&token).send() {
                        // Only a response read whole counts as received.
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let (seq, request_id) = receipt(&r);
                            if r.bytes().is_ok() {
                                got.lock().unwrap().push(Got {
                                    replica,
                                    epoch: started_in,
                                    status,
                                    seq,
                                    request_id,
                                });
                            } else {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            thread::sleep(Duration::from_millis(20));
                        }
                    }
                    i += 1;
                }
            }));
        }
        Ok(Self {
            stop,
            got,
            errors,
            epoch,
            threads,
        })
    }

    fn finish(self) -> (Vec<Got>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let got = self.got.lock().unwrap().clone();
        (got, self.errors.load(Ordering::Relaxed))
    }
}

/// Every received FHIR answer has a receipt, and the ledger holds each
/// receipt's entry with the response's request id; the chain has no gap.
fn check_receipts(got: &[Got], rows: &[(u64, Option<String>)]) -> TestResult<usize> {
    for (i, (seq, _)) in rows.iter().enumerate() {
        if *seq != i as u64 {
            return Err(format!("gap in the export: position {i} holds seq {seq}").into());
        }
    }
    let by_seq: HashMap<u64, &Option<String>> = rows.iter().map(|(s, r)| (*s, r)).collect();
    let mut checked = 0;
    for g in got {
        let (Some(seq), Some(rid)) = (g.seq, g.request_id.as_ref()) else {
            return Err(format!("an answer without X-Ledger-Seq / X-Request-Id: {g:?}").into());
        };
        match by_seq.get(&seq) {
            Some(Some(stored)) if stored == rid => checked += 1,
            Some(other) => {
                return Err(format!(
                    "seq {seq} holds request id {other:?}, the response said {rid}"
                )
                .into())
            }
            None => {
                return Err(format!(
                "response {rid} (status {}) got seq {seq}, which is not in the ledger ({} entries)",
                g.status,
                rows.len()
            )
                .into())
            }
        }
    }
    let mut seqs: Vec<u64> = got.iter().filter_map(|g| g.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    if seqs.len() != got.len() {
        return Err("two responses carried the same X-Ledger-Seq".into());
    }
    Ok(checked)
}

#[test]
fn every_response_received_survives_kill_9() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let backend = BackendClient::register(&fhirgate_bin()?, &data, "system/*.cruds")?;
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Process::new("fhirgate", &data, port, &url, &[])?;
    server.start()?;
    let token = backend.token(&url, "system/*.cruds")?;
    let base = format!("{url}/fhir");
    let ids = create_patients(&base, &token, 3)?;

    let load = Load::start(&[base], &token, &ids, 4)?;
    let mut rng = rand::thread_rng();
    let kills = rng.gen_range(3..=5);
    for _ in 0..kills {
        thread::sleep(Duration::from_millis(rng.gen_range(300..1500)));
        server.kill9()?;
        load.epoch.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
        server.start()?;
    }
    thread::sleep(Duration::from_millis(500));
    let (got, errors) = load.finish();

    let verified = verify(&server)?;
    let rows = export(&server)?;
    let checked = check_receipts(&got, &rows)
        .map_err(|e| format!("{e}\n--- log ---\n{}", server.log_tail()))?;
    for epoch in 0..=kills {
        let n = got.iter().filter(|g| g.epoch == epoch).count();
        assert!(n > 0, "no response received in run {epoch} of the server");
    }
    assert!(got.iter().all(|g| g.status == 200), "every read succeeded");
    println!(
        "crash test: {kills} kill -9, {} responses received and found in the ledger ({checked} checked), \
         {errors} requests failed while the server was down, {} ledger entries; {}",
        got.len(),
        rows.len(),
        verified.trim()
    );
    Ok(())
}

#[test]
fn two_replicas_on_one_postgres_write_one_gap_free_chain() -> TestResult {
    let Some(admin) = postgres_url()? else {
        return Ok(());
    };
    let db = FreshDb::create(&admin, "scale")?;
    let env = [("FHIRGATE_DATABASE_URL", db.url.as_str())];
    let dir = tempfile::tempdir()?;
    // One data dir (keys, embedded FHIR store) as on a shared volume; the
    // facade state and the ledger are in PostgreSQL.
    let data = dir.path().join("data");
    let backend = BackendClient::register_with(&fhirgate_bin()?, &data, "system/*.cruds", &env)?;
    let (pa, pb) = (free_port()?, free_port()?);
    // Both answer to one public URL, as behind a load balancer.
    let public = format!("http://127.0.0.1:{pa}");
    let mut a = Process::new("replica-a", &data, pa, &public, &env)?;
    let mut b = Process::new("replica-b", &data, pb, &public, &env)?;
    a.start()?;
    b.start()?;
    let token = backend.token(&public, "system/*.cruds")?;
    let bases = [
        format!("http://127.0.0.1:{pa}/fhir"),
        format!("http://127.0.0.1:{pb}/fhir"),
    ];
    let ids = create_patients(&bases[0], &token, 3)?;

    let load = Load::start(&bases, &token, &ids, 6)?;
    thread::sleep(Duration::from_secs(4));
    let (got, errors) = load.finish();

    let verified = verify(&a)?;
    let rows = export(&b)?;
    let checked = check_receipts(&got, &rows).map_err(|e| {
        format!(
            "{e}\n--- replica A ---\n{}\n--- replica B ---\n{}",
            a.log_tail(),
            b.log_tail()
        )
    })?;
    assert_eq!(errors, 0, "no request failed");
    assert!(got.iter().all(|g| g.status == 200));
    let per: Vec<usize> = (0..2)
        .map(|r| got.iter().filter(|g| g.replica == r).count())
        .collect();
    assert!(per.iter().all(|n| *n > 20), "both replicas served: {per:?}");
    println!(
        "scale-out test: replicas answered {per:?} reads, {checked} receipts found, \
         one chain of {} entries without gaps; {}",
        rows.len(),
        verified.trim()
    );
    a.kill9()?;
    b.kill9()?;
    Ok(())
}
