//! Operational faults (issue 10), black-box against the real binary:
//!
//! - PostgreSQL restarted mid-load (scale-out mode): fhirgate runs on its
//!   own throwaway PostgreSQL cluster (initdb into a temp dir, a free port),
//!   readers and writers keep going while `pg_ctl restart -m fast` runs.
//!   Requests during the outage fail with 503 OperationOutcome (never a 200
//!   without its ledger entry, never a hang past the request time limit),
//!   requests after it succeed without restarting fhirgate, and the ledger
//!   verifies as one chain holding every received receipt. Skipped with a
//!   message when the PostgreSQL binaries are missing, unless
//!   `FHIRGATE_REQUIRE_POSTGRES=1`.
//! - No lost bulk job: a `$export` is kicked off, the server is killed with
//!   SIGKILL while the job runs and restarted on the same data; the job
//!   completes with exact counts.
//! - A full log volume: the server's stdout and stderr are `/dev/full`
//!   (every write fails with ENOSPC). It starts, answers every request, and
//!   audits each; the lines it could not write are counted at `/metrics`.
//!
//! "No acknowledged request without its audit entry under kill -9" is
//! `ledger_durability.rs` (`every_response_received_survives_kill_9`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use conformance_tests::{
    fhirgate_bin, free_port,
    ledger::{export, receipt, verify},
    oauth::BackendClient,
    process::Process,
    TestResult,
};
use serde_json::{json, Value};

/// The request time limit the server runs with here (`[limits]`).
const REQUEST_TIMEOUT_SECS: u64 = 10;

fn config_file(dir: &Path, extra: &str) -> TestResult<PathBuf> {
    let path = dir.join("fhirgate.toml");
    std::fs::write(
        &path,
        format!(
            "[limits]\nrequest_timeout_secs = {REQUEST_TIMEOUT_SECS}\nrate_per_second = 100000.0\nrate_burst = 100000\n{extra}"
        ),
    )?;
    Ok(path)
}

fn http(timeout: Duration) -> TestResult<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()?)
}

