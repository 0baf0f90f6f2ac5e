//! The server under test and what the cases share: `fhirgate serve` in
//! demo mode on a fresh data dir (5 seeded patients, written through the
//! store: the embedded one, or the HTTP upstream when the suite fronts
//! Medplum, whose address every answer is then checked for), an operator-issued
//! `system/*.cruds` token for a client that the configuration exempts from
//! consent (this suite is about capability truth, not consent) and that
//! acts for the seeded hospital (Subscriptions belong to an organization),
//! a `system/*.rs` token of the demo provider client (provider exports are
//! for the organization `[payer] provider_clients` maps a client to), the
//! statement, and per resource type the known ids and sample resources the
//! cases derive their requests from.

use std::collections::BTreeMap;

use conformance_tests::{free_port, process::Process, Api, Medplum, Resp};
use serde_json::Value;

use crate::cases::{described, enc};

/// The consent-exempt client the suite's token is issued to.
const CLIENT: &str = "truth-client";
/// The demo provider Backend Services client (`[payer] provider_clients`
/// maps it to [`ORGANIZATION`] in demo mode): provider exports are its.
const PROVIDER_CLIENT: &str = "demo-provider";
/// The seeded organization the token acts for.
pub const ORGANIZATION: &str = "Organization/org-riverside-hospital";
/// Sample resources kept per type.
const SAMPLE: usize = 30;

/// The running server and the shared state of the cases.
pub struct Truth {
    /// Kept so the server lives as long as the suite.
    pub process: Process,
    /// Holds the data dir and config.
    _dir: tempfile::TempDir,
    /// The FHIR client with the suite's token.
    pub api: Api,
    /// The FHIR client of the demo provider organization's client.
    pub provider: Api,
    /// `GET /fhir/metadata`.
    pub statement: Value,
    /// Per type: resources read from the server (seeded first, then the
    /// fixtures the suite created), as stored.
    pub pool: BTreeMap<String, Vec<Value>>,
    /// Per type: the fixtures the suite created (ids).
    pub created: BTreeMap<String, Vec<String>>,
}

