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
    /// Where files go: unset = `<data_dir>/bulk` on the local filesystem.
    /// Azure Blob Storage URLs are not supported by this build yet.
    #[serde(default)]
    pub storage_url: Option<String>,
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
