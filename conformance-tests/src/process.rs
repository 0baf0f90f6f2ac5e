//! Restartable `fhirgate serve` processes for the durability suites (crash
//! and scale-out): a process on a data dir of the test's choosing, with
//! extra settings (e.g. `FHIRGATE_DATABASE_URL`), that can be killed with
//! SIGKILL (`kill -9`: no shutdown code runs) and started again on the same
//! data. The `fhirgate` command line runs with the same settings, beside it.
//! The log of every start is appended to `<data_dir>/../<name>.log`.

use std::{
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::{fhirgate_bin, TestResult};

/// How long a start may take.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// One `fhirgate serve` process that can be killed and restarted.
pub struct Process {
    bin: PathBuf,
    /// The data dir.
    pub data_dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `FHIRGATE_PUBLIC_URL` (replicas behind one load balancer share it).
    pub public_url: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// Where stdout and stderr go instead of the log (e.g. `/dev/full`).
    output: Option<PathBuf>,
    child: Option<Child>,
}

impl Process {
    /// A process (not started) named `name` on `data_dir` and `port`, with
    /// `env` (`FHIRGATE_*` pairs) on top of a clean environment.
    pub fn new(
        name: &str,
        data_dir: &Path,
        port: u16,
        public_url: &str,
        env: &[(&str, &str)],
    ) -> TestResult<Self> {
        let parent = data_dir.parent().unwrap_or(data_dir);
        Ok(Self {
            bin: fhirgate_bin()?,
            data_dir: data_dir.to_path_buf(),
            port,
            public_url: public_url.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log: parent.join(format!("{name}.log")),
            output: None,
            child: None,
        })
    }

    /// Sends the server's stdout and stderr to `path` instead of the log:
    /// `/dev/full` is a log volume that is full (every write fails, ENOSPC).
    pub fn with_output(mut self, path: &Path) -> Self {
        self.output = Some(path.to_path_buf());
        self
    }

    /// The binary with a clean `FHIRGATE_*` environment plus ours.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("FHIRGATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("FHIRGATE_DATA_DIR", &self.data_dir)
            .env("FHIRGATE_DEMO", "0")
            .env("FHIRGATE_LOG_LEVEL", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Starts `serve` and waits until `GET /fhir/metadata` answers 200.
    pub fn start(&mut self) -> TestResult {
        if self.child.is_some() {
            return Err("already running".into());
        }
        let log = match &self.output {
            Some(path) => OpenOptions::new().write(true).open(path)?,
            None => OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)?,
        };
        let child = self
            .command()
            .arg("serve")
            .env("FHIRGATE_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("FHIRGATE_PUBLIC_URL", &self.public_url)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let url = format!("http://127.0.0.1:{}/fhir/metadata", self.port);
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(format!("fhirgate exited ({status}):\n{}", self.log_tail()).into());
                }
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

    /// `kill -9`: SIGKILL, then reap.
    pub fn kill9(&mut self) -> TestResult {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// `fhirgate <args>` on the same data and database.
    pub fn cli(&self, args: &[&str]) -> TestResult<Output> {
        Ok(self.command().args(args).stdin(Stdio::null()).output()?)
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
