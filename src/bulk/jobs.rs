//! The `bulk_job` table on both state-store backends: insert, read, claim
//! with a lease, renew, checkpoint, finish, delete. Every statement is
//! written once with `?` placeholders and numbered for PostgreSQL.

use serde::{Deserialize, Serialize};
use smart_launch::{context::AccessContext, scope::ScopeSet};
use sqlx::Row;

use crate::state::StateStore;

/// A job's lifecycle states.
pub mod status {
    /// Waiting for a worker.
    pub const QUEUED: &str = "queued";
    /// A worker holds (or held) the lease.
    pub const RUNNING: &str = "running";
    /// Files are ready.
    pub const COMPLETE: &str = "complete";
    /// Stopped by an error that left no usable result.
    pub const FAILED: &str = "failed";
    /// Deleted by the client (files removed).
    pub const DELETED: &str = "deleted";
}

/// The export level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", content = "group", rename_all = "lowercase")]
pub enum Level {
    /// `[base]/$export`.
    System,
    /// `[base]/Patient/$export`.
    Patient,
    /// `[base]/Group/{id}/$export`.
    Group(String),
}

/// What to export, as validated at kick-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Level (and Group id).
    pub level: Level,
    /// `_type` (empty: every default type the client may read).
    pub types: Vec<String>,
    /// `_since` (a FHIR instant).
    pub since: Option<String>,
    /// `_elements`, as given (`Type.element` or `element`).
    pub elements: Vec<String>,
    /// `_typeFilter`: `(type, query)` pairs, OR'd per type.
    pub type_filters: Vec<(String, String)>,
    /// `patient` (POST): patient ids the export is limited to.
    pub patients: Vec<String>,
    /// What the job does (an export unless a payer operation queued it).
    #[serde(default)]
    pub task: Task,
    /// A de-identified export's profile, key set and purpose (`src/deid/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deid: Option<crate::deid::export::DeidSpec>,
}

/// The work of a job: a Bulk Data export, or an asynchronous payer
/// operation that reuses the job machinery (leases, status polling, files,
/// DELETE, expiry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Task {
    /// `$export` (and `$davinci-data-export`).
    #[default]
    Export,
    /// PDex `Group/$bulk-member-match` kicked off with `Prefer:
    /// respond-async`: the `Parameters` body as received.
    BulkMemberMatch {
        /// The request body.
        input: serde_json::Value,
    },
}

/// The kick-off token's claims, kept so the worker acts as the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCaller {
    /// OAuth client.
    pub client_id: String,
    /// Granted scopes, space separated.
    pub scope: String,
    /// Launch patient.
    pub patient: Option<String>,
    /// Signed-in user's resource.
    pub fhir_user: Option<String>,
    /// Role.
    pub role: Option<String>,
    /// Token id.
    pub jti: String,
    /// Token expiry.
    pub expires_at: i64,
    /// Purpose of use.
    pub purpose_of_use: Option<String>,
    /// The organization the caller acts for (absent in jobs stored before
    /// the token carried one).
    #[serde(default)]
    pub organization: Option<String>,
}

impl StoredCaller {
    /// From the authenticated kick-off.
    pub fn of(c: &AccessContext) -> Self {
        Self {
            client_id: c.client_id.clone(),
            scope: c.scopes.to_string(),
            patient: c.patient.clone(),
            fhir_user: c.fhir_user.clone(),
            role: c.role.clone(),
            jti: c.jti.clone(),
            expires_at: c.expires_at,
            purpose_of_use: c.purpose_of_use.clone(),
            organization: c.organization.clone(),
        }
    }

    /// Back to an access context (the scope string was valid at kick-off).
    pub fn context(&self) -> Result<AccessContext, String> {
        Ok(AccessContext {
            client_id: self.client_id.clone(),
            scopes: ScopeSet::parse(&self.scope).map_err(|e| format!("stored scope: {e:?}"))?,
            patient: self.patient.clone(),
            encounter: None,
            fhir_user: self.fhir_user.clone(),
            role: self.role.clone(),
            jti: self.jti.clone(),
            expires_at: self.expires_at,
            purpose_of_use: self.purpose_of_use.clone(),
            organization: self.organization.clone(),
            assurance: Default::default(),
        })
    }
}

