//! One `fhirgate serve` of the UDAP suites: a fresh temporary directory with
//! the server's certificate and key and a config file naming one trust
//! community ([`COMMUNITY`], anchor = the community root), run by
//! [`conformance_tests::process::Process`] (clean `FHIRGATE_*` environment,
//! readiness on `GET /fhir/metadata`, killed on drop); demo mode, seeded
//! patients and the community's `require_b2b` are the suite's
//! [`Options`]. The `fhirgate` command line runs beside it with exactly the
//! server's settings ([`Gate::cli`]).

use conformance_tests::{process::Process, TestResult};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};

use crate::pki::Leaf;

/// The trust community the servers belong to.
pub const COMMUNITY: &str = "urn:test:community";

/// How a suite's server differs.
#[derive(Default, Clone, Copy)]
pub struct Options {
    /// The community's `require_b2b` (token requests must carry `hl7-b2b`).
    pub require_b2b: bool,
    /// Demo mode (`FHIRGATE_DEMO`; users `pat.jones`, `dr.lee`).
    pub demo: bool,
    /// Patients seeded into the fresh store (`demo.seed_patients`), like
    /// `serve --seed-patients N`.
    pub seed_patients: Option<u32>,
}

/// A fhirgate member of the test community, killed on drop.
pub struct Gate {
    /// For messages ("H", "I", …).
    pub name: &'static str,
    /// Declared before `_dir`: the process is killed before its files go.
    process: Process,
    _dir: tempfile::TempDir,
    /// A client without redirects.
    #[allow(dead_code)]
    pub http: Client,
}

impl Gate {
    /// A server (not started) on `port` with the certificate `server`, the
    /// community anchored at `root_pem`.
    pub fn new(
        name: &'static str,
        port: u16,
        server: &Leaf,
        root_pem: &str,
        options: Options,
    ) -> TestResult<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let write = |file: &str, text: &str| -> TestResult<String> {
            let path = d.join(file);
            std::fs::write(&path, text)?;
            Ok(path.display().to_string())
        };
        let server_pem = write("server.pem", &server.pem)?;
        let server_key = write("server.key", &server.key_pem)?;
        let root = write("root.pem", root_pem)?;
        let seed = options
            .seed_patients
            .map_or_else(String::new, |n| format!("\n[demo]\nseed_patients = {n}\n"));
        let config = write(
            "fhirgate.toml",
            &format!(
                "[udap]\ncertificate = {server_pem:?}\nkey = {server_key:?}\n\n\
                 [[udap.communities]]\nname = \"{COMMUNITY}\"\nanchors = [{root:?}]\n\
                 require_b2b = {}\n{seed}",
                options.require_b2b
            ),
        )?;
        let public_url = format!("http://127.0.0.1:{port}");
        let listen = format!("127.0.0.1:{port}");
        let env = [
            ("FHIRGATE_CONFIG", config.as_str()),
            ("FHIRGATE_PUBLIC_URL", public_url.as_str()),
            ("FHIRGATE_LISTEN", listen.as_str()),
            ("FHIRGATE_DEMO", if options.demo { "1" } else { "0" }),
        ];
        // the log: <dir>/fhirgate.log
        let process = Process::new("fhirgate", &d.join("data"), port, &public_url, &env)?;
        Ok(Self {
            name,
            process,
            _dir: dir,
            http: http_client(),
        })
    }

    /// Starts `serve` and waits until `GET /fhir/metadata` answers 200.
    pub fn start(&mut self) -> TestResult {
        self.process
            .start()
            .map_err(|e| format!("fhirgate {}: {e}", self.name).into())
    }

    /// Runs a CLI command against this server's data dir and configuration;
    /// its standard output.
    #[allow(dead_code)]
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .process
            .cli(args)
            .map_err(|e| format!("cannot run fhirgate {args:?}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "fhirgate {args:?} failed ({}): {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn public_url(&self) -> &str {
        &self.process.public_url
    }

    pub fn base(&self) -> String {
        format!("{}/fhir", self.public_url())
    }

    pub fn register_url(&self) -> String {
        format!("{}/auth/register", self.public_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}/auth/token", self.public_url())
    }

    #[allow(dead_code)]
    pub fn authorize_url(&self) -> String {
        format!("{}/auth/authorize", self.public_url())
    }

    #[allow(dead_code)]
    pub fn callback_url(&self) -> String {
        format!("{}/auth/udap/callback", self.public_url())
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// An HTTP client that does not follow redirects.
pub fn http_client() -> Client {
    Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// `(status, JSON body)` of a request (a body that is no JSON: as a string).
pub fn send_json(req: RequestBuilder) -> Result<(u16, Value), String> {
    let resp = req.send().map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().map_err(|e| format!("body unreadable: {e}"))?;
    Ok((status, serde_json::from_str(&text).unwrap_or(json!(text))))
}
