//! The one typed configuration of a fhirgate process.
//!
//! Read once at start-up from `fhirgate.toml` (optional) with the `FHIRGATE_*`
//! environment overrides of the architecture's interface contract applied on
//! top. Any bad value stops start-up with a message naming the key (and the
//! environment variable it came from, when it came from one). There are no
//! default secrets: every credential must be configured explicitly.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use url::Url;

/// Environment overrides: (variable, dotted config key).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("FHIRGATE_LISTEN", "listen"),
    ("FHIRGATE_PUBLIC_URL", "public_url"),
    ("FHIRGATE_DATA_DIR", "data_dir"),
    ("FHIRGATE_UPSTREAM_URL", "upstream.url"),
    ("FHIRGATE_UPSTREAM_AUTH", "upstream.auth"),
    ("FHIRGATE_UPSTREAM_BEARER_TOKEN", "upstream.bearer_token"),
    (
        "FHIRGATE_UPSTREAM_ENTRA_TOKEN_URL",
        "upstream.entra.token_url",
    ),
    (
        "FHIRGATE_UPSTREAM_ENTRA_CLIENT_ID",
        "upstream.entra.client_id",
    ),
    (
        "FHIRGATE_UPSTREAM_ENTRA_CLIENT_SECRET",
        "upstream.entra.client_secret",
    ),
    ("FHIRGATE_UPSTREAM_ENTRA_SCOPE", "upstream.entra.scope"),
    ("FHIRGATE_BULK_STORAGE_URL", "bulk.storage_url"),
    ("FHIRGATE_DATABASE_URL", "database_url"),
    ("FHIRGATE_DEMO", "demo.enabled"),
    ("FHIRGATE_LOG_FORMAT", "log.format"),
    ("FHIRGATE_LOG_LEVEL", "log.level"),
    ("FHIRGATE_FEDERATION_ISSUER", "federation.issuer"),
    ("FHIRGATE_FEDERATION_CLIENT_ID", "federation.client_id"),
    (
        "FHIRGATE_FEDERATION_CLIENT_SECRET",
        "federation.client_secret",
    ),
    (
        "FHIRGATE_ANCHOR_CLIENT_SECRET",
        "audit.anchor.client_secret",
    ),
    ("FHIRGATE_MFA_TWILIO_AUTH_TOKEN", "mfa.twilio.auth_token"),
    ("FHIRGATE_CONSENT_BASE_POLICY", "consent.base_policy"),
    ("FHIRGATE_CONSENT_POLL_SECONDS", "consent.poll_seconds"),
    ("FHIRGATE_TLS_CERTIFICATE", "tls.certificate"),
    ("FHIRGATE_TLS_KEY", "tls.key"),
    ("FHIRGATE_TRUSTED_PROXIES", "http.trusted_proxies"),
    ("FHIRGATE_ALLOW_PLAIN_HTTP", "http.allow_plain_http"),
    ("FHIRGATE_OTLP_ENDPOINT", "observability.otlp_endpoint"),
];

/// The whole configuration. Every field has a documented default except secrets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Socket the HTTP server binds (`FHIRGATE_LISTEN`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Base URL clients use to reach this server; the FHIR base is `{public_url}/fhir`
    /// and every URL fhirgate emits is built on it (`FHIRGATE_PUBLIC_URL`).
    #[serde(default = "default_public_url")]
    pub public_url: Url,
    /// Directory holding the embedded FHIR store, the SQLite state store and keys
    /// (`FHIRGATE_DATA_DIR`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Facade state store; unset means SQLite `state.db` in the data dir
    /// (`FHIRGATE_DATABASE_URL`, e.g. `postgres://user@host/db`).
    #[serde(default)]
    pub database_url: Option<String>,
    /// Where FHIR requests go: the embedded store or an HTTP FHIR server.
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// Demo mode: seeded population and demo users on a fresh data dir.
    #[serde(default)]
    pub demo: DemoConfig,
    /// Request size and paging limits.
    #[serde(default)]
    pub limits: Limits,
    /// Log output.
    #[serde(default)]
    pub log: LogConfig,
    /// Federated sign-in with an external OpenID Provider; unset means the
    /// sign-in page offers the local user directory only.
    #[serde(default)]
    pub federation: Option<FederationConfig>,
    /// Consent enforcement: base policy, jurisdiction packs, roles, polling.
    #[serde(default)]
    pub consent: ConsentConfig,
    /// The audit trail: checkpoint policy, group-commit batching, anchoring.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Bulk Data `$export`: job limits, polling, file splitting, storage.
    #[serde(default)]
    pub bulk: crate::bulk::config::BulkConfig,
    /// Payer APIs (CMS-0057-F Provider Access and Payer-to-Payer): member
    /// match limits, provider organizations of Backend Services clients.
    #[serde(default)]
    pub payer: crate::payer::config::PayerConfig,
    /// Prior authorization (Da Vinci PAS): the payer rules file.
    #[serde(default)]
    pub prior_auth: crate::prior_auth::config::PriorAuthConfig,
    /// Da Vinci CRD over CDS Hooks: trusted CDS clients, payer rules, DTR launch.
    #[serde(default)]
    pub crd: crate::crd::config::CrdConfig,
    /// PAS subscription notifications: per-POST timeout and retries.
    #[serde(default)]
    pub subscriptions: crate::subscriptions::config::SubscriptionsConfig,
    /// UDAP (HL7 FAST Security): the server certificate and trust communities.
    #[serde(default)]
    pub udap: crate::udap::config::UdapConfig,
    /// Profile validation of writes (`$validate` is always offered).
    #[serde(default)]
    pub validation: crate::validation::config::ValidationConfig,
    /// `/metrics` access and readiness-check timeout.
    #[serde(default)]
    pub observability: crate::observability::ObservabilityConfig,
    /// TLS terminated by fhirgate itself (`src/tls/`); unset: plain HTTP,
    /// which `serve` allows on a loopback address only unless `[http]` says
    /// a TLS-terminating proxy is in front.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Plain HTTP behind a TLS-terminating proxy or ingress.
    #[serde(default)]
    pub http: HttpConfig,
    /// Identity assurance policy (`src/assurance/`).
    #[serde(default)]
    pub assurance: crate::assurance::config::AssuranceConfig,
    /// Step-up authentication for sensitive UI operations (`src/mfa/`).
    #[serde(default)]
    pub mfa: crate::mfa::config::MfaConfig,
    /// De-identified export for secondary use (`src/deid/`).
    #[serde(default)]
    pub deid: crate::deid::config::DeidConfig,
}

