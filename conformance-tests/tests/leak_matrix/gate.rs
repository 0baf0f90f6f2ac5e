//! One `fhirgate serve` for the leak matrix: a fresh data dir, a config file
//! that makes the `loader` client exempt from consent (it seeds the data),
//! polls the upstream for Consents every second and maps the `provider`
//! Backend Services client to the clinician's organization, and `fhirgate token
//! issue` run with exactly the server's settings (callers with a chosen
//! client, user, role and purpose of use, without a sign-in flow).

use std::{
    fs::File,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use conformance_tests::{fhirgate_bin, free_port, oauth::BackendClient, Api, TestResult};

use crate::seed::ORG;

/// How long a start may take.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The exempt client that loads the seed data.
pub const LOADER: &str = "loader";
/// A provider's Backend Services client, mapped to [`ORG`] in
/// `[payer] provider_clients`.
pub const PROVIDER: &str = "provider";

/// A running fhirgate, killed (and reaped) on drop.
pub struct Gate {
    child: Child,
    dir: tempfile::TempDir,
    bin: PathBuf,
    env: Vec<(String, String)>,
    /// Strings no answer may contain (the upstream's address).
    forbidden: Vec<String>,
    /// `{public}/fhir`.
    pub base: String,
}

impl Gate {
    /// Starts `fhirgate serve` on `upstream` (None: the embedded store).
    pub fn start(upstream: Option<&str>, forbidden: Vec<String>) -> TestResult<Self> {
        let bin = fhirgate_bin()?;
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let public_url = format!("http://127.0.0.1:{port}");
        let config = dir.path().join("fhirgate.toml");
        std::fs::write(
            &config,
            format!(
                "[consent]\nexempt_clients = [\"{LOADER}\"]\npoll_seconds = 1\n\
                 [payer]\nprovider_clients = {{ \"{PROVIDER}\" = \"{ORG}\" }}\n"
            ),
        )?;
        let mut env = vec![
            ("FHIRGATE_CONFIG".to_owned(), config.display().to_string()),
            (
                "FHIRGATE_DATA_DIR".to_owned(),
                dir.path().join("data").display().to_string(),
            ),
            ("FHIRGATE_PUBLIC_URL".to_owned(), public_url.clone()),
            ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
            ("FHIRGATE_LOG_LEVEL".to_owned(), "error".to_owned()),
        ];
        if let Some(u) = upstream {
            env.push(("FHIRGATE_UPSTREAM_URL".to_owned(), u.to_owned()));
        }
        let log = File::create(dir.path().join("fhirgate.log"))?;
        let mut cmd = clean(&bin, &env);
        let child = cmd
            .arg("serve")
            .env("FHIRGATE_LISTEN", format!("127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut gate = Self {
            child,
            dir,
            bin,
            env,
            forbidden,
            base: format!("{public_url}/fhir"),
        };
        gate.wait_ready()?;
        Ok(gate)
    }

    fn wait_ready(&mut self) -> TestResult {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let url = format!("{}/metadata", self.base);
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("fhirgate exited ({status}):\n{}", self.log_tail()).into());
            }
            if http
                .get(&url)
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("fhirgate did not become ready:\n{}", self.log_tail()).into())
    }

    /// `fhirgate token issue --any-client <args>` with the server's settings.
    pub fn token(&self, args: &[&str]) -> TestResult<String> {
        let out = clean(&self.bin, &self.env)
            .args(["token", "issue", "--any-client"])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "fhirgate token issue {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// A Backend Services client registered with `fhirgate client add`
    /// against this server's state store, with `scope`.
    pub fn backend_client(&self, scope: &str) -> TestResult<BackendClient> {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        BackendClient::register_with(&self.bin, &self.dir.path().join("data"), scope, &env)
    }

    /// The server's public URL (the FHIR base without `/fhir`).
    pub fn public_url(&self) -> &str {
        self.base.trim_end_matches("/fhir")
    }

    /// A leak-checking client sending `token`.
    pub fn api(&self, token: &str) -> TestResult<Api> {
        Ok(Api::new(&self.base, self.forbidden.clone())?.with_bearer(token.to_owned()))
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("fhirgate.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with a clean `FHIRGATE_*` environment plus `env`.
fn clean(bin: &PathBuf, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FHIRGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}
