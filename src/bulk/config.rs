//! `[bulk]`: the Bulk Data `$export` settings (jobs, polling, files).

use serde::Deserialize;

/// Bulk Data export settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkConfig {
    /// Jobs queued or running at once (all clients); kick-off beyond it is 429.
    #[serde(default = "default_max_jobs")]
    pub max_concurrent_jobs: usize,
    /// Resources per NDJSON file; a type with more is split into several files.
    #[serde(default = "default_file_max")]
    pub file_max_resources: usize,
    /// `Retry-After` (seconds) of an in-progress status answer.
    #[serde(default = "default_retry_after")]
    pub retry_after_seconds: u64,
    /// A client polling the same job more often than this gets 429 (0: never).
    #[serde(default = "default_min_poll")]
    pub min_poll_seconds: u64,
    /// How long a finished job's files stay available (`Expires`).
    #[serde(default = "default_expires")]
    pub expires_hours: u64,
    /// A worker's claim on a job; another replica takes the job over once the
    /// lease has run out without renewal (the worker renews it every page).
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
    /// How often an idle worker looks for claimable jobs (milliseconds).
    #[serde(default = "default_scan")]
    pub scan_millis: u64,
    /// Where files go: unset = `<data_dir>/bulk` on the local filesystem;
    /// `file:///path`; or Azure Blob Storage: `az://<container>/<prefix>` or
    /// `https://<account>.blob.core.windows.net/<container>/<prefix>`
    /// (credentials: [`BulkConfig::azure`], else the `AZURE_*` environment).
    #[serde(default)]
    pub storage_url: Option<String>,
    /// Azure Blob Storage credentials for `storage_url`.
    #[serde(default)]
    pub azure: AzureStorage,
    /// With an HTTP upstream: run the upstream's own `$export` (on
    /// fhirgate's upstream identity) for system-level and all-patients
    /// patient-level jobs, then release its files through the same checks
    /// as paged exports. Other jobs page searches as usual.
    #[serde(default)]
    pub upstream_export: bool,
    /// Credentials for reading the upstream's export files from its Azure
    /// storage account (`https://<account>.blob.core.windows.net/...`, or
    /// URLs below `endpoint`).
    #[serde(default)]
    pub upstream_storage: AzureStorage,
    /// Longest wait for the upstream's `$export` to finish (seconds).
    #[serde(default = "default_upstream_timeout")]
    pub upstream_export_timeout_seconds: u64,
}

/// Azure Blob Storage access, on top of object_store's `AZURE_*`
/// environment variables (`AZURE_STORAGE_ACCOUNT_NAME`,
/// `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_SAS_TOKEN`, workload identity's
/// `AZURE_CLIENT_ID` + `AZURE_TENANT_ID` + `AZURE_FEDERATED_TOKEN_FILE`,
/// `AZURE_CLIENT_SECRET`, `IDENTITY_ENDPOINT`/`MSI_ENDPOINT`); with no key,
/// SAS or client secret the managed identity (IMDS) is used.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureStorage {
    /// Storage account name (else taken from an `https://` URL or the env).
    #[serde(default)]
    pub account: Option<String>,
    /// Shared account key (base64); prefer the env or a managed identity.
    #[serde(default)]
    pub access_key: Option<String>,
    /// A SAS token (`sv=...&sig=...`).
    #[serde(default)]
    pub sas_token: Option<String>,
    /// The account's blob endpoint when not `https://<account>.blob.core.windows.net`
    /// (private endpoint, or Azurite's `http://127.0.0.1:10000/devstoreaccount1`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Azurite: account `devstoreaccount1` with its published key unless
    /// set, endpoint `http://127.0.0.1:10000/<account>` unless set, plain
    /// HTTP allowed.
    #[serde(default)]
    pub use_emulator: bool,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            max_concurrent_jobs: default_max_jobs(),
            file_max_resources: default_file_max(),
            retry_after_seconds: default_retry_after(),
            min_poll_seconds: default_min_poll(),
            expires_hours: default_expires(),
            lease_seconds: default_lease(),
            scan_millis: default_scan(),
            storage_url: None,
            azure: AzureStorage::default(),
            upstream_export: false,
            upstream_storage: AzureStorage::default(),
            upstream_export_timeout_seconds: default_upstream_timeout(),
        }
    }
}

fn default_max_jobs() -> usize {
    4
}
fn default_file_max() -> usize {
    100_000
}
fn default_retry_after() -> u64 {
    2
}
fn default_min_poll() -> u64 {
    1
}
fn default_expires() -> u64 {
    24
}
fn default_lease() -> u64 {
    60
}
fn default_scan() -> u64 {
    1000
}
fn default_upstream_timeout() -> u64 {
    6 * 3600
}