fn header(r: &reqwest::blocking::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------
// A throwaway PostgreSQL cluster.

/// A private PostgreSQL cluster in a temp dir on a free port, stopped
/// (immediate) and removed on drop.
struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    let program = bin.join(tool);
    // Root (effective uid 0, read from /proc) runs the tools as `postgres`.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// The newest `/usr/lib/postgresql/*/bin` with `initdb`, or `None`.
    fn binaries() -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").is_file())
            .collect();
        dirs.sort_by_key(|d| {
            d.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        dirs.pop()
    }

    /// Starts a cluster, or `None` (skipped, and says so) without the binaries.
    fn start() -> TestResult<Option<Self>> {
        let Some(bin) = Self::binaries() else {
            if std::env::var("FHIRGATE_REQUIRE_POSTGRES").is_ok() {
                return Err(
                    "FHIRGATE_REQUIRE_POSTGRES is set but no PostgreSQL binaries \
                            (/usr/lib/postgresql/*/bin/initdb) were found"
                        .into(),
                );
            }
            eprintln!("skipped: PostgreSQL binaries (/usr/lib/postgresql/*/bin) not installed");
            return Ok(None);
        };
        let dir = tempfile::Builder::new().prefix("fhirgate-pg-").tempdir()?;
        // The server runs as `postgres` when we are root; it must own the dir.
        let _ = Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status();
        let port = free_port()?;
        let pg = Self { bin, dir, port };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        )?;
        pg.ctl(&["start"])?;
        Ok(Some(pg))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) -> TestResult {
        let out = as_postgres(&self.bin, tool)
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} {args:?} failed: {}{}\n--- log ---\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
            )
            .into())
        }
    }

    /// `pg_ctl <action> -w` with the cluster's options (and `extra`).
    fn ctl(&self, action: &[&str]) -> TestResult {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let data = self.data().display().to_string();
        let log = self.dir.path().join("log").display().to_string();
        let mut args = vec!["-D", &data, "-o", &opts, "-l", &log, "-w"];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------
// Load with phases.

/// One answer a client received whole (or a transport error).
#[derive(Debug, Clone)]
struct Got {
    /// 0 before the restart, 1 while `pg_ctl restart` ran, 2 after it.
    phase: usize,
    write: bool,
    /// `None`: no response (transport error or client timeout).
    status: Option<u16>,
    seq: Option<u64>,
    request_id: Option<String>,
    resource_type: Option<String>,
    elapsed: Duration,
    /// When it was sent, from the test's start.
    at: Duration,
}

struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    got: Arc<Mutex<Vec<Got>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    /// `readers` threads reading `ids`, `writers` threads creating Patients.
    fn start(
        base: &str,
        token: &str,
        ids: &[String],
        readers: usize,
        writers: usize,
        t0: Instant,
    ) -> TestResult<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for w in 0..readers + writers {
            let write = w >= readers;
            let (stop, phase, got) = (stop.clone(), phase.clone(), got.clone());
            let (base, ids, token) = (base.to_owned(), ids.to_vec(), token.to_owned());
            // Longer than the server's limit: a hang shows as a slow answer
            // or a client timeout, never as a stuck test.
            let http = http(Duration::from_secs(REQUEST_TIMEOUT_SECS * 3))?;
            threads.push(thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let p = phase.load(Ordering::SeqCst);
                    let at = t0.elapsed();
                    let started = Instant::now();
                    let req = if write {
                        http.post(format!("{base}/Patient"))
                            .header("content-type", "application/fhir+json")
                            .body(
                                json!({"resourceType": "Patient",
                                       "name": [{"family": format!("Restart{w}x{i}")}]})
                                .to_string(),
                            )
                    } else {
                        http.get(format!("{base}/Patient/{}", ids[i % ids.len()]))
                    };
                    let mut g = Got {
                        phase: p,
                        write,
                        status: None,
                        seq: None,
                        request_id: None,
                        resource_type: None,
                        elapsed: Duration::ZERO,
                        at,
                    };
                    if let Ok(r) = req.bearer_auth(&token).send() {
                        g.status = Some(r.status().as_u16());
                        (g.seq, g.request_id) = receipt(&r);
                        match r.json::<Value>() {
                            Ok(v) => {
                                g.resource_type = v["resourceType"].as_str().map(str::to_owned)
                            }
                            Err(_) => g.status = None,
                        }
                    }
                    g.elapsed = started.elapsed();
                    let failed = g.status != Some(200) && g.status != Some(201);
                    got.lock().unwrap().push(g);
                    if failed {
                        thread::sleep(Duration::from_millis(25));
                    }
                    i += 1;
                }
            }));
        }
        Ok(Self {
            stop,
            phase,
            got,
            threads,
        })
    }

    fn finish(self) -> Vec<Got> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let got = self.got.lock().unwrap().clone();
        got
    }
}

/// A success (read or create).
fn ok(g: &Got) -> bool {
    matches!(g.status, Some(200 | 201))
}

