//! The `fhirgate` binary: bad configuration stops start-up naming the key;
//! a demo start on a fresh data dir seeds patients and the demo users and
//! prints the URLs; a second start reuses the data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fhirgate"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` in demo mode and returns the banner lines once it is listening.
fn start(data: &std::path::Path, port: u16, extra: &[&str]) -> (Server, Vec<String>) {
    let mut child = bin()
        .args(["serve"])
        .args(extra)
        .env("FHIRGATE_DATA_DIR", data)
        .env("FHIRGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("FHIRGATE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env_remove("FHIRGATE_DEMO")
        .env_remove("FHIRGATE_UPSTREAM_URL")
        .env_remove("FHIRGATE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.contains("try:");
        lines.push(line);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
    }
    (server, lines)
}

#[test]
fn a_bad_config_value_stops_startup_naming_the_key() {
    let out = bin()
        .args(["serve"])
        .env("FHIRGATE_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`listen`") && err.contains("FHIRGATE_LISTEN"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fhirgate.toml");
    std::fs::write(&file, "[limits]\nmax_page_size = -3\n").unwrap();
    let out = bin()
        .args(["--config", file.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limits.max_page_size"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_start_seeds_data_and_users_then_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (server, banner) = start(dir.path(), port, &["--seed-patients", "3"]);
    let text = banner.join("\n");
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}/fhir")),
        "{text}"
    );
    assert!(
        text.contains("dr.lee") && text.contains("pat.jones"),
        "{text}"
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/fhir");
    // FHIR data needs a token; the CapabilityStatement and discovery are public.
    let denied = client.get(format!("{base}/Patient")).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    assert!(denied.headers().get("www-authenticate").is_some());
    let resp = client.get(format!("{base}/metadata")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-request-id").is_some());
    let smart = client
        .get(format!("{base}/.well-known/smart-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(smart.status(), 200);
    drop(server);

    // The population is in the embedded store, Pat Jones among it.
    let jones = text.lines().find(|l| l.contains("pat.jones")).unwrap();
    let patient_ref = jones
        .split('(')
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .split(", ")
        .nth(1)
        .unwrap()
        .to_owned();
    {
        use fhirgate::upstream::Upstream;
        let store = fhirgate::upstream::embedded::EmbeddedStore::open(&dir.path().join("fhir.db"))
            .await
            .unwrap();
        assert_eq!(store.count(Some("Patient")).await.unwrap(), 3);
        let mut read = fhirgate::fhir::FhirRequest::new(fhirgate::fhir::Interaction::Read);
        let (t, id) = patient_ref.split_once('/').unwrap();
        read.resource_type = Some(t.to_owned());
        read.id = Some(id.to_owned());
        let ctx = fhirgate::upstream::RequestContext {
            base: base.clone(),
            request_id: "t".into(),
            default_page_size: 10,
            max_page_size: 10,
        };
        let p = store.execute(&read, &ctx).await.unwrap();
        assert_eq!(p.body.unwrap()["name"][0]["family"], "Jones");
    }

    // The demo users exist with argon2 hashes in the state store.
    let state = fhirgate::state::StateStore::open(None, dir.path())
        .await
        .unwrap();
    assert!(state
        .check_password("dr.lee", "demo")
        .await
        .unwrap()
        .is_some());
    assert!(state
        .check_password("pat.jones", "demo")
        .await
        .unwrap()
        .is_some());
    assert!(state
        .check_password("pat.jones", "wrong")
        .await
        .unwrap()
        .is_none());
    drop(state);

    // A second start on the same data dir does not seed again.
    let (_server, banner) = start(dir.path(), port, &["--seed-patients", "5"]);
    assert!(banner.join("\n").contains("3 patients"), "{banner:?}");
    drop(_server);
    let store = fhirgate::upstream::embedded::EmbeddedStore::open(&dir.path().join("fhir.db"))
        .await
        .unwrap();
    assert_eq!(store.count(Some("Patient")).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_writes_the_deterministic_population_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        bin()
            .args(["seed", "--patients", "2"])
            .env("FHIRGATE_DATA_DIR", dir.path())
            .env_remove("FHIRGATE_UPSTREAM_URL")
            .env_remove("FHIRGATE_DATABASE_URL")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(out.contains("for 2 patients"), "{out}");
    let written: usize = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(written > 100, "{out}");
    // Running it again rewrites the same ids: still exactly two patients.
    assert!(run().status.success());
    let store = fhirgate::upstream::embedded::EmbeddedStore::open(&dir.path().join("fhir.db"))
        .await
        .unwrap();
    assert_eq!(store.count(Some("Patient")).await.unwrap(), 2);
    assert_eq!(store.count(None).await.unwrap() as usize, written);
}

#[test]
fn client_add_registers_and_lists_clients() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        bin()
            .args(args)
            .env("FHIRGATE_DATA_DIR", dir.path())
            .env("FHIRGATE_DEMO", "0")
            .env_remove("FHIRGATE_UPSTREAM_URL")
            .env_remove("FHIRGATE_DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = run(&[
        "client",
        "add",
        "--name",
        "Growth chart",
        "--auth",
        "client_secret_basic",
        "--redirect-uri",
        "https://app.example/cb",
        "--launch-url",
        "https://app.example/launch",
        "--scope",
        "launch openid fhirUser patient/*.rs",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = reg["client_id"].as_str().unwrap();
    assert!(reg["client_secret"].as_str().is_some_and(|s| s.len() >= 32));
    assert_eq!(reg["launch_url"], "https://app.example/launch");
    let list = run(&["client", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains(id)
            && text.contains("Growth chart")
            && text.contains("confidential-symmetric"),
        "{text}"
    );
    // Bad metadata is refused with the RFC 7591 reason.
    let bad = run(&[
        "client",
        "add",
        "--name",
        "x",
        "--grant",
        "client_credentials",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("private_key_jwt"));
}

#[test]
fn keys_rotate_keeps_the_previous_key_published() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = bin()
            .args(args)
            .env("FHIRGATE_DATA_DIR", dir.path())
            .env("FHIRGATE_DEMO", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = run(&["keys", "show"]);
    let kid = before["keys"][0]["kid"].as_str().unwrap().to_owned();
    let after = run(&["keys", "rotate"]);
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert_ne!(kids[0], kid, "the new key comes first");
    assert!(
        kids.contains(&kid.as_str()),
        "the previous key stays published"
    );
}

/// From the demo start, the demo EHR is a trusted CDS client: `fhirgate crd
/// demo-jwt` signs its hook JWT, CRD answers it (and refuses it replayed);
/// the UDAP discovery answers with the demo community; `fhirgate udap
/// client-cert` issues a client certificate from the demo CA.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_start_can_call_crd_and_udap_without_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (server, _) = start(dir.path(), port, &["--seed-patients", "2"]);
    let public = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let services: serde_json::Value = client
        .get(format!("{public}/cds-services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["hook"] == "order-sign")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwt = bin()
        .args(["crd", "demo-jwt", "--service", &id])
        .env("FHIRGATE_DATA_DIR", dir.path())
        .env("FHIRGATE_PUBLIC_URL", &public)
        .env_remove("FHIRGATE_DEMO")
        .output()
        .unwrap();
    assert!(
        jwt.status.success(),
        "{}",
        String::from_utf8_lossy(&jwt.stderr)
    );
    let jwt = String::from_utf8(jwt.stdout).unwrap().trim().to_owned();
    let order = serde_json::json!({"resourceType": "ServiceRequest", "id": "o1", "status": "draft",
        "intent": "order", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "73722"}]}});
    let hook = serde_json::json!({"hook": "order-sign", "hookInstance": "d1f6c8a0-0000-4000-8000-000000000001",
        "context": {"userId": "Practitioner/dr1", "patientId": "p1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "p1"},
            "coverage": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource":
                {"resourceType": "Coverage", "id": "c1", "status": "active",
                 "beneficiary": {"reference": "Patient/p1"}, "payor": [{"reference": "Organization/payer"}]}}]}}});
    let call = || {
        client
            .post(format!("{public}/cds-services/{id}"))
            .bearer_auth(&jwt)
            .json(&hook)
            .send()
    };
    let r = call().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("coverage-information"), "{body}");
    assert_eq!(call().await.unwrap().status(), 401, "a replayed JWT");
    // UDAP discovery from the demo community
    let udap = client
        .get(format!("{public}/fhir/.well-known/udap"))
        .send()
        .await
        .unwrap();
    assert_eq!(udap.status(), 200);
    drop(server);
    let out = dir.path().join("client");
    let cert = bin()
        .args([
            "udap",
            "client-cert",
            "--san",
            "https://app.example.org/x",
            "--out",
        ])
        .arg(&out)
        .env("FHIRGATE_DATA_DIR", dir.path())
        .env("FHIRGATE_PUBLIC_URL", &public)
        .env_remove("FHIRGATE_DEMO")
        .output()
        .unwrap();
    assert!(
        cert.status.success(),
        "{}",
        String::from_utf8_lossy(&cert.stderr)
    );
    let pem = std::fs::read_to_string(out.join("client.pem")).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "leaf then CA");
    assert!(std::fs::read_to_string(out.join("client.key"))
        .unwrap()
        .contains("PRIVATE KEY"));
}

/// A command whose stdout fails (a full disk behind a redirect) says so and
/// exits 1, never panics; one whose reader closes the pipe (`| head`) stops
/// quietly with 141, as a tool stopped by SIGPIPE would; and the export
/// writes every line when nothing fails.
#[test]
fn commands_report_a_failed_or_closed_stdout_without_panicking() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let cmd = |args: &[&str]| {
        let mut c = bin();
        c.args(args)
            .env("FHIRGATE_DATA_DIR", dir.path())
            .env("FHIRGATE_DEMO", "0")
            .env_remove("FHIRGATE_UPSTREAM_URL")
            .env_remove("FHIRGATE_DATABASE_URL")
            .stdin(Stdio::null());
        c
    };
    let appended = cmd(&["ledger", "demo-append", "20000"]).output().unwrap();
    assert!(appended.status.success());
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for args in [
        &[
            "token",
            "issue",
            "--client",
            "x",
            "--any-client",
            "--scope",
            "system/*.rs",
        ][..],
        &["ledger", "verify"],
        &["ledger", "export"],
        &["keys", "show"],
    ] {
        let out = cmd(args).stdout(full()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("No space left on device") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // the reader takes one line and closes the pipe
    let mut child = cmd(&["ledger", "export"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(
        err.is_empty(),
        "a closed pipe is not an error to report: {err}"
    );
    // and in full: all 20,000 lines
    let out = cmd(&["ledger", "export"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 20_000);
}
