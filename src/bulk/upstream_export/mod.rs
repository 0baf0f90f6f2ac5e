//! Export through the HTTP upstream's own Bulk Data `$export`
//! (`bulk.upstream_export = true`), as Azure Health Data Services offers it:
//! the upstream writes NDJSON into a storage account, fhirgate reads it back,
//! releases every resource to the job's caller and writes its own files.
//!
//! 1. Kick-off on fhirgate's upstream identity (the upstream's `auth`):
//!    `[upstream]/$export` for system-level jobs, `[upstream]/Patient/$export`
//!    for patient-level jobs without `patient`; `_type` is the job's type
//!    list, `_since` passed on. The status URL (same origin as the upstream
//!    only: the token never goes elsewhere) is kept in the job's folder
//!    (`_upstream-export.json`, never served) so a resumed job polls the same
//!    upstream job instead of starting another.
//! 2. Poll, honouring `Retry-After` (seconds, 1–60), renewing the job's lease
//!    meanwhile, for at most `bulk.upstream_export_timeout_seconds`.
//! 3. For each type of the manifest (in the job's order, finished types
//!    skipped): each output file is read in ranges (a storage-account URL,
//!    through object_store's Azure client with `[bulk.upstream_storage]`
//!    credentials) or streamed (any other URL, an HTTP GET carrying the
//!    upstream token when `requiresAccessToken` and the file is on the
//!    upstream's origin), split into lines with memory bounded by a chunk
//!    and a line, upstream URLs rewritten onto the facade's base, and
//!    released batch by batch through [`Release`] (scopes, consent at export
//!    time for the job's client, `_elements`, disclosure recorded on the
//!    audit ledger per batch; withheld resources are counted, never named).
//! 4. The upstream job is deleted (`DELETE` on its status URL) and the
//!    manifest's files on a storage account are removed. A job that fails,
//!    or that its client deletes, cancels the upstream job the same way; a
//!    job taken over by another worker resumes it.
//!
//! Upstream failures (kick-off refused, job failed, a file unreadable) are
//! messages in the job's error file, never resource ids; the job completes
//! with whatever was released.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::body::Bytes;
use object_store::{path::Path, ObjectStore};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use smart_launch::context::AccessContext;
use url::Url;

use super::{
    config::AzureStorage,
    files::{self, TypeWriter},
    jobs::{self, Job, Level, Progress},
    params,
    release::Release,
    worker::Stop,
};
use crate::{
    audit::{FhirFacts, HttpFacts},
    fhir::{FhirRequest, Interaction},
    pipeline::Disclosure,
    upstream::http::{auth::Auth, UpstreamBase},
    AppState,
};

mod copy;
mod job;
mod source;
#[cfg(test)]
mod tests;
mod upstream;

use source::{blob_location, storage_error, Lines, Source};
use upstream::{outcome_text, retry_after, Upstream};

/// Where a resumed job finds its upstream job.
const MARKER: &str = "_upstream-export.json";
/// Resources released (and audited) per batch.
const BATCH: usize = 500;
/// Bytes read from a blob per range request.
const CHUNK: u64 = 4 * 1024 * 1024;
/// Longest NDJSON line accepted.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// Whether this job runs through the upstream's `$export`: the setting is
/// on, the upstream is HTTP, and the job is system level or patient level
/// for every patient, without `_typeFilter` or `_since`. Group exports
/// (fhirgate's Group rules decide the members) and named patients page
/// searches instead, as do incremental (`_since`) exports: an upstream's
/// `$export` reports no deletions, and the paged path lists them in the
/// manifest's `deleted` (from the type history or fhirgate's deletion log).
pub(super) fn handles(app: &AppState, job: &Job) -> bool {
    let spec = &job.spec;
    app.config.bulk.upstream_export
        && app.config.upstream.url.is_some()
        && spec.type_filters.is_empty()
        && spec.since.is_none()
        && match spec.level {
            Level::System => true,
            Level::Patient => spec.patients.is_empty(),
            Level::Group(_) => false,
        }
}

/// Runs the job through the upstream's `$export` (see the module doc).
pub(super) async fn run(
    app: &AppState,
    owner: &str,
    job: &Job,
    caller: &AccessContext,
    p: &mut Progress,
) -> Result<(), Stop> {
    let up = match Upstream::new(app) {
        Ok(u) => u,
        Err(e) => {
            p.errors.push(format!("upstream export: {e}"));
            return Ok(());
        }
    };
    let mut run = Run {
        app,
        owner,
        job,
        caller,
        up,
        status: None,
        blobs: HashMap::new(),
        upstream_files: Vec::new(),
    };
    let manifest = match run.manifest(p).await {
        Ok(m) => m,
        Err(Fail::Stop(s)) => {
            run.abandon(&s).await;
            return Err(s);
        }
        Err(Fail::Upstream(msg)) => {
            p.errors.push(format!("upstream export: {msg}"));
            if let Some(u) = run.status.clone() {
                run.delete_upstream_job(&u, p).await;
            }
            run.forget().await;
            return Ok(());
        }
    };
    run.note_upstream_files(&manifest);
    if let Err(s) = run.release_all(&manifest, p).await {
        run.abandon(&s).await;
        return Err(s);
    }
    if let Some(u) = run.status.clone() {
        run.delete_upstream_job(&u, p).await;
    }
    run.remove_upstream_files().await;
    run.forget().await;
    Ok(())
}

/// Why the upstream part stopped.
enum Fail {
    /// The job itself stops (lease lost, audit ledger down).
    Stop(Stop),
    /// The upstream failed: a message for the error file.
    Upstream(String),
}

/// One job's upstream export.
struct Run<'a> {
    app: &'a AppState,
    owner: &'a str,
    job: &'a Job,
    caller: &'a AccessContext,
    up: Upstream,
    /// The upstream job's status URL, once known.
    status: Option<Url>,
    /// Storage-account containers opened for reading, by `account/container`.
    blobs: HashMap<String, Arc<dyn ObjectStore>>,
    /// The upstream's files on a storage account (removed at the end).
    upstream_files: Vec<(Arc<dyn ObjectStore>, Path)>,
}

/// An error as text (scrubbed of the upstream's address by the caller).
fn short(e: impl std::fmt::Display) -> String {
    e.to_string()
}