/// `[tls]`: the certificate fhirgate serves (`src/tls/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file: the server certificate, then its chain
    /// (`FHIRGATE_TLS_CERTIFICATE`).
    pub certificate: PathBuf,
    /// PEM file: the certificate's private key, PKCS#8, PKCS#1 or SEC1
    /// (`FHIRGATE_TLS_KEY`).
    pub key: PathBuf,
    /// Lowest TLS version accepted: `"1.3"` (default) or `"1.2"`.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Seconds between looks at the two files; a changed, valid pair is
    /// served to new connections without a restart (0: never reload).
    #[serde(default = "default_tls_reload")]
    pub reload_seconds: u64,
}

/// `tls.min_version`.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[default]
    #[serde(rename = "1.3")]
    Tls13,
}

/// `[http]`: who may speak plain HTTP to fhirgate when it does not
/// terminate TLS itself (the policy is in `tls::transport`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Addresses of the TLS-terminating proxies in front (CIDRs such as
    /// `10.0.0.0/8`, or single addresses) (`FHIRGATE_TRUSTED_PROXIES`,
    /// comma-separated). Plain HTTP is then answered only to them and to
    /// loopback, and their `X-Forwarded-Proto: https` turns on HSTS.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Serve plain HTTP on a non-loopback address to anyone
    /// (`FHIRGATE_ALLOW_PLAIN_HTTP`); off by default.
    #[serde(default)]
    pub allow_plain_http: bool,
}

impl HttpConfig {
    /// The parsed `trusted_proxies` (entries that do not parse are refused
    /// at load, so none is dropped here).
    pub fn proxies(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_net(p))
            .collect()
    }
}

/// A CIDR (`10.0.0.0/8`) or a single address (`10.1.2.3`, a /32 or /128).
fn parse_net(raw: &str) -> Option<ipnet::IpNet> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| raw.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

fn default_tls_reload() -> u64 {
    60
}

/// Federated sign-in (OpenID Connect authorization code flow with PKCE,
/// e.g. Microsoft Entra ID) for the UI's sign-in page.
///
/// User mapping: the provider says who the person is, the local user
/// directory says what they may do. The first of `username_claims` present
/// in the verified id_token must equal the user name of an existing local
/// account, whose role and fhirUser then apply; a person with no local
/// account is refused. Provider-asserted roles are never trusted; the
/// organization may come from the provider (`organization_claim`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The provider's issuer URL exactly as it appears in its discovery
    /// document and id_tokens (e.g. `https://login.microsoftonline.com/{tenant}/v2.0`);
    /// kept as written, since `iss` is compared as a string (a trailing `/` matters).
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret at the provider (no default).
    pub client_secret: String,
    /// Text of the sign-in button, e.g. `Sign in with Microsoft Entra ID`.
    #[serde(default = "default_federation_button")]
    pub display_name: String,
    /// Scopes requested (`openid` is always sent).
    #[serde(default = "default_federation_scopes")]
    pub scopes: Vec<String>,
    /// id_token claims tried in order to find the local user name (`sub`,
    /// `preferred_username`, `email`, or any other string claim such as
    /// Entra's `oid` or `upn`). Choose claims the provider controls.
    #[serde(default = "default_username_claims")]
    pub username_claims: Vec<String>,
    /// id_token claim naming the organization the person acts for
    /// (`Organization/<id>`, or a bare id read as `Organization/<id>`), e.g.
    /// a custom claim of the provider. When set and present at sign-in, it
    /// replaces the local account's organization (a consent decision input
    /// carried in the tokens issued to them). Unset: the directory's.
    #[serde(default)]
    pub organization_claim: Option<String>,
}