/// One output (or error) file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Resource type of every line.
    #[serde(rename = "type")]
    pub type_: String,
    /// File name below the job (`Observation-1.ndjson`).
    pub name: String,
    /// Lines.
    pub count: u64,
}

/// A job's checkpoint: what is finished for good.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// Types to export, in order (resolved by the worker on first run).
    pub types: Vec<String>,
    /// Types fully written.
    pub done: Vec<String>,
    /// Output files of the finished types.
    pub output: Vec<FileEntry>,
    /// Error file(s) (OperationOutcome NDJSON).
    pub error: Vec<FileEntry>,
    /// Deletion files (transaction Bundles of DELETE entries, with `_since`).
    pub deleted: Vec<FileEntry>,
    /// Error messages (never resource ids).
    pub errors: Vec<String>,
    /// Resources consent withheld (counts only).
    pub withheld: u64,
}

/// One row.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id (UUID).
    pub id: String,
    /// Owner client.
    pub client_id: String,
    /// See [`status`].
    pub status: String,
    /// Kick-off URL.
    pub request: String,
    /// What to export.
    pub spec: Spec,
    /// Who asked.
    pub caller: StoredCaller,
    /// Kick-off time (FHIR instant).
    pub transaction_time: String,
    /// Checkpoint.
    pub progress: Progress,
    /// Last poll (ms).
    pub last_poll: Option<i64>,
    /// Finish time (ms).
    pub finished: Option<i64>,
}

type DbResult<T> = Result<T, sqlx::Error>;

fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! execute {
    ($store:expr, $sql:expr $(, $b:expr)*) => {
        match $store {
            StateStore::Sqlite(p) => sqlx::query($sql)$(.bind($b))*.execute(p).await.map(|r| r.rows_affected()),
            StateStore::Postgres(p) => sqlx::query(&pg($sql))$(.bind($b))*.execute(p).await.map(|r| r.rows_affected()),
        }
    };
}

macro_rules! fetch_jobs {
    ($store:expr, $sql:expr $(, $b:expr)*) => {
        match $store {
            StateStore::Sqlite(p) => {
                let rows = sqlx::query($sql)$(.bind($b))*.fetch_all(p).await?;
                rows.iter().map(|r| row_to_job!(r)).collect::<DbResult<Vec<Job>>>()
            }
            StateStore::Postgres(p) => {
                let rows = sqlx::query(&pg($sql))$(.bind($b))*.fetch_all(p).await?;
                rows.iter().map(|r| row_to_job!(r)).collect::<DbResult<Vec<Job>>>()
            }
        }
    };
}

macro_rules! row_to_job {
    ($r:expr) => {{
        let r = $r;
        let json = |col: &str| -> DbResult<String> { r.try_get::<String, _>(col) };
        Ok(Job {
            id: r.try_get("id")?,
            client_id: r.try_get("client_id")?,
            status: r.try_get("status")?,
            request: r.try_get("request")?,
            spec: parse(&json("spec")?)?,
            caller: parse(&json("caller")?)?,
            transaction_time: r.try_get("transaction_time")?,
            progress: parse(&json("progress")?)?,
            last_poll: r.try_get("last_poll")?,
            finished: r.try_get("finished")?,
        })
    }};
}

