//! Harness for fhirgate's black-box conformance suites: start the real
//! `fhirgate` binary (and, for the HTTP upstream, a real independent FHIR
//! engine: Medplum's `FhirRouter` + `MemoryRepository` in
//! `conformance-tests/medplum/`) on free loopback ports, and talk to them
//! with a plain HTTP client that checks every answer for leaks of the
//! upstream's address. Child processes are killed when their guard drops.
//!
//! Suites live in `tests/` (one file per kit, like Inferno's test kits);
//! [`client`] is the leak-checking HTTP client, [`check`] the assertions
//! they share, [`process`] the restartable servers of the durability suite,
//! [`pg`] a fresh PostgreSQL database per test.
//! Nothing here skips: a missing binary or missing Node packages is an error
//! that says how to fix it.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub mod browser;
pub mod cases;
pub mod check;
pub mod client;
pub mod ledger;
pub mod oauth;
pub mod pg;
pub mod process;

pub use client::{Api, Resp};

/// Errors of the harness and the suites (boxed so tests can use `?`).
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long a server may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A child process killed (and reaped) on drop.
pub struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The fhirgate binary: `FHIRGATE_BIN`, else `{workspace}/target/debug/fhirgate`.
pub fn fhirgate_bin() -> TestResult<PathBuf> {
    let bin = match std::env::var_os("FHIRGATE_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target/debug/fhirgate"),
    };
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "fhirgate binary not found at {}: build it first with `cargo build --bin fhirgate` \
             (or point FHIRGATE_BIN at one)",
            bin.display()
        )
        .into())
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> TestResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The Medplum FHIR R4 server (`node conformance-tests/medplum/server.mjs`).
pub struct Medplum {
    _child: ChildGuard,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Medplum {
    /// Starts it on a free port and waits for `LISTENING <port>`.
    pub fn start() -> TestResult<Self> {
        let dir = workspace_root().join("conformance-tests/medplum");
        if !dir.join("node_modules/@medplum/fhir-router").is_dir() {
            return Err(format!(
                "Medplum packages are not installed: run `npm ci` in {} (the test command does)",
                dir.display()
            )
            .into());
        }
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run `node` (is Node.js 20.19+ installed?): {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout from node")?;
        let guard = ChildGuard(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining stdout after the port line so the child never blocks.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(p) = line.strip_prefix("LISTENING ") {
                    let _ = tx.send(p.trim().parse::<u16>().ok());
                }
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(port)) => Ok(Self {
                _child: guard,
                port,
            }),
            _ => Err("Medplum server did not print `LISTENING <port>` in time".into()),
        }
    }

    /// Its FHIR base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/fhir/R4", self.port)
    }
}

/// A running `fhirgate serve` on a fresh data dir, demo seeding off.
pub struct Fhirgate {
    child: ChildGuard,
    /// Holds the data dir and the log; removed on drop (after the child).
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`.
    pub public_url: String,
    /// A Backend Services client registered before start-up (`system/*.cruds`).
    pub backend: oauth::BackendClient,
}

impl Fhirgate {
    /// Starts `fhirgate serve`; `upstream` is `FHIRGATE_UPSTREAM_URL` (None: embedded store).
    pub fn start(upstream: Option<&str>) -> TestResult<Self> {
        let bin = fhirgate_bin()?;
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let public_url = format!("http://127.0.0.1:{port}");
        let log = File::create(dir.path().join("fhirgate.log"))?;
        let backend =
            oauth::BackendClient::register(&bin, &dir.path().join("data"), "system/*.cruds")?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve").current_dir(dir.path());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("FHIRGATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("FHIRGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("FHIRGATE_PUBLIC_URL", &public_url)
            .env("FHIRGATE_DATA_DIR", dir.path().join("data"))
            .env("FHIRGATE_DEMO", "0");
        if let Some(u) = upstream {
            cmd.env("FHIRGATE_UPSTREAM_URL", u);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut me = Self {
            child: ChildGuard(child),
            dir,
            public_url,
            backend,
        };
        me.wait_ready()?;
        Ok(me)
    }

    fn wait_ready(&mut self) -> TestResult {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let url = format!("{}/metadata", self.fhir_base());
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.0.try_wait()? {
                return Err(format!(
                    "fhirgate exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                )
                .into());
            }
            if let Ok(r) = http.get(&url).send() {
                if r.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "fhirgate did not answer GET /fhir/metadata with 200 in time:\n{}",
            self.log_tail()
        )
        .into())
    }

    /// A `system/*.cruds` access token from the registered Backend Services client.
    pub fn system_token(&self) -> TestResult<String> {
        self.backend.token(&self.public_url, "system/*.cruds")
    }

    /// `{public}/fhir`.
    pub fn fhir_base(&self) -> String {
        format!("{}/fhir", self.public_url)
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.dir.path().join("fhirgate.log")) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}