impl Truth {
    /// Configures, seeds and starts the server (on `upstream` as its HTTP
    /// upstream, else on the embedded store); reads the statement.
    pub fn start(upstream: Option<&Medplum>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = dir.path().join("fhirgate.toml");
        std::fs::write(
            &config,
            format!("[demo]\nseed_patients = 5\n\n[consent]\nexempt_clients = [\"{CLIENT}\"]\n"),
        )
        .map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| e.to_string())?;
        let public_url = format!("http://127.0.0.1:{port}");
        let config_path = config.display().to_string();
        // the CLI mints the token with the issuer the server will accept
        let upstream_url = upstream.map(Medplum::base_url);
        let mut env = vec![
            ("FHIRGATE_CONFIG", config_path.as_str()),
            ("FHIRGATE_DEMO", "1"),
            ("FHIRGATE_PUBLIC_URL", public_url.as_str()),
        ];
        if let Some(u) = &upstream_url {
            env.push(("FHIRGATE_UPSTREAM_URL", u.as_str()));
        }
        // the facade's rule: the upstream's address never reaches a client
        let forbidden: Vec<String> = upstream
            .map(|m| {
                vec![
                    format!("127.0.0.1:{}", m.port),
                    format!("localhost:{}", m.port),
                    "/fhir/R4".to_owned(),
                ]
            })
            .unwrap_or_default();
        let mut process = Process::new("truth", &dir.path().join("data"), port, &public_url, &env)
            .map_err(|e| e.to_string())?;
        let token = issue_token(&process, CLIENT, "system/*.cruds")?;
        let provider_token = issue_token(&process, PROVIDER_CLIENT, "system/*.rs")?;
        process.start().map_err(|e| e.to_string())?;
        let base = format!("{public_url}/fhir");
        let api = Api::new(&base, forbidden.clone())
            .map_err(|e| e.to_string())?
            .with_bearer(token);
        let provider = Api::new(&base, forbidden)
            .map_err(|e| e.to_string())?
            .with_bearer(provider_token);
        let r = get(&api, "metadata")?;
        if r.status != 200 || r.json["resourceType"] != "CapabilityStatement" {
            return Err(described("GET", "metadata", &r));
        }
        Ok(Self {
            process,
            _dir: dir,
            api,
            provider,
            statement: r.json,
            pool: BTreeMap::new(),
            created: BTreeMap::new(),
        })
    }

    /// `rest[0]`.
    pub fn rest(&self) -> &Value {
        &self.statement["rest"][0]
    }

    /// `rest[0].resource[]`.
    pub fn resources(&self) -> Vec<Value> {
        self.rest()["resource"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `GET path`, a transport error as text.
    pub fn get(&self, path: &str) -> Result<Resp, String> {
        get(&self.api, path)
    }

    /// A request with a JSON body.
    pub fn send(&self, method: &str, path: &str, body: &Value) -> Result<Resp, String> {
        self.send_with(method, path, &[], body)
    }

    /// A request with a JSON body and extra headers.
    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<Resp, String> {
        self.api
            .send_json(method, path, headers, body)
            .map_err(|e| format!("{method} {path}: {e}"))
    }

    /// The first `SAMPLE` resources of `rtype` the server holds.
    pub fn load_sample(&mut self, rtype: &str) -> Result<(), String> {
        let path = format!("{rtype}?_count={SAMPLE}");
        let r = self.get(&path)?;
        if r.status != 200 {
            return Err(described("GET", &path, &r));
        }
        let found: Vec<Value> = entries(&r.json, "match").into_iter().cloned().collect();
        self.pool.insert(rtype.to_owned(), found);
        Ok(())
    }

    /// The id of a known resource of `rtype` (seeded first).
    pub fn known_id(&self, rtype: &str) -> Option<String> {
        self.pool
            .get(rtype)?
            .iter()
            .find_map(|r| r["id"].as_str().map(str::to_owned))
    }

    /// The first pool resource of `rtype`.
    pub fn any(&self, rtype: &str) -> Option<&Value> {
        self.pool.get(rtype)?.first()
    }

    /// The suite's first fixture of `rtype`, as stored.
    pub fn fixture(&self, rtype: &str) -> Option<&Value> {
        let id = self.created.get(rtype)?.first()?;
        self.pool
            .get(rtype)?
            .iter()
            .find(|r| r["id"].as_str() == Some(id.as_str()))
    }

    /// Searches `rtype?query`, following `next` links, and says whether
    /// `rtype/id` is among the matches (an error for a non-200 answer).
    pub fn search_finds(&self, rtype: &str, query: &str, id: &str) -> Result<bool, String> {
        self.find_in(&format!("{rtype}?{query}&_count=200"), rtype, id)
    }

    /// [`Self::search_finds`] at the system level (`[base]?query`).
    pub fn system_search_finds(&self, query: &str, rtype: &str, id: &str) -> Result<bool, String> {
        self.find_in(&format!("{}?{query}&_count=200", self.api.base), rtype, id)
    }

    fn find_in(&self, first: &str, rtype: &str, id: &str) -> Result<bool, String> {
        let mut path = first.to_owned();
        for _ in 0..25 {
            let r = self.get(&path)?;
            if r.status != 200 || r.json["resourceType"] != "Bundle" {
                return Err(described("GET", &path, &r));
            }
            if entries(&r.json, "match")
                .into_iter()
                .any(|e| e["resourceType"] == rtype && e["id"] == id)
            {
                return Ok(true);
            }
            match conformance_tests::check::next_link(&r.json) {
                Some(next) => path = next.to_owned(),
                None => return Ok(false),
            }
        }
        Ok(false)
    }
}

/// `GET` on `api`, a transport error as text.
pub fn get(api: &Api, path: &str) -> Result<Resp, String> {
    api.get(path).map_err(|e| format!("GET {path}: {e}"))
}

/// The resources of a Bundle's entries in search mode `mode` (a missing
/// mode counts as `match`).
pub fn entries<'a>(bundle: &'a Value, mode: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"].as_str().unwrap_or("match") == mode)
        .map(|e| &e["resource"])
        .collect()
}

/// `?_id=` query for one resource.
pub fn by_id(id: &str) -> String {
    format!("_id={}", enc(id))
}

/// `fhirgate token issue` before start-up (same data dir and settings).
fn issue_token(process: &Process, client: &str, scope: &str) -> Result<String, String> {
    let out = process
        .cli(&[
            "token",
            "issue",
            "--client",
            client,
            "--any-client",
            "--scope",
            scope,
            "--organization",
            ORGANIZATION,
        ])
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "fhirgate token issue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .last()
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| "fhirgate token issue printed no token".to_owned())
}