#[test]
fn postgres_restart_mid_load_fails_closed_and_the_pool_reconnects() -> TestResult {
    let Some(pg) = Postgres::start()? else {
        return Ok(());
    };
    let url = pg.url();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = config_file(dir.path(), "")?;
    let config = config.display().to_string();
    let env = [
        ("FHIRGATE_DATABASE_URL", url.as_str()),
        ("FHIRGATE_CONFIG", config.as_str()),
    ];
    let backend = BackendClient::register_with(&fhirgate_bin()?, &data, "system/*.cruds", &env)?;
    let port = free_port()?;
    let public = format!("http://127.0.0.1:{port}");
    let mut server = Process::new("fhirgate", &data, port, &public, &env)?;
    server.start()?;
    let token = backend.token(&public, "system/*.cruds")?;
    let base = format!("{public}/fhir");
    let client = http(Duration::from_secs(30))?;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = client
            .post(format!("{base}/Patient"))
            .bearer_auth(&token)
            .header("content-type", "application/fhir+json")
            .body(
                json!({"resourceType": "Patient", "name": [{"family": format!("Pg{i}")}]})
                    .to_string(),
            )
            .send()?;
        assert_eq!(r.status().as_u16(), 201);
        ids.push(r.json::<Value>()?["id"].as_str().unwrap().to_owned());
    }

    let t0 = Instant::now();
    let load = Load::start(&base, &token, &ids, 3, 2, t0)?;
    thread::sleep(Duration::from_secs(2));
    load.phase.store(1, Ordering::SeqCst);
    let restart_began = t0.elapsed();
    pg.ctl(&["-m", "fast", "restart"])?;
    let restart_took = t0.elapsed() - restart_began;
    // Then a longer outage: down for 3 s, so requests meet a refused
    // connection, not only a broken one.
    thread::sleep(Duration::from_secs(3));
    pg.ctl(&["-m", "fast", "stop"])?;
    thread::sleep(Duration::from_secs(3));
    pg.ctl(&["start"])?;
    load.phase.store(2, Ordering::SeqCst);
    let restarted_at = t0.elapsed();
    // Let the pool find its way back, then keep the load going a while.
    thread::sleep(Duration::from_secs(6));
    let got = load.finish();

    let log = || server.log_tail();
    // Nothing hung past the request time limit; every answer was an answer.
    let limit = Duration::from_secs(REQUEST_TIMEOUT_SECS + 2);
    for g in &got {
        assert!(
            g.elapsed <= limit,
            "a request took {:?} (limit {limit:?}): {g:?}\n{}",
            g.elapsed,
            log()
        );
        assert!(g.status.is_some(), "no answer: {g:?}\n{}", log());
    }
    // Success only with a receipt; failure only as 503 OperationOutcome.
    for g in &got {
        match g.status {
            Some(200) | Some(201) => assert!(
                g.seq.is_some() && g.request_id.is_some(),
                "a success without its receipt: {g:?}"
            ),
            Some(503) => assert_eq!(
                g.resource_type.as_deref(),
                Some("OperationOutcome"),
                "{g:?}"
            ),
            _ => panic!("neither success nor 503: {g:?}\n{}", log()),
        }
    }
    // Requests answered before the restart began all succeeded (one sent
    // then may still be in flight when PostgreSQL goes down).
    let done_before: Vec<&Got> = got
        .iter()
        .filter(|g| g.at + g.elapsed < restart_began)
        .collect();
    let before = done_before.len();
    assert!(before > 10, "load ran before the restart: {before}");
    assert!(
        done_before.iter().all(|g| ok(g)),
        "every request answered before the restart succeeded"
    );
    let during = got.iter().filter(|g| g.phase == 1).count();
    // The pool reconnects without a server restart: within a few seconds of
    // PostgreSQL being back, every request (reads and writes) succeeds.
    let settle = restarted_at + Duration::from_secs(3);
    let late: Vec<&Got> = got.iter().filter(|g| g.at >= settle).collect();
    assert!(
        late.len() > 20 && late.iter().any(|g| g.write) && late.iter().any(|g| !g.write),
        "load kept going after the restart: {} requests",
        late.len()
    );
    let late_failed: Vec<&&Got> = late.iter().filter(|g| !ok(g)).collect();
    assert!(
        late_failed.is_empty(),
        "requests still failing 3 s after the restart: {} of {}, first {:?}\n{}",
        late_failed.len(),
        late.len(),
        late_failed.first(),
        log()
    );
    let failed: usize = got.iter().filter(|g| !ok(g)).count();
    let recovered_after = got
        .iter()
        .filter(|g| !ok(g))
        .map(|g| (g.at + g.elapsed).saturating_sub(restarted_at))
        .max()
        .unwrap_or_default();
    let slowest = got.iter().map(|g| g.elapsed).max().unwrap_or_default();

    // One chain that verifies and holds every receipt with its request id.
    let verified = verify(&server)?;
    let rows = export(&server)?;
    for (i, (seq, _)) in rows.iter().enumerate() {
        assert_eq!(*seq, i as u64, "gap in the ledger");
    }
    let by_seq: HashMap<u64, &Option<String>> = rows.iter().map(|(s, r)| (*s, r)).collect();
    for g in got.iter().filter(|g| ok(g)) {
        let seq = g.seq.unwrap();
        assert_eq!(
            by_seq.get(&seq).copied().cloned().flatten(),
            g.request_id,
            "receipt {seq} of a {:?} answer is not in the ledger",
            g.status
        );
    }
    println!(
        "postgres restart: pg_ctl restart took {restart_took:?}, then 3 s down; {} requests \
         ({before} before, {during} during), {failed} failed with 503, the last one answered \
         {recovered_after:?} after PostgreSQL was back, slowest answer {slowest:?}; \
         {} ledger entries; {}",
        got.len(),
        rows.len(),
        verified.trim()
    );
    server.kill9()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// No lost bulk job.

