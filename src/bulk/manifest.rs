//! The completion manifest (Bulk Data Access 2.0 "Response - Complete
//! Status"): `transactionTime`, `request`, `requiresAccessToken: true`,
//! `output` (one entry per file: `type`, absolute `url`, `count`), `error`
//! (always present), `deleted` (system-level exports with `_since`: files of
//! transaction Bundles with one DELETE entry per resource deleted since),
//! and the number of resources consent withheld as an extension; for a
//! de-identified export, the profile, key set and security tag applied
//! (`deid::export::PROFILE_EXTENSION`).

use serde_json::{json, Value};

use super::jobs::{FileEntry, Job};

/// The manifest extension carrying the consent-withheld count.
pub const WITHHELD_EXTENSION: &str = "https://fhirgate.dev/fhir/bulk/withheld-by-consent";

/// The download URL of a job's file.
pub fn file_url(base: &str, job: &str, name: &str) -> String {
    format!("{base}/bulk/files/{job}/{name}")
}

/// The manifest of a finished job.
pub fn manifest(base: &str, job: &Job) -> Value {
    let entries = |files: &[FileEntry]| -> Vec<Value> {
        files
            .iter()
            .map(|f| {
                json!({"type": f.type_, "url": file_url(base, &job.id, &f.name), "count": f.count})
            })
            .collect()
    };
    let mut extension = json!({WITHHELD_EXTENSION: job.progress.withheld});
    if let Some(d) = &job.spec.deid {
        extension[crate::deid::export::PROFILE_EXTENSION] = json!({
            "profile": d.profile,
            "keySet": d.key_set,
            "purpose": d.purpose,
            "securityTag": d.security,
        });
    }
    json!({
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": true,
        "output": entries(&job.progress.output),
        "error": entries(&job.progress.error),
        "deleted": entries(&job.progress.deleted),
        "extension": extension,
    })
}
