//! Azurite (Microsoft's Azure Storage emulator, `conformance-tests/azurite`,
//! the real Blob REST protocol) and the Medplum upstream with its
//! Azure-Health-Data-Services-style `$export`, as child processes on free
//! loopback ports, plus a Shared Key signed Blob REST client (create a
//! container, list blobs). Without the node packages the tests skip with a
//! message, unless `FHIRGATE_REQUIRE_AZURITE=1` makes that a failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Azurite's development account and published key.
pub const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed on drop.
pub struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the node packages are there; otherwise skip (message) or fail
/// when `FHIRGATE_REQUIRE_AZURITE=1`.
pub fn available() -> bool {
    let bin = root().join("conformance-tests/azurite/node_modules/.bin/azurite-blob");
    let medplum = root().join("conformance-tests/medplum/node_modules/@medplum/fhir-router");
    if bin.exists() && medplum.is_dir() {
        return true;
    }
    let msg = "Azurite (or Medplum) is not installed: run `npm ci` in conformance-tests/azurite \
               and conformance-tests/medplum (scripts/test.sh does)";
    if std::env::var("FHIRGATE_REQUIRE_AZURITE").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Waits for a line containing `needle` on the child's stdout; keeps
/// draining afterwards so the child never blocks.
fn wait_for(child: &mut Child, needle: &'static str) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no `{needle}` from the child process"))
}

/// A running Azurite blob service (in memory).
pub struct Azurite {
    _child: Guard,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Azurite {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child =
            Command::new(root().join("conformance-tests/azurite/node_modules/.bin/azurite-blob"))
                .args([
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &port.to_string(),
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                ])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("run azurite-blob (node)");
        wait_for(&mut child, "successfully listens");
        Self {
            _child: Guard(child),
            _dir: dir,
            port,
        }
    }

    /// The account's blob endpoint (path style).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// A Shared Key signed Blob REST request.
    async fn send(&self, method: reqwest::Method, path_and_query: &str) -> (u16, String) {
        let url = reqwest::Url::parse(&format!("{}/{path_and_query}", self.endpoint())).unwrap();
        let date = httpdate(std::time::SystemTime::now());
        let version = "2021-08-06";
        let mut resource = format!("/{ACCOUNT}{}", url.path());
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.to_lowercase(), v.into_owned()))
            .collect();
        pairs.sort();
        for (k, v) in &pairs {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign = format!(
            "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let r = reqwest::Client::new()
            .request(method, url)
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("Authorization", format!("SharedKey {ACCOUNT}:{sig}"))
            .header("Content-Length", "0")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// Creates a container (Create Container).
    pub async fn create_container(&self, name: &str) {
        let (s, body) = self
            .send(reqwest::Method::PUT, &format!("{name}?restype=container"))
            .await;
        assert!(s == 201 || s == 409, "create container {s}: {body}");
    }

    /// Every blob name in a container (List Blobs); empty if it does not exist.
    pub async fn list(&self, container: &str) -> Vec<String> {
        let (s, body) = self
            .send(
                reqwest::Method::GET,
                &format!("{container}?restype=container&comp=list"),
            )
            .await;
        if s == 404 {
            return Vec::new();
        }
        assert_eq!(s, 200, "list blobs: {body}");
        body.split("<Name>")
            .skip(1)
            .filter_map(|s| s.split_once("</Name>").map(|(n, _)| n.to_owned()))
            .collect()
    }
}

/// RFC 7231 IMF-fixdate.
fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    dt.format(&fmt).unwrap()
}

/// The Medplum upstream with `$export` writing to Azurite.
pub struct Medplum {
    _child: Guard,
    pub port: u16,
}

impl Medplum {
    pub fn start(blob_endpoint: &str, container: &str) -> Self {
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(root().join("conformance-tests/medplum"))
            .env("PORT", "0")
            .env("EXPORT_BLOB_ENDPOINT", blob_endpoint)
            .env("EXPORT_BLOB_CONTAINER", container)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node");
        let line = wait_for(&mut child, "LISTENING ");
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .unwrap()
            .parse()
            .unwrap();
        Self {
            _child: Guard(child),
            port,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/fhir/R4", self.port)
    }

    /// The upstream's export jobs (`_test/export-jobs`): `(id, status)`.
    pub async fn export_jobs(&self) -> Vec<(String, String)> {
        let v: serde_json::Value =
            reqwest::get(format!("http://127.0.0.1:{}/_test/export-jobs", self.port))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                (
                    j["id"].as_str().unwrap().to_owned(),
                    j["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// PUTs a resource directly into the upstream.
    pub async fn put(&self, resource: serde_json::Value) {
        let url = format!(
            "{}/{}/{}",
            self.base(),
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let r = reqwest::Client::new()
            .put(url)
            .header("content-type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

/// Drives an export through the in-process app as `token`: kick-off,
/// polling to the manifest, downloads. `(status URL, manifest, files)` where
/// files are `(type, resource)` pairs, every line checked against its entry.
pub async fn export(
    t: &crate::common::TestApp,
    token: &str,
    path: &str,
) -> (String, serde_json::Value, Vec<(String, serde_json::Value)>) {
    use axum::http::{Method, StatusCode};
    let r = t
        .request_with(
            token,
            Method::GET,
            path,
            &[("prefer", "respond-async")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let status_url = r.header("content-location").unwrap();
    let rel = |u: &str| u.strip_prefix("http://fhirgate.test").unwrap().to_owned();
    let mut manifest = None;
    for _ in 0..1500 {
        let p = t
            .request_with(token, Method::GET, &rel(&status_url), &[], None)
            .await;
        match p.status {
            StatusCode::ACCEPTED => tokio::time::sleep(Duration::from_millis(40)).await,
            StatusCode::OK => {
                manifest = Some(p.json);
                break;
            }
            s => panic!("poll {s}: {}", p.text()),
        }
    }
    let manifest = manifest.expect("the export did not finish");
    let mut out = Vec::new();
    for o in manifest["output"].as_array().unwrap() {
        let url = o["url"].as_str().unwrap();
        assert!(
            url.starts_with("http://fhirgate.test/fhir/bulk/files/"),
            "files are served by fhirgate: {url}"
        );
        let f = t
            .request_with(token, Method::GET, &rel(url), &[], None)
            .await;
        assert_eq!(f.status, StatusCode::OK, "{}", f.text());
        let lines: Vec<&str> = std::str::from_utf8(&f.body)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len() as u64, o["count"].as_u64().unwrap(), "{url}");
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["resourceType"], o["type"]);
            out.push((o["type"].as_str().unwrap().to_owned(), v));
        }
    }
    (rel(&status_url), manifest, out)
}