const COLUMNS: &str =
    "id, client_id, status, request, spec, caller, transaction_time, progress, last_poll, finished";

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> DbResult<T> {
    serde_json::from_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn text<T: Serialize>(v: &T) -> DbResult<String> {
    serde_json::to_string(v).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Inserts a queued job.
pub async fn insert(store: &StateStore, job: &Job, now: i64) -> DbResult<()> {
    execute!(
        store,
        "INSERT INTO bulk_job (id, client_id, status, request, spec, caller, transaction_time, progress, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        job.id.as_str(),
        job.client_id.as_str(),
        job.status.as_str(),
        job.request.as_str(),
        text(&job.spec)?,
        text(&job.caller)?,
        job.transaction_time.as_str(),
        text(&job.progress)?,
        now
    )
    .map(|_| ())
}

/// Reads a job.
pub async fn get(store: &StateStore, id: &str) -> DbResult<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM bulk_job WHERE id = ?");
    Ok(fetch_jobs!(store, &sql, id)?.into_iter().next())
}

/// Jobs queued or running.
pub async fn count_active(store: &StateStore) -> DbResult<i64> {
    let sql = "SELECT COUNT(*) FROM bulk_job WHERE status IN ('queued', 'running')";
    match store {
        StateStore::Sqlite(p) => sqlx::query(sql).fetch_one(p).await?.try_get(0),
        StateStore::Postgres(p) => sqlx::query(sql).fetch_one(p).await?.try_get(0),
    }
}

/// Claims the oldest unfinished job whose lease is free or ran out.
pub async fn claim(
    store: &StateStore,
    owner: &str,
    now: i64,
    lease_ms: i64,
) -> DbResult<Option<Job>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM bulk_job WHERE status IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < ?) ORDER BY created LIMIT 8"
    );
    for job in fetch_jobs!(store, &sql, now)? {
        let won = execute!(
            store,
            "UPDATE bulk_job SET status = 'running', lease_owner = ?, lease_until = ? WHERE id = ? AND status IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < ?)",
            owner,
            now + lease_ms,
            job.id.as_str(),
            now
        )?;
        if won == 1 {
            return Ok(Some(job));
        }
    }
    Ok(None)
}

/// Renews the lease; false when the job was deleted or taken over.
pub async fn renew(store: &StateStore, id: &str, owner: &str, until: i64) -> DbResult<bool> {
    Ok(execute!(
        store,
        "UPDATE bulk_job SET lease_until = ? WHERE id = ? AND lease_owner = ? AND status = 'running'",
        until,
        id,
        owner
    )? == 1)
}

/// Saves the checkpoint (only while holding the lease).
pub async fn checkpoint(store: &StateStore, id: &str, owner: &str, p: &Progress) -> DbResult<bool> {
    Ok(execute!(
        store,
        "UPDATE bulk_job SET progress = ? WHERE id = ? AND lease_owner = ? AND status = 'running'",
        text(p)?,
        id,
        owner
    )? == 1)
}

/// Finishes the job (complete or failed) and releases the lease.
pub async fn finish(
    store: &StateStore,
    id: &str,
    owner: &str,
    status: &str,
    p: &Progress,
    now: i64,
) -> DbResult<bool> {
    Ok(execute!(
        store,
        "UPDATE bulk_job SET status = ?, progress = ?, finished = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ? AND status = 'running'",
        status,
        text(p)?,
        now,
        id,
        owner
    )? == 1)
}

/// Records a status poll.
pub async fn polled(store: &StateStore, id: &str, now: i64) -> DbResult<()> {
    execute!(
        store,
        "UPDATE bulk_job SET last_poll = ? WHERE id = ?",
        now,
        id
    )
    .map(|_| ())
}

/// Marks the job deleted (a running worker stops at its next renewal).
pub async fn mark_deleted(store: &StateStore, id: &str, now: i64) -> DbResult<()> {
    execute!(
        store,
        "UPDATE bulk_job SET status = 'deleted', finished = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?",
        now,
        id
    )
    .map(|_| ())
}

/// Complete or failed jobs that finished before `before` (their files expire).
pub async fn expired(store: &StateStore, before: i64) -> DbResult<Vec<String>> {
    let sql = "SELECT id FROM bulk_job WHERE status IN ('complete', 'failed') AND finished < ?";
    match store {
        StateStore::Sqlite(p) => sqlx::query(sql)
            .bind(before)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect(),
        StateStore::Postgres(p) => sqlx::query(&pg(sql))
            .bind(before)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect(),
    }
}
