//! The export worker: claims queued (or abandoned) jobs with a lease and
//! runs them, up to `max_concurrent_jobs` at once per process. A job is
//! exported type by type as the client (`pages`: a keyset scan of the
//! embedded store released batch by batch by `release`, or searches through
//! `pipeline::handle_as` following the facade's sealed `next` links), at the
//! maximum page size, streaming each batch into NDJSON files; at most two
//! batches are in memory at a time. After each finished type the checkpoint is saved; a job taken over
//! after a crash restarts at the first unfinished type. Every page's
//! disclosure (released resources, consent denials) goes to the audit ledger.

use serde_json::{json, Value};
use smart_launch::context::AccessContext;
use tokio::task::JoinSet;

use super::{
    files,
    jobs::{self, FileEntry, Job, Level, Progress},
    pages::TypeExport,
};
use crate::{search::compartment::PATIENT_COMPARTMENT, AppState};

/// Compartment types exported by default (the audit trail, Consents and
/// Groups are not part of a patient's clinical record).
fn compartment_defaults() -> Vec<String> {
    PATIENT_COMPARTMENT
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| !matches!(*t, "AuditEvent" | "Consent" | "Group"))
        .map(str::to_owned)
        .collect()
}

/// Reference types added at system level.
const SYSTEM_EXTRA: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
];

/// Why a job (or one type of it) stopped without finishing.
#[derive(Debug)]
pub(super) enum Stop {
    /// Deleted, or the lease was lost to another worker.
    Released,
    /// An error that ends the job.
    Failed(String),
}

/// Starts the worker loop of this process. Aborting the handle stops it
/// and every job it runs (their leases then run out and any replica, or
/// this process after a restart, resumes them).
pub fn spawn(app: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(app))
}

async fn run(app: AppState) {
    let owner = uuid::Uuid::new_v4().simple().to_string();
    let cfg = app.config.bulk.clone();
    let lease_ms = (cfg.lease_seconds as i64).saturating_mul(1000);
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        while running.len() < cfg.max_concurrent_jobs.max(1) {
            match jobs::claim(&app.state, &owner, super::now_ms(), lease_ms).await {
                Ok(Some(job)) => {
                    let (app, owner) = (app.clone(), owner.clone());
                    running.spawn(async move { run_job(&app, &owner, job).await });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bulk: cannot claim jobs");
                    break;
                }
            }
        }
        sweep(&app).await;
        let scan = std::time::Duration::from_millis(cfg.scan_millis.max(10));
        tokio::select! {
            _ = app.bulk.wake.notified() => {}
            _ = tokio::time::sleep(scan) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
}

/// Deletes the files of jobs past their `Expires` (the job then answers 404).
async fn sweep(app: &AppState) {
    let hours = app.config.bulk.expires_hours as i64;
    let before = super::now_ms() - hours.saturating_mul(3_600_000);
    let Ok(ids) = jobs::expired(&app.state, before).await else {
        return;
    };
    for id in ids {
        if jobs::mark_deleted(&app.state, &id, super::now_ms())
            .await
            .is_ok()
        {
            if let Err(e) = files::remove_job(app.bulk.store.as_ref(), &id).await {
                tracing::warn!(job = %id, error = %e, "bulk: cannot remove expired files");
            }
        }
    }
}

async fn run_job(app: &AppState, owner: &str, job: Job) {
    let id = job.id.clone();
    let mut progress = job.progress.clone();
    let status = match export(app, owner, &job, &mut progress).await {
        Ok(()) => jobs::status::COMPLETE,
        Err(Stop::Released) => {
            tracing::info!(job = %id, "bulk: job released (deleted or taken over)");
            if let Ok(Some(j)) = jobs::get(&app.state, &id).await {
                if j.status == jobs::status::DELETED {
                    let _ = files::remove_job(app.bulk.store.as_ref(), &id).await;
                }
            }
            return;
        }
        Err(Stop::Failed(msg)) => {
            tracing::warn!(job = %id, error = %msg, "bulk: job failed");
            progress.errors.push(msg);
            jobs::status::FAILED
        }
    };
    if let Err(e) = write_error_file(app, &id, &mut progress).await {
        progress.errors.push(format!("error file: {e}"));
    }
    match jobs::finish(&app.state, &id, owner, status, &progress, super::now_ms()).await {
        Ok(true) => tracing::info!(job = %id, status, "bulk: job finished"),
        Ok(false) => {
            let _ = files::remove_job(app.bulk.store.as_ref(), &id).await;
        }
        Err(e) => tracing::warn!(job = %id, error = %e, "bulk: cannot finish job"),
    }
}

/// One OperationOutcome per error, plus the informational consent count.
async fn write_error_file(app: &AppState, job: &str, p: &mut Progress) -> object_store::Result<()> {
    let mut lines: Vec<Value> = p
        .errors
        .iter()
        .map(|m| {
            json!({"resourceType": "OperationOutcome", "issue": [{
                "severity": "error", "code": "processing", "diagnostics": m}]})
        })
        .collect();
    if p.withheld > 0 {
        lines.push(json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "suppressed",
            "diagnostics": format!("{} resources were withheld by patient consent or policy", p.withheld)}]}));
    }
    p.error.clear();
    if lines.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    for l in &lines {
        bytes.extend_from_slice(l.to_string().as_bytes());
        bytes.push(b'\n');
    }
    let name = "OperationOutcome-1.ndjson";
    files::put(app.bulk.store.as_ref(), job, name, bytes).await?;
    p.error.push(FileEntry {
        type_: "OperationOutcome".into(),
        name: name.into(),
        count: lines.len() as u64,
    });
    Ok(())
}