const ASYNC: &str = "respond-async";

#[test]
fn a_bulk_export_killed_mid_job_completes_after_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = config_file(
        dir.path(),
        "default_page_size = 5\nmax_page_size = 5\n[bulk]\nmin_poll_seconds = 0\n\
         retry_after_seconds = 1\nscan_millis = 50\nlease_seconds = 2\nfile_max_resources = 40\n",
    )?;
    let config = config.display().to_string();
    let env = [("FHIRGATE_CONFIG", config.as_str())];
    let backend = BackendClient::register_with(&fhirgate_bin()?, &data, "system/*.cruds", &env)?;
    let port = free_port()?;
    let public = format!("http://127.0.0.1:{port}");
    let mut server = Process::new("fhirgate", &data, port, &public, &env)?;
    server.start()?;
    let token = backend.token(&public, "system/*.cruds")?;
    let base = format!("{public}/fhir");
    let client = http(Duration::from_secs(60))?;

    // A population of our own (one transaction), counted per type.
    let (patients, per_patient) = (150, 5);
    let mut entries = Vec::new();
    for p in 0..patients {
        let pid = format!("urn:uuid:00000000-0000-4000-8000-{p:012}");
        entries.push(json!({
            "fullUrl": pid,
            "resource": {"resourceType": "Patient", "name": [{"family": format!("Bulk{p}")}]},
            "request": {"method": "POST", "url": "Patient"}
        }));
        for o in 0..per_patient {
            entries.push(json!({
                "resource": {"resourceType": "Observation", "status": "final",
                    "code": {"text": format!("obs {o}")}, "subject": {"reference": pid}},
                "request": {"method": "POST", "url": "Observation"}
            }));
        }
    }
    let r = client
        .post(&base)
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(
            json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}).to_string(),
        )
        .send()?;
    assert_eq!(r.status().as_u16(), 200, "{}", r.text()?);
    let count = |t: &str| -> TestResult<u64> {
        let r = client
            .get(format!("{base}/{t}?_summary=count"))
            .bearer_auth(&token)
            .send()?;
        let v: Value = r.json()?;
        v["total"]
            .as_u64()
            .ok_or_else(|| format!("no total: {v}").into())
    };
    let expected: HashMap<String, u64> = [
        ("Patient".to_owned(), count("Patient")?),
        ("Observation".to_owned(), count("Observation")?),
    ]
    .into();

    let r = client
        .get(format!("{base}/$export?_type=Patient,Observation"))
        .bearer_auth(&token)
        .header("accept", "application/fhir+json")
        .header("prefer", ASYNC)
        .send()?;
    assert_eq!(r.status().as_u16(), 202, "{}", r.text()?);
    let status_url = header(&r, "content-location").ok_or("no Content-Location")?;
    let status_url = if status_url.starts_with("http") {
        status_url
    } else {
        format!("{public}{status_url}")
    };
    // Kill it while the job runs: as soon as the status shows it started
    // (not "queued"), and still says 202 right before.
    let started = Instant::now();
    let progress = loop {
        let r = client.get(&status_url).bearer_auth(&token).send()?;
        let before = r.status().as_u16();
        let progress = header(&r, "x-progress");
        assert_eq!(
            before, 202,
            "the job finished before the kill; make it bigger: {progress:?}"
        );
        if progress.as_deref().is_some_and(|p| p != "queued") {
            break progress;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("the job did not start\n{}", server.log_tail()).into());
        }
        thread::sleep(Duration::from_millis(10));
    };
    server.kill9()?;
    let killed = Instant::now();
    server.start()?;

    // It completes after the restart.
    let manifest = loop {
        let r = client.get(&status_url).bearer_auth(&token).send()?;
        match r.status().as_u16() {
            200 => break r.json::<Value>()?,
            202 | 429 => {}
            s => return Err(format!("status {s}: {}\n{}", r.text()?, server.log_tail()).into()),
        }
        if killed.elapsed() > Duration::from_secs(120) {
            return Err(format!("the job did not complete\n{}", server.log_tail()).into());
        }
        thread::sleep(Duration::from_millis(250));
    };
    let took = killed.elapsed();
    // Exact counts: every resource once, none twice.
    let mut got: HashMap<String, u64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for f in manifest["output"].as_array().ok_or("no output")? {
        let t = f["type"].as_str().ok_or("no type")?.to_owned();
        let url = f["url"].as_str().ok_or("no url")?;
        let text = client
            .get(url)
            .bearer_auth(&token)
            .header("accept", "application/fhir+ndjson")
            .send()?
            .text()?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)?;
            let id = format!(
                "{}/{}",
                v["resourceType"].as_str().unwrap_or(""),
                v["id"].as_str().unwrap_or("")
            );
            assert!(seen.insert(id.clone()), "{id} exported twice");
            *got.entry(t.clone()).or_default() += 1;
        }
    }
    assert_eq!(got, expected, "manifest: {manifest}");
    assert!(
        manifest["error"].as_array().is_none_or(Vec::is_empty),
        "{manifest}"
    );
    let verified = verify(&server)?;
    println!(
        "bulk kill -9: job at {progress:?} when killed, complete {took:?} after the kill with \
         {expected:?}; {}",
        verified.trim()
    );
    server.kill9()?;
    Ok(())
}

