//! `[crd]`: configuration of Da Vinci CRD over CDS Hooks: the CDS clients
//! trusted to call the services and the DTR app to launch. The payer rules
//! are PAS's (`[prior_auth] rules_file`), shared with `Claim/$submit`.
//!
//! ```toml
//! [crd]
//! dtr_launch_url = "https://dtr.example.org/launch"
//! jwks_cache_seconds = 300
//! fhir_servers = ["https://ehr.example.org/fhir"]   # besides fhirgate's own
//! clients = [{ iss = "https://ehr.example.org", jku = ["https://ehr.example.org/jwks.json"] }]
//!
//! # services whose coverage depends on who performs them, where or when
//! # (CRD 2.0.1 info-needed codes): without it in the order, the answer is
//! # `covered = conditional` with `info-needed`
//! [[crd.info_needed]]
//! system = "http://www.ama-assn.org/go/cpt"
//! code = "72148"
//! needs = ["performer", "location"]
//! ```

use serde::Deserialize;
use serde_json::Value;

/// The `[crd]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrdConfig {
    /// CDS clients allowed to call the services (CDS Hooks 2.0 "Trusting
    /// CDS Clients"): `iss` and `jku` allow-listed per client.
    #[serde(default)]
    pub clients: Vec<CdsClientConfig>,
    /// The SMART app launched (card link of type `smart`) to gather
    /// documentation (DTR); unset: `{public_url}/dtr/launch`.
    #[serde(default)]
    pub dtr_launch_url: Option<String>,
    /// FHIR bases besides fhirgate's own that a hook's `fhirServer` may
    /// name (prefetch is read from it with the client's token); any other
    /// `fhirServer` is refused with 400.
    #[serde(default)]
    pub fhir_servers: Vec<String>,
    /// Ordered services whose coverage depends on information an order
    /// may lack (performer, location, timeframe): answered `conditional`
    /// with `info-needed` until the order carries it.
    #[serde(default)]
    pub info_needed: Vec<InfoRule>,
    /// How long a fetched client JWKS is reused, seconds.
    #[serde(default = "default_jwks_ttl")]
    pub jwks_cache_seconds: u64,
    /// Furthest a client JWT's `exp` may be ahead of now, seconds (CDS
    /// Hooks recommends five minutes).
    #[serde(default = "default_max_lifetime")]
    pub max_jwt_lifetime_seconds: i64,
}

impl Default for CrdConfig {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            dtr_launch_url: None,
            fhir_servers: Vec::new(),
            info_needed: Vec::new(),
            jwks_cache_seconds: default_jwks_ttl(),
            max_jwt_lifetime_seconds: default_max_lifetime(),
        }
    }
}

/// One trusted CDS client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdsClientConfig {
    /// The JWT `iss` the client signs with.
    pub iss: String,
    /// JWKS URLs the client's JWT header `jku` may name; the first is also
    /// used when the JWT has no `jku`.
    #[serde(default)]
    pub jku: Vec<String>,
    /// An inline JWKS (`{"keys": [...]}`), used when the JWT has no `jku`.
    #[serde(default)]
    pub jwks: Option<Value>,
}

/// One service whose coverage depends on information beyond its code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoRule {
    /// Coding system of the ordered service.
    pub system: String,
    /// Its code.
    pub code: String,
    /// What the payer needs to know to decide coverage.
    pub needs: Vec<Info>,
}

/// CRD 2.0.1 `info-needed` codes (ValueSet `informationNeeded`, code
/// system `http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp`) a rule
/// can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Info {
    /// Who performs the service (performer, or at least its type and
    /// affiliation).
    Performer,
    /// Where (clinic, site or organization).
    Location,
    /// When, more precisely than the order's period.
    Timeframe,
}

impl Info {
    /// The `info-needed` code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Performer => "performer",
            Self::Location => "location",
            Self::Timeframe => "timeframe",
        }
    }
}

fn default_jwks_ttl() -> u64 {
    300
}

fn default_max_lifetime() -> i64 {
    300
}