/// The FHIR server behind the facade.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL of an HTTP FHIR R4 server; unset means the embedded store
    /// (`FHIRGATE_UPSTREAM_URL`). Fixed here, never chosen by a client.
    #[serde(default)]
    pub url: Option<Url>,
    /// How fhirgate authenticates to the upstream (`FHIRGATE_UPSTREAM_AUTH`).
    #[serde(default)]
    pub auth: UpstreamAuthKind,
    /// Static bearer token for `auth = "bearer"` (`FHIRGATE_UPSTREAM_BEARER_TOKEN`).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Microsoft Entra ID client-credentials settings for `auth = "entra"`.
    #[serde(default)]
    pub entra: Option<EntraConfig>,
    /// Whole-request timeout for upstream calls, seconds.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_secs: u64,
    /// TCP connect timeout for upstream calls, seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Idle pooled connections kept per upstream host.
    #[serde(default = "default_pool_idle")]
    pub pool_max_idle_per_host: usize,
    /// Consecutive upstream failures (connect errors, timeouts, 5xx) that
    /// open the circuit breaker; 0 turns the breaker off.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker answers 503 before letting one probe through, seconds.
    #[serde(default = "default_breaker_cooldown")]
    pub breaker_cooldown_secs: u64,
    /// Extra tries of an idempotent read (read, vread, search, history,
    /// metadata) after a transient failure; writes and operations never retry.
    #[serde(default = "default_read_retries")]
    pub read_retries: u32,
    /// Wait before the first retry, milliseconds (doubled for each next one).
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff_ms: u64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            url: None,
            auth: UpstreamAuthKind::None,
            bearer_token: None,
            entra: None,
            timeout_secs: default_upstream_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            pool_max_idle_per_host: default_pool_idle(),
            breaker_failures: default_breaker_failures(),
            breaker_cooldown_secs: default_breaker_cooldown(),
            read_retries: default_read_retries(),
            retry_backoff_ms: default_retry_backoff(),
        }
    }
}

/// Authentication mode towards the upstream FHIR server.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamAuthKind {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer {bearer_token}`.
    Bearer,
    /// Microsoft Entra ID client credentials (Azure Health Data Services).
    Entra,
}

/// Microsoft Entra ID client credentials for Azure Health Data Services.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraConfig {
    /// Token endpoint, e.g. `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_url: Url,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret (no default; keep it out of the file via env or Key Vault).
    pub client_secret: String,
    /// Scope requested, normally `{fhir service url}/.default`.
    pub scope: String,
}

/// `[audit]`: the audit trail written for every request (`src/audit/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Record every request (default). `false` is for benchmarks only:
    /// nothing is audited and no `X-Ledger-Seq` receipt is given.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Sign a checkpoint once this many entries are not covered by one.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// ... or once the oldest uncovered entry is this many seconds old.
    #[serde(default = "default_checkpoint_seconds")]
    pub checkpoint_seconds: u64,
    /// Most events appended in one group commit.
    #[serde(default = "default_audit_batch")]
    pub batch_max: usize,
    /// Requests that may wait for the writer before submitting blocks.
    #[serde(default = "default_audit_queue")]
    pub queue: usize,
    /// Anchoring of checkpoints in Azure Confidential Ledger; unset: none.
    #[serde(default)]
    pub anchor: Option<AnchorConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            checkpoint_every: default_checkpoint_every(),
            checkpoint_seconds: default_checkpoint_seconds(),
            batch_max: default_audit_batch(),
            queue: default_audit_queue(),
            anchor: None,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_checkpoint_every() -> u64 {
    1000
}
fn default_checkpoint_seconds() -> u64 {
    60
}
fn default_audit_batch() -> usize {
    512
}
fn default_audit_queue() -> usize {
    8192
}

/// `[audit.anchor]`: post every ledger checkpoint (tree size, root hash,
/// previous root, time; no PHI) to Azure Confidential Ledger and keep the
/// transaction id and receipt (`audit::anchor`). Unset: no anchoring.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    /// The ledger's data-plane URL, `https://<name>.confidential-ledger.azure.com`.
    pub ledger_url: Url,
    /// Collection (sub-ledger) to write to; unset: the ledger's default.
    #[serde(default)]
    pub collection_id: Option<String>,
    /// Data-plane `api-version` (the GA version by default).
    #[serde(default = "default_anchor_api_version")]
    pub api_version: String,
    /// Entra ID token endpoint, `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_url: Url,
    /// Application (client) id registered as a ledger user (Contributor).
    pub client_id: String,
    /// Client secret (no default; `FHIRGATE_ANCHOR_CLIENT_SECRET`).
    pub client_secret: String,
    /// Scope requested.
    #[serde(default = "default_anchor_scope")]
    pub scope: String,
    /// Seconds between looks for new checkpoints.
    #[serde(default = "default_anchor_poll")]
    pub poll_secs: u64,
}

impl AnchorConfig {
    /// The client-credentials settings for the token source.
    pub fn entra(&self) -> EntraConfig {
        EntraConfig {
            token_url: self.token_url.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            scope: self.scope.clone(),
        }
    }

    /// Checks the section; the error names the bad key.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let secure = |u: &Url| {
            let local = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            u.scheme() == "https" || (u.scheme() == "http" && local)
        };
        if !secure(&self.ledger_url) || self.ledger_url.query().is_some() {
            return Err((
                "audit.anchor.ledger_url",
                "must be an https URL without a query (http only for localhost)",
            ));
        }
        if !secure(&self.token_url) {
            return Err((
                "audit.anchor.token_url",
                "must be an https URL (http only for localhost)",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(("audit.anchor.client_id", "must not be empty"));
        }
        if self.client_secret.trim().is_empty() {
            return Err(("audit.anchor.client_secret", "must not be empty"));
        }
        if self.api_version.trim().is_empty() || self.scope.trim().is_empty() {
            return Err((
                "audit.anchor.api_version",
                "api_version and scope must not be empty",
            ));
        }
        if self
            .collection_id
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(("audit.anchor.collection_id", "must not be empty when set"));
        }
        if self.poll_secs == 0 {
            return Err(("audit.anchor.poll_secs", "must be at least 1"));
        }
        Ok(())
    }
}