#[test]
fn a_full_log_volume_neither_stops_the_server_nor_its_audit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = config_file(dir.path(), "")?;
    let config = config.display().to_string();
    // Every request writes an access line at `info`.
    let env = [
        ("FHIRGATE_CONFIG", config.as_str()),
        ("FHIRGATE_LOG_LEVEL", "info"),
    ];
    let backend = BackendClient::register_with(&fhirgate_bin()?, &data, "system/*.cruds", &env)?;
    let port = free_port()?;
    let public = format!("http://127.0.0.1:{port}");
    let mut server =
        Process::new("fhirgate", &data, port, &public, &env)?.with_output(Path::new("/dev/full"));
    server.start()?;
    let token = backend.token(&public, "system/*.cruds")?;
    let base = format!("{public}/fhir");
    let client = http(Duration::from_secs(30))?;
    let r = client
        .post(format!("{base}/Patient"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "name": [{"family": "Fullog"}]}).to_string())
        .send()?;
    assert_eq!(r.status().as_u16(), 201, "{}", r.text()?);
    let id = r.json::<Value>()?["id"].as_str().ok_or("no id")?.to_owned();

    // Reads and searches from four threads: every one answered and audited.
    let (threads, each) = (4, 150);
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    thread::scope(|s| {
        for t in 0..threads {
            let (client, token, base, id) = (&client, &token, &base, &id);
            let (answered, failures) = (answered.clone(), failures.clone());
            s.spawn(move || {
                for i in 0..each {
                    let url = if (t + i) % 2 == 0 {
                        format!("{base}/Patient/{id}")
                    } else {
                        format!("{base}/Patient?family=Fullog")
                    };
                    let got = client.get(&url).bearer_auth(token).send();
                    let outcome = match got {
                        Ok(r) if r.status().as_u16() == 200 && receipt(&r).0.is_some() => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Ok(r) => format!("{url}: {} {:?}", r.status(), receipt(&r)),
                        Err(e) => format!("{url}: {e}"),
                    };
                    if let Ok(mut f) = failures.lock() {
                        f.push(outcome);
                    }
                }
            });
        }
    });
    let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    assert!(
        failures.is_empty(),
        "{} of {} failed, e.g. {:?}",
        failures.len(),
        threads * each,
        &failures[..failures.len().min(5)]
    );
    assert_eq!(answered.load(Ordering::Relaxed), threads * each);

    // The lines it could not write are counted, not lost silently.
    let metrics = client.get(format!("{public}/metrics")).send()?.text()?;
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fhirgate_log_lines_dropped_total "))
        .ok_or("no fhirgate_log_lines_dropped_total")?
        .trim()
        .parse()?;
    assert!(
        dropped >= (threads * each) as f64,
        "{dropped} lines counted as dropped for {} requests",
        threads * each
    );
    let verified = verify(&server)?;
    println!(
        "full log volume: {} requests answered and audited, {dropped} log lines dropped; {}",
        threads * each,
        verified.trim()
    );
    server.kill9()?;
    Ok(())
}
