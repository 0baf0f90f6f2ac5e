//! Bulk Data Access 2.0 `$export` (issue 6 items 1–4): kick-off at system
//! (`/fhir/$export`), patient (`/fhir/Patient/$export`) and group
//! (`/fhir/Group/{id}/$export`) level by GET or POST; status at
//! `/fhir/bulk/status/{job}` (202 with `X-Progress` and `Retry-After`, 429
//! when polled faster than `min_poll_seconds`, 200 with `Expires` and the
//! manifest, DELETE → 202 then 404); files at `/fhir/bulk/files/{job}/{file}`
//! (`application/fhir+ndjson`, bearer token of the kicking-off client).
//!
//! Jobs live in the state store (`bulk_job`) and are run by [`worker`]
//! tasks that claim them with a lease, so any replica can run or resume a
//! job. The worker exports **as the client**: on the embedded store each
//! batch of a keyset scan is released by [`release`] with the kick-off
//! token's claims, elsewhere every page is a search run through
//! `pipeline::handle_as`; either way scopes, consent (re-evaluated at export
//! time) and `_elements` apply exactly as to a live search; what consent
//! withheld is counted, never named.
//!
//! Policies (documented as the IG asks):
//! - Levels: system = every default type (or `_type`); patient = the
//!   Patient-compartment types for every patient the client may see (or
//!   those named by `patient`); group = the compartments of the Group's
//!   `member.entity` Patients (intersected with `patient` when given).
//!   Non-compartment types named in `_type` (Practitioner, Organization, …)
//!   are exported whole at every level.
//! - `_since` applies as `_lastUpdated=ge` to every resource, also for
//!   Group members added after `_since` (their older data is not included).
//! - Files: one type per file, a new file every `file_max_resources` lines,
//!   named `{Type}-{n}.ndjson`; each resource appears once, latest version.
//! - `deleted` (system level with `_since`): per type, files
//!   `deleted-{Type}-{n}.ndjson` of transaction Bundles with one DELETE entry
//!   per resource whose newest change since `_since` is a deletion, read
//!   from the type's history as the client. Patient and Group exports report
//!   none (a deletion carries no compartment).
//! - `includeAssociatedData`: known values accepted and ignored.
//! - Restart: a job resumes at the first resource type not yet finished
//!   (that type's files are rewritten), so counts are exact.

use std::sync::Arc;

use object_store::ObjectStore;
use tokio::sync::Notify;

pub mod config;
pub mod files;
pub mod http;
pub mod jobs;
pub mod kickoff;
pub mod manifest;
mod pages;
pub mod params;
pub(crate) mod release;
#[cfg(test)]
pub(crate) mod tests;
mod upstream_export;
pub mod worker;

pub use kickoff::kickoff;

/// Shared bulk state of a process.
pub struct Bulk {
    /// Where export files go.
    pub store: Arc<dyn ObjectStore>,
    /// Wakes the worker when a job is queued.
    pub wake: Notify,
    /// De-identification profiles and keys (`[deid]`).
    pub deid: crate::deid::config::Registry,
}

impl Bulk {
    /// Opens the file store of the configuration.
    pub fn open(config: &crate::config::Config) -> anyhow::Result<Self> {
        Ok(Self {
            store: files::open(&config.bulk, &config.data_dir)?,
            wake: Notify::new(),
            deid: crate::deid::config::Registry::load(&config.deid, &config.data_dir)?,
        })
    }
}

impl std::fmt::Debug for Bulk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bulk").finish_non_exhaustive()
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    crate::audit::auditor::now_ms()
}

/// Whether a request is a `$export` kick-off.
pub fn is_export(req: &crate::fhir::FhirRequest) -> bool {
    req.interaction == crate::fhir::Interaction::Operation
        && req.operation.as_deref() == Some("export")
}