/// Demo mode settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Demo mode on/off (`FHIRGATE_DEMO`). Unset: on unless a production
    /// setting (an upstream URL or a database URL) is configured.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Patients seeded into an empty embedded store.
    #[serde(default = "default_seed_patients")]
    pub seed_patients: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            seed_patients: default_seed_patients(),
        }
    }
}

/// Size and paging limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted request body, bytes (bigger gets 413).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Page size when a search gives no `_count`.
    #[serde(default = "default_page")]
    pub default_page_size: u32,
    /// Largest page size; a bigger `_count` is capped and the cap reported.
    #[serde(default = "default_max_page")]
    pub max_page_size: u32,
    /// Sustained FHIR requests per second one OAuth client may make (token
    /// bucket per client id, per replica); 0 turns the rate limit off.
    #[serde(default)]
    pub rate_per_second: f64,
    /// Requests a client may make at once above the sustained rate (bucket size).
    #[serde(default = "default_rate_burst")]
    pub rate_burst: u32,
    /// Client ids the rate limit does not apply to (none by default).
    #[serde(default)]
    pub rate_exempt_clients: Vec<String>,
    /// Longest a FHIR request may take before it is answered 503
    /// (`timeout`), seconds; 0 means no limit.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests may finish before
    /// `serve` stops waiting for them, seconds.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Failed password sign-ins one user name may have within
    /// `signin_failure_window_seconds` before sign-in for that name is
    /// refused (429) until the oldest failure leaves the window; shared by
    /// replicas through the state store. 0 turns the throttle off.
    #[serde(default = "default_signin_failure_limit")]
    pub signin_failure_limit: u32,
    /// The window of `signin_failure_limit`, seconds.
    #[serde(default = "default_signin_failure_window")]
    pub signin_failure_window_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body(),
            default_page_size: default_page(),
            max_page_size: default_max_page(),
            rate_per_second: 0.0,
            rate_burst: default_rate_burst(),
            rate_exempt_clients: Vec::new(),
            request_timeout_secs: default_request_timeout(),
            shutdown_grace_secs: default_shutdown_grace(),
            signin_failure_limit: default_signin_failure_limit(),
            signin_failure_window_seconds: default_signin_failure_window(),
        }
    }
}

fn default_signin_failure_limit() -> u32 {
    10
}