async fn export(app: &AppState, owner: &str, job: &Job, p: &mut Progress) -> Result<(), Stop> {
    let caller = job.caller.context().map_err(Stop::Failed)?;
    if let jobs::Task::BulkMemberMatch { input } = &job.spec.task {
        // a queued PDex `$bulk-member-match`: one answer file
        p.output = crate::payer::bulk_match::run_job(app, job, &caller, input)
            .await
            .map_err(Stop::Failed)?;
        p.done = p.types.clone();
        return Ok(());
    }
    let spec = &job.spec;
    if p.types.is_empty() {
        p.types = if spec.types.is_empty() {
            let mut t = compartment_defaults();
            if spec.level == Level::System {
                t.extend(SYSTEM_EXTRA.iter().map(|s| (*s).to_owned()));
            }
            t
        } else {
            spec.types.clone()
        };
    }
    // a de-identified export: its research gate and de-identifier (the
    // upstream's own `$export` is not used: every page is released here)
    let deid = crate::deid::export::Deidentification::open(app, job).map_err(Stop::Failed)?;
    if deid.is_none() && super::upstream_export::handles(app, job) {
        // the HTTP upstream's own `$export` (`bulk.upstream_export`)
        return super::upstream_export::run(app, owner, job, &caller, p).await;
    }
    let patients = patients(app, job, &caller).await?;
    let types = p.types.clone();
    for t in types {
        if p.done.contains(&t) {
            continue;
        }
        // A Consent change while paging ends the sealed paging (410): the
        // type is exported again from the start, once.
        let mut attempt = 0;
        let (outcome, files_written, deleted, withheld) = loop {
            let mut ex = TypeExport::new(app, owner, job, &caller, &t, deid.as_ref());
            let outcome = ex.run(patients.as_deref()).await;
            let (files_written, deleted, withheld) = ex.finish().await?;
            let gone =
                matches!(&outcome, Err(Stop::Failed(m)) if m.starts_with(&format!("{t}: 410")));
            if gone && attempt == 0 {
                attempt += 1;
                continue;
            }
            break (outcome, files_written, deleted, withheld);
        };
        match outcome {
            Ok(()) => {}
            Err(Stop::Failed(m)) => {
                // A type the client may not read is skipped silently when
                // it came from the default list; named types report it.
                if !(spec.types.is_empty() && m.contains("403")) {
                    p.errors.push(m);
                }
            }
            Err(Stop::Released) => return Err(Stop::Released),
        }
        p.output.extend(files_written);
        p.deleted.extend(deleted);
        p.withheld += withheld;
        p.done.push(t);
        match jobs::checkpoint(&app.state, &job.id, owner, p).await {
            Ok(true) => {}
            Ok(false) => return Err(Stop::Released),
            Err(e) => return Err(Stop::Failed(format!("checkpoint: {e}"))),
        }
    }
    Ok(())
}

/// The patients a patient- or group-level export is limited to (None: all).
async fn patients(
    app: &AppState,
    job: &Job,
    caller: &AccessContext,
) -> Result<Option<Vec<String>>, Stop> {
    let named = &job.spec.patients;
    match &job.spec.level {
        Level::System => Ok(None),
        Level::Patient if named.is_empty() => Ok(None),
        Level::Patient => Ok(Some(named.clone())),
        Level::Group(gid) => {
            let rid = format!("bulk-{}", job.id);
            let body = super::kickoff::read_group(app, caller, gid, &rid)
                .await
                .map_err(|e| Stop::Failed(format!("Group/{gid}: {} {}", e.status, e.message)))?;
            // members as the Group rules give them to this client (ended
            // periods, opted-out members left out)
            let mut ids = crate::payer::groups::exportable_members(app, &caller.client_id, &body)
                .await
                .map_err(|e| Stop::Failed(format!("Group/{gid}: {} {}", e.status, e.message)))?;
            if !named.is_empty() {
                ids.retain(|i| named.contains(i));
            }
            Ok(Some(ids))
        }
    }
}
