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
    let bundle: serde_json::Value = client
        .get(format!("{base}/Patient?_summary=count"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bundle["total"], 3, "{bundle}");
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
    let p = client
        .get(format!("{base}/{patient_ref}"))
        .send()
        .await
        .unwrap();
    assert_eq!(p.status(), 200, "{patient_ref}");
    let p: serde_json::Value = p.json().await.unwrap();
    assert_eq!(p["name"][0]["family"], "Jones");
    let resp = client.get(format!("{base}/metadata")).send().await.unwrap();
    assert!(resp.headers().get("x-request-id").is_some());
    drop(server);

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
    let bundle: serde_json::Value = client
        .get(format!("{base}/Patient?_summary=count"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bundle["total"], 3);
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