fn default_signin_failure_window() -> u64 {
    900
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (default) or `pretty`.
    #[serde(default)]
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `fhirgate=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_log_level(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable lines.
    Pretty,
}

/// `[consent]`: the deployment's consent policy (issue 4) and how the
/// consent index follows the upstream. [`ConsentConfig::policy`] builds the
/// `consent::Policy` the pipeline decides with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentConfig {
    /// What applies when no Consent provision matches: `opt-out` (share
    /// unless denied, the default) or `opt-in` (share nothing unless
    /// permitted) (`FHIRGATE_CONSENT_BASE_POLICY`).
    #[serde(default)]
    pub base_policy: BasePolicyKind,
    /// Seconds between polls of the upstream for Consents changed elsewhere;
    /// 0 turns polling off (`FHIRGATE_CONSENT_POLL_SECONDS`).
    #[serde(default = "default_consent_poll")]
    pub poll_seconds: u64,
    /// Client ids of trusted internal pipelines that consent does not
    /// filter. Every access they make is still audited. Default: none.
    #[serde(default)]
    pub exempt_clients: Vec<String>,
    /// Jurisdiction packs in force (`us-42cfr2` for every patient,
    /// `us-tx-hb300` and `us-ca-cmia` by the patient's state). Default: all.
    #[serde(default = "default_jurisdiction_packs")]
    pub jurisdiction_packs: Vec<String>,
    /// Roles that may break the glass (purpose ETREAT or BTG, with a reason).
    #[serde(default = "default_break_glass_roles")]
    pub break_glass_roles: Vec<String>,
    /// Roles whose purpose of use defaults to TREAT.
    #[serde(default = "default_clinician_roles")]
    pub clinician_roles: Vec<String>,
    /// A search that does not fit its first page gets its true total
    /// (counted ahead: every remaining match judged) when the upstream has at
    /// most this many matches and the caller did not ask with `_total`; 0:
    /// only on `_total=accurate`, as Azure Health Data Services' FHIR
    /// service gives a total only when asked. Default 1000.
    #[serde(default = "default_count_ahead")]
    pub count_ahead: u64,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        Self {
            base_policy: BasePolicyKind::default(),
            poll_seconds: default_consent_poll(),
            exempt_clients: Vec::new(),
            jurisdiction_packs: default_jurisdiction_packs(),
            break_glass_roles: default_break_glass_roles(),
            clinician_roles: default_clinician_roles(),
            count_ahead: default_count_ahead(),
        }
    }
}

/// `consent.base_policy` (IHE PCF implicit policies).
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BasePolicyKind {
    /// Nothing is shared without a permitting Consent.
    OptIn,
    /// Everything is shared unless a Consent denies it.
    #[default]
    OptOut,
}

impl ConsentConfig {
    /// The decision policy: `Policy::starter` with this base policy, only the
    /// configured packs, and these roles.
    pub fn policy(&self) -> crate::consent::Policy {
        use crate::consent::{policy::Pack, BasePolicy, Policy};
        let base = match self.base_policy {
            BasePolicyKind::OptIn => BasePolicy::OptIn,
            BasePolicyKind::OptOut => BasePolicy::OptOut,
        };
        let mut p = Policy::starter(base);
        let on = |pack: &Pack| self.jurisdiction_packs.contains(&pack.id);
        p.federal.retain(on);
        for packs in p.states.values_mut() {
            packs.retain(on);
        }
        p.states.retain(|_, packs| !packs.is_empty());
        p.clinician_roles = self.clinician_roles.clone();
        p.break_glass_roles = self.break_glass_roles.clone();
        p
    }

    /// How often to poll the upstream for Consent changes (None: never).
    pub fn poll_interval(&self) -> Option<std::time::Duration> {
        (self.poll_seconds > 0).then(|| std::time::Duration::from_secs(self.poll_seconds))
    }

    /// Whether a client is an exempt internal pipeline.
    pub fn is_exempt(&self, client_id: &str) -> bool {
        self.exempt_clients.iter().any(|c| c == client_id)
    }

    /// Checks the section; the error names the bad key.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let known = default_jurisdiction_packs();
        if let Some(bad) = self.jurisdiction_packs.iter().find(|p| !known.contains(p)) {
            return Err((
                "consent.jurisdiction_packs",
                format!("unknown pack {bad:?}; known: {}", known.join(", ")),
            ));
        }
        let blank = |v: &[String]| v.iter().any(|s| s.trim().is_empty());
        for (key, list) in [
            ("consent.exempt_clients", &self.exempt_clients),
            ("consent.break_glass_roles", &self.break_glass_roles),
            ("consent.clinician_roles", &self.clinician_roles),
        ] {
            if blank(list) {
                return Err((key, "entries must not be empty".to_owned()));
            }
        }
        if self.count_ahead > crate::pipeline::consent::pages::COUNT_LIMIT as u64 {
            return Err((
                "consent.count_ahead",
                format!(
                    "must be at most {} (the most matches a count judges)",
                    crate::pipeline::consent::pages::COUNT_LIMIT
                ),
            ));
        }
        if self.poll_seconds > 86_400 {
            return Err((
                "consent.poll_seconds",
                "must be at most 86400 (one day); 0 turns polling off".to_owned(),
            ));
        }
        Ok(())
    }
}

fn default_count_ahead() -> u64 {
    1_000
}

fn default_consent_poll() -> u64 {
    30
}
fn default_jurisdiction_packs() -> Vec<String> {
    let p = crate::consent::Policy::starter(crate::consent::BasePolicy::OptOut);
    let mut ids: Vec<String> = p
        .federal
        .iter()
        .chain(p.states.values().flatten())
        .map(|pack| pack.id.clone())
        .collect();
    ids.dedup();
    ids
}
fn default_clinician_roles() -> Vec<String> {
    crate::consent::Policy::starter(crate::consent::BasePolicy::OptOut).clinician_roles
}
fn default_break_glass_roles() -> Vec<String> {
    crate::consent::Policy::starter(crate::consent::BasePolicy::OptOut).break_glass_roles
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
#[allow(clippy::expect_used)] // a constant that always parses; not on a request path
fn default_public_url() -> Url {
    Url::parse("http://127.0.0.1:8080").expect("constant url")
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_upstream_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_pool_idle() -> usize {
    32
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown() -> u64 {
    30
}
fn default_read_retries() -> u32 {
    1
}
fn default_retry_backoff() -> u64 {
    100
}
fn default_rate_burst() -> u32 {
    50
}
fn default_request_timeout() -> u64 {
    120
}
fn default_shutdown_grace() -> u64 {
    30
}
fn default_seed_patients() -> u32 {
    100
}
fn default_max_body() -> usize {
    16 * 1024 * 1024
}
fn default_page() -> u32 {
    50
}
fn default_max_page() -> u32 {
    1000
}
fn default_federation_button() -> String {
    "Sign in with your organisation".to_owned()
}
fn default_federation_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(str::to_owned).to_vec()
}
fn default_username_claims() -> Vec<String> {
    ["preferred_username", "email", "sub"]
        .map(str::to_owned)
        .to_vec()
}
fn default_anchor_api_version() -> String {
    "2022-05-13".to_owned()
}
fn default_anchor_scope() -> String {
    "https://confidential-ledger.azure.com/.default".to_owned()
}
fn default_anchor_poll() -> u64 {
    10
}
fn default_log_level() -> String {
    "info".to_owned()
}

/// Why configuration could not be loaded; always names the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// File path.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A key has a bad value.
    #[error("config key `{key}`{origin}: {message}")]
    Value {
        /// Dotted key.
        key: String,
        /// ` (from FHIRGATE_X)` when the value came from the environment.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads `path` (if it exists; a missing default file is fine, a missing
    /// explicitly named file is an error) and applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let (file, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("fhirgate.toml"), false),
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(source) => return Err(ConfigError::Read { path: file, source }),
        };
        Self::from_parts(&text, &file, &env)
    }

    /// Builds a configuration from TOML text and environment pairs (testable, no I/O).
    pub fn from_parts(
        text: &str,
        file: &Path,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: file.to_path_buf(),
                    message: e.message().to_owned(),
                })?;
        let mut from_env: Vec<(String, &str)> = Vec::new();
        for (var, key) in ENV_OVERRIDES {
            if let Some((_, value)) = env.iter().find(|(k, _)| k == var) {
                set_dotted(&mut table, key, env_value(key, value));
                from_env.push(((*key).to_owned(), var));
            }
        }
        let value = toml::Value::Table(table);
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            let origin = from_env
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| format!(" (from {v})"))
                .unwrap_or_default();
            ConfigError::Value {
                key,
                origin,
                message: e.into_inner().message().to_owned(),
            }
        })?;
        config.validate(&from_env)?;
        Ok(config)
    }

    fn validate(&self, from_env: &[(String, &str)]) -> Result<(), ConfigError> {
        let origin = |key: &str| {
            from_env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| format!(" (from {v})"))
                .unwrap_or_default()
        };
        let bad = |key: &str, message: &str| ConfigError::Value {
            key: key.to_owned(),
            origin: origin(key),
            message: message.to_owned(),
        };
        if !matches!(self.public_url.scheme(), "http" | "https") {
            return Err(bad("public_url", "must be an http or https URL"));
        }
        if self.public_url.query().is_some() || self.public_url.fragment().is_some() {
            return Err(bad("public_url", "must not have a query or fragment"));
        }
        if let Some(u) = &self.upstream.url {
            if !matches!(u.scheme(), "http" | "https") {
                return Err(bad("upstream.url", "must be an http or https URL"));
            }
        }
        match self.upstream.auth {
            UpstreamAuthKind::Bearer
                if self
                    .upstream
                    .bearer_token
                    .as_deref()
                    .unwrap_or("")
                    .is_empty() =>
            {
                return Err(bad(
                    "upstream.bearer_token",
                    "required when upstream.auth = \"bearer\"",
                ));
            }
            UpstreamAuthKind::Entra if self.upstream.entra.is_none() => {
                return Err(bad(
                    "upstream.entra",
                    "required when upstream.auth = \"entra\"",
                ));
            }
            _ => {}
        }
        if let Some(db) = &self.database_url {
            if !(db.starts_with("postgres://")
                || db.starts_with("postgresql://")
                || db.starts_with("sqlite:"))
            {
                return Err(bad(
                    "database_url",
                    "must start with postgres://, postgresql:// or sqlite:",
                ));
            }
        }
        if let Some(unknown) = self
            .validation
            .required_profiles
            .iter()
            .find(|p| crate::validation::check::known_profile(p).is_none())
        {
            return Err(bad(
                "validation.required_profiles",
                &format!("{unknown} is not a profile fhirgate knows"),
            ));
        }
        if self.limits.max_page_size == 0 || self.limits.default_page_size == 0 {
            return Err(bad("limits.max_page_size", "page sizes must be at least 1"));
        }
        if self.limits.default_page_size > self.limits.max_page_size {
            return Err(bad(
                "limits.default_page_size",
                "must not exceed limits.max_page_size",
            ));
        }
        if self.upstream.timeout_secs == 0 {
            return Err(bad("upstream.timeout_secs", "must be at least 1"));
        }
        if self.upstream.breaker_failures > 0 && self.upstream.breaker_cooldown_secs == 0 {
            return Err(bad("upstream.breaker_cooldown_secs", "must be at least 1"));
        }
        if !self.limits.rate_per_second.is_finite() || self.limits.rate_per_second < 0.0 {
            return Err(bad(
                "limits.rate_per_second",
                "must be a non-negative number (0: no rate limit)",
            ));
        }
        if self.limits.rate_per_second > 0.0 && self.limits.rate_burst == 0 {
            return Err(bad("limits.rate_burst", "must be at least 1"));
        }
        if self.audit.checkpoint_every == 0 {
            return Err(bad("audit.checkpoint_every", "must be at least 1"));
        }
        if self.audit.checkpoint_seconds == 0 {
            return Err(bad("audit.checkpoint_seconds", "must be at least 1"));
        }
        if self.audit.batch_max == 0 || self.audit.queue == 0 {
            return Err(bad(
                "audit.batch_max",
                "batch_max and queue must be at least 1",
            ));
        }
        if let Some(a) = &self.audit.anchor {
            a.validate().map_err(|(key, message)| bad(key, message))?;
        }
        if let Some(f) = &self.federation {
            f.validate().map_err(|(key, message)| bad(key, message))?;
        }
        self.consent
            .validate()
            .map_err(|(key, message)| bad(key, &message))?;
        self.mfa
            .validate()
            .map_err(|(key, message)| bad(key, &message))?;
        self.assurance
            .validate()
            .map_err(|(key, message)| bad(key, &message))?;
        self.observability
            .validate()
            .map_err(|(key, message)| bad(key, message))?;
        if let Some(p) = self
            .http
            .trusted_proxies
            .iter()
            .find(|p| parse_net(p).is_none())
        {
            return Err(bad(
                "http.trusted_proxies",
                &format!("{p:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"),
            ));
        }
        if let Some(t) = &self.tls {
            if t.certificate.as_os_str().is_empty() || t.key.as_os_str().is_empty() {
                return Err(bad("tls", "certificate and key must name files"));
            }
            if t.reload_seconds > 86_400 {
                return Err(bad(
                    "tls.reload_seconds",
                    "must be at most 86400 (one day); 0 turns reloading off",
                ));
            }
        }
        Ok(())
    }

    /// The FHIR base URL clients see, without a trailing slash.
    pub fn fhir_base(&self) -> String {
        format!("{}/fhir", self.public_url.as_str().trim_end_matches('/'))
    }

    /// Whether sensitive operations need a fresh step-up: `[mfa] stepup`,
    /// else required in demo mode (so the demo shows it) and off otherwise.
    pub fn stepup(&self) -> crate::mfa::config::StepUp {
        use crate::mfa::config::StepUp;
        self.mfa.stepup.unwrap_or(if self.demo_enabled() {
            StepUp::Required
        } else {
            StepUp::Off
        })
    }

    /// Whether demo mode is on (seeded data and demo users).
    pub fn demo_enabled(&self) -> bool {
        self.demo
            .enabled
            .unwrap_or(self.upstream.url.is_none() && self.database_url.is_none())
    }
}

impl FederationConfig {
    /// Checks the section; the error names the bad key.
    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let Ok(issuer) = Url::parse(&self.issuer) else {
            return Err(("federation.issuer", "must be an absolute URL"));
        };
        let local = matches!(issuer.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if issuer.scheme() != "https" && !(issuer.scheme() == "http" && local) {
            return Err((
                "federation.issuer",
                "must be an https URL (http only for localhost)",
            ));
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(("federation.issuer", "must not have a query or fragment"));
        }
        if self.client_id.trim().is_empty() {
            return Err(("federation.client_id", "must not be empty"));
        }
        if self.client_secret.trim().is_empty() {
            return Err(("federation.client_secret", "must not be empty"));
        }
        if self.display_name.trim().is_empty() {
            return Err(("federation.display_name", "must not be empty"));
        }
        if self.scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return Err((
                "federation.scopes",
                "each scope must be one non-empty token",
            ));
        }
        if self.username_claims.is_empty() || self.username_claims.iter().any(|c| c.is_empty()) {
            return Err((
                "federation.username_claims",
                "must name at least one claim, none empty",
            ));
        }
        if self
            .organization_claim
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(("federation.organization_claim", "must name a claim"));
        }
        Ok(())
    }
}

/// Environment values are strings; typed keys are converted so serde sees the right type.
fn env_value(key: &str, raw: &str) -> toml::Value {
    match key {
        "demo.enabled" | "http.allow_plain_http" => match raw {
            "1" | "true" | "on" | "yes" => toml::Value::Boolean(true),
            "0" | "false" | "off" | "no" => toml::Value::Boolean(false),
            _ => toml::Value::String(raw.to_owned()),
        },
        "http.trusted_proxies" => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| toml::Value::String(p.to_owned()))
                .collect(),
        ),
        "consent.poll_seconds" => raw
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(raw.to_owned())),
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts = key.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return;
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        match entry {
            toml::Value::Table(t) => current = t,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Config::from_parts(text, Path::new("fhirgate.toml"), &env)
    }

    #[test]
    fn defaults_follow_the_interface_contract() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.fhir_base(), "http://127.0.0.1:8080/fhir");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.upstream.url.is_none());
        assert!(c.database_url.is_none());
        assert!(c.demo_enabled());
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            "listen = \"0.0.0.0:9000\"\n[upstream]\nurl = \"http://a/fhir\"\n",
            &[
                ("FHIRGATE_LISTEN", "127.0.0.1:9999"),
                ("FHIRGATE_UPSTREAM_URL", "http://b:8103/fhir/R4"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(c.upstream.url.unwrap().as_str(), "http://b:8103/fhir/R4");
        let c = load(
            "",
            &[("FHIRGATE_DATABASE_URL", "postgres://x@localhost/db")],
        )
        .unwrap();
        assert!(!c.demo_enabled(), "a production database leaves demo mode");
    }

    /// A container deployment (deploy/azure/) configures the AHDS upstream's
    /// Entra credentials and the bulk storage from the environment alone
    /// (Key Vault references become environment variables).
    #[test]
    fn an_ahds_deployment_needs_no_config_file() {
        let c = load(
            "",
            &[
                (
                    "FHIRGATE_UPSTREAM_URL",
                    "https://ws-fhir.fhir.azurehealthcareapis.com",
                ),
                ("FHIRGATE_UPSTREAM_AUTH", "entra"),
                (
                    "FHIRGATE_UPSTREAM_ENTRA_TOKEN_URL",
                    "https://login.microsoftonline.com/t/oauth2/v2.0/token",
                ),
                ("FHIRGATE_UPSTREAM_ENTRA_CLIENT_ID", "app"),
                ("FHIRGATE_UPSTREAM_ENTRA_CLIENT_SECRET", "s3cret"),
                (
                    "FHIRGATE_UPSTREAM_ENTRA_SCOPE",
                    "https://ws-fhir.fhir.azurehealthcareapis.com/.default",
                ),
                ("FHIRGATE_BULK_STORAGE_URL", "az://exports/fhirgate"),
            ],
        )
        .unwrap();
        let entra = c.upstream.entra.unwrap();
        assert_eq!(entra.client_secret, "s3cret");
        assert_eq!(c.bulk.storage_url.as_deref(), Some("az://exports/fhirgate"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = load("", &[("FHIRGATE_LISTEN", "not-an-address")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`listen`") && e.contains("FHIRGATE_LISTEN"),
            "{e}"
        );
        let e = load("[limits]\nmax_page_size = \"big\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_page_size"), "{e}");
        let e = load("colour = 1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let e = load("[upstream]\nauth = \"bearer\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("upstream.bearer_token"), "{e}");
        let e = load("", &[("FHIRGATE_DATABASE_URL", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("database_url") && e.contains("FHIRGATE_DATABASE_URL"),
            "{e}"
        );
        let e = load("public_url = \"ftp://x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("public_url"), "{e}");
    }

    #[test]
    fn limits_and_fault_keys_have_defaults_and_are_checked() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.limits.rate_per_second, 0.0, "no rate limit by default");
        assert_eq!(c.limits.rate_burst, 50);
        assert!(c.limits.rate_exempt_clients.is_empty());
        assert_eq!(c.limits.request_timeout_secs, 120);
        assert_eq!(c.limits.shutdown_grace_secs, 30);
        let u = &c.upstream;
        assert_eq!((u.breaker_failures, u.breaker_cooldown_secs), (5, 30));
        assert_eq!((u.read_retries, u.retry_backoff_ms), (1, 100));
        let c = load("[limits]\nrate_per_second = 5\nrate_burst = 10\n", &[]).unwrap();
        assert_eq!((c.limits.rate_per_second, c.limits.rate_burst), (5.0, 10));
        for (text, key) in [
            ("[limits]\nrate_per_second = -1\n", "limits.rate_per_second"),
            (
                "[limits]\nrate_per_second = 1\nrate_burst = 0\n",
                "limits.rate_burst",
            ),
            (
                "[upstream]\nbreaker_cooldown_secs = 0\n",
                "upstream.breaker_cooldown_secs",
            ),
        ] {
            let e = load(text, &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn federation_is_optional_and_checked() {
        assert!(load("", &[]).unwrap().federation.is_none());
        let c = load(
            "[federation]\nissuer = \"https://login.example/tenant/v2.0\"\nclient_id = \"fhirgate\"\n",
            &[("FHIRGATE_FEDERATION_CLIENT_SECRET", "s3cret")],
        )
        .unwrap();
        let f = c.federation.unwrap();
        assert_eq!(f.client_secret, "s3cret");
        assert_eq!(f.scopes, ["openid", "profile", "email"]);
        assert_eq!(f.username_claims, ["preferred_username", "email", "sub"]);
        // No default secret: a missing one stops start-up naming the section.
        let e = load(
            "[federation]\nissuer = \"https://login.example\"\nclient_id = \"x\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("federation") && e.contains("client_secret"),
            "{e}"
        );
        let base = "client_id = \"x\"\nclient_secret = \"y\"\n";
        for (extra, key) in [
            ("issuer = \"http://login.example\"\n", "federation.issuer"),
            ("issuer = \"not a url\"\n", "federation.issuer"),
            (
                "issuer = \"https://l.example\"\nusername_claims = []\n",
                "federation.username_claims",
            ),
            (
                "issuer = \"https://l.example\"\norganization_claim = \"\"\n",
                "federation.organization_claim",
            ),
            (
                "issuer = \"https://l.example\"\nscopes = [\"a b\"]\n",
                "federation.scopes",
            ),
        ] {
            let e = load(&format!("[federation]\n{base}{extra}"), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{extra}: {e}");
        }
        let e = load(
            "[federation]\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"x\"\nclient_secret = \" \"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("federation.client_secret"), "{e}");
    }

    #[test]
    fn consent_section_defaults_overrides_and_errors() {
        use crate::consent::{BasePolicy, Policy};
        let c = load("", &[]).unwrap().consent;
        assert_eq!(c.base_policy, BasePolicyKind::OptOut);
        assert_eq!(c.poll_interval(), Some(std::time::Duration::from_secs(30)));
        assert!(c.exempt_clients.is_empty() && !c.is_exempt("etl"));
        assert_eq!(
            c.jurisdiction_packs,
            ["us-42cfr2", "us-ca-cmia", "us-tx-hb300"]
        );
        assert_eq!(c.policy(), Policy::starter(BasePolicy::OptOut));
        assert_eq!(c.count_ahead, 1_000);

        let c = load(
            "[consent]\nbase_policy = \"opt-out\"\nexempt_clients = [\"etl\"]\njurisdiction_packs = [\"us-42cfr2\", \"us-tx-hb300\"]\nbreak_glass_roles = []\nclinician_roles = [\"clinician\", \"nurse\"]\n",
            &[
                ("FHIRGATE_CONSENT_BASE_POLICY", "opt-in"),
                ("FHIRGATE_CONSENT_POLL_SECONDS", "0"),
            ],
        )
        .unwrap()
        .consent;
        assert!(c.is_exempt("etl"));
        assert_eq!(c.poll_interval(), None);
        let p = c.policy();
        assert_eq!(p.base, BasePolicy::OptIn);
        assert_eq!(p.federal.len(), 1);
        assert!(p.states.contains_key("TX") && !p.states.contains_key("CA"));
        assert!(p.break_glass_roles.is_empty());
        assert_eq!(p.clinician_roles, ["clinician", "nurse"]);

        for (text, env, key) in [
            (
                "[consent]\nbase_policy = \"opt-maybe\"\n",
                vec![],
                "consent.base_policy",
            ),
            (
                "",
                vec![("FHIRGATE_CONSENT_POLL_SECONDS", "often")],
                "FHIRGATE_CONSENT_POLL_SECONDS",
            ),
            (
                "[consent]\njurisdiction_packs = [\"us-zz\"]\n",
                vec![],
                "consent.jurisdiction_packs",
            ),
            (
                "[consent]\nexempt_clients = [\"\"]\n",
                vec![],
                "consent.exempt_clients",
            ),
            (
                "[consent]\npoll_seconds = 100000\n",
                vec![],
                "consent.poll_seconds",
            ),
            (
                "[consent]\ncount_ahead = 50001\n",
                vec![],
                "consent.count_ahead",
            ),
            ("[consent]\npolicy = 1\n", vec![], "policy"),
        ] {
            let e = load(text, &env).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
