//! The group-commit batcher: one writer per process owns the appends.
//!
//! Requests submit their events over a bounded channel with a oneshot
//! reply. The writer takes what is queued (up to `batch_max` events), then:
//! 1. takes the data keys of every pseudonym in the batch from the vault's
//!    memory, fetching (or creating) only the ones not kept yet (one query),
//!    so a key failure stops the batch before the chain grows; a kept key
//!    erased meanwhile fails the append inside its transaction, and the
//!    batch is sealed again under fresh keys, once;
//! 2. appends the chained entries in one transaction: under the ledger
//!    lock, once the seqs are known, each payload is sealed with its seq and
//!    pseudonym as associated data, and the payloads and their search
//!    columns are written in the same transaction (one durable commit, one
//!    fsync, for the whole batch: the group commit);
//! 3. answers every request with its seqs.
//!
//! Any failure answers every request of the batch with an error (they fail
//! closed with 503) and leaves nothing behind: entries and payloads commit
//! together or not at all.
//!
//! On a SQLite file the writer is a thread of its own appending through
//! [`Appender`] (its own connection, prepared statements): a batch crosses
//! threads once on the way in and once on the way out. On PostgreSQL (and an
//! in-memory SQLite database) it is a task appending through
//! [`Ledger::append_with`] on the pool.
//!
//! On SQLite, after every [`CHECKPOINT_EVERY`] batches the writer copies the
//! write-ahead log into the main file (a PASSIVE checkpoint) as soon as no
//! request is queued. Otherwise SQLite checkpoints inside whichever commit
//! takes the log past 1,000 pages, and the requests of that batch wait for a
//! few megabytes to be copied and synced: about 2 % of the batches under the
//! gateway benchmark's reads took 2.5 ms or more, against 0.3 % with this.

use std::{collections::HashMap, time::Instant};

use tokio::sync::{mpsc, oneshot};

use super::{
    appender::Appender,
    error::AuditError,
    events::Event,
    ledger::Sidecar,
    store::{self, PayloadRow},
    vault::{self, Vault},
    Ledger, NewEntry,
};

type Reply = oneshot::Sender<Result<Vec<u64>, String>>;

/// Batches after which the writer, when no request is queued, checkpoints
/// SQLite's write-ahead log ([`Appender::checkpoint_wal`]).
pub const CHECKPOINT_EVERY: u32 = 8;

struct Job {
    events: Vec<Event>,
    reply: Reply,
}

/// The handle requests submit through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} events)", self.events.len())
    }
}

impl Writer {
    /// Starts the writer: a thread on a SQLite file, else a task (needs a
    /// Tokio runtime either way).
    pub fn spawn(ledger: Ledger, vault: Vault, batch_max: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let batch_max = batch_max.max(1);
        match Appender::for_store(&ledger.store) {
            Some(appender) => {
                let rt = tokio::runtime::Handle::current();
                let started = std::thread::Builder::new()
                    .name("fhirgate-audit".into())
                    .spawn(move || run_on_thread(rx, appender, vault, batch_max, rt));
                if let Err(e) = started {
                    // the receiver went with the closure: every submit
                    // fails closed (503)
                    tracing::error!(error = %e, "the audit writer thread did not start");
                }
            }
            None => {
                tokio::spawn(run(rx, ledger, vault, batch_max));
            }
        }
        Self { tx }
    }

    /// Submits one request's events; resolves when they are durable, with
    /// their seqs in order.
    pub async fn submit(&self, events: Vec<Event>) -> Result<Vec<u64>, AuditError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { events, reply })
            .await
            .map_err(|_| AuditError::Unavailable("the writer has stopped".into()))?;
        match rx.await {
            Ok(Ok(seqs)) => Ok(seqs),
            Ok(Err(e)) => Err(AuditError::Unavailable(e)),
            Err(_) => Err(AuditError::Unavailable(
                "the writer dropped the request".into(),
            )),
        }
    }
}

/// `first` and the jobs queued behind it, up to `batch_max` events.
fn gather(first: Job, rx: &mut mpsc::Receiver<Job>, batch_max: usize) -> Vec<Job> {
    let mut n = first.events.len();
    let mut jobs: Vec<Job> = vec![first];
    while n < batch_max {
        match rx.try_recv() {
            Ok(job) => {
                n += job.events.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    jobs
}

/// The chained parts, moved into the ledger's batch (no copy); the events
/// keep what sealing and the search columns need.
fn take_entries(jobs: &mut [Job]) -> Vec<NewEntry> {
    jobs.iter_mut()
        .flat_map(|j| j.events.iter_mut())
        .map(|e| NewEntry {
            request_id: e.request_id.clone(),
            entry: std::mem::take(&mut e.entry),
        })
        .collect()
}

/// Records the batch's metrics and answers every job of it.
fn answer(jobs: Vec<Job>, result: Result<Vec<u64>, AuditError>, started: Instant) {
    let appended = result.as_ref().ok().map(Vec::len);
    crate::observability::metrics::registry().ledger_append(started.elapsed(), appended);
    match result {
        Ok(seqs) => {
            tracing::debug!(
                events = seqs.len(),
                requests = jobs.len(),
                micros = started.elapsed().as_micros() as u64,
                "audit batch appended"
            );
            let mut rest = seqs.as_slice();
            for job in jobs {
                let (mine, tail) = rest.split_at(job.events.len().min(rest.len()));
                rest = tail;
                let _ = job.reply.send(Ok(mine.to_vec()));
            }
        }
        Err(e) => {
            let events: usize = jobs.iter().map(|j| j.events.len()).sum();
            tracing::error!(error = %e, events, "audit batch failed; requests fail closed");
            let msg = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(msg.clone()));
            }
        }
    }
}

/// The writer task (PostgreSQL, in-memory SQLite).
async fn run(mut rx: mpsc::Receiver<Job>, ledger: Ledger, vault: Vault, batch_max: usize) {
    while let Some(first) = rx.recv().await {
        let started = Instant::now();
        let mut jobs = gather(first, &mut rx, batch_max);
        let entries = take_entries(&mut jobs);
        let events: Vec<&Event> = jobs.iter().flat_map(|j| j.events.iter()).collect();
        let result = commit_entries(&ledger, &vault, &events, &entries).await;
        drop(events);
        answer(jobs, result, started);
    }
}

/// The writer thread (a SQLite file); ends when every [`Writer`] is gone.
fn run_on_thread(
    mut rx: mpsc::Receiver<Job>,
    mut appender: Appender,
    vault: Vault,
    batch_max: usize,
    rt: tokio::runtime::Handle,
) {
    let mut since_checkpoint = 0u32;
    while let Some(first) = rx.blocking_recv() {
        let started = Instant::now();
        let mut jobs = gather(first, &mut rx, batch_max);
        let entries = take_entries(&mut jobs);
        let events: Vec<&Event> = jobs.iter().flat_map(|j| j.events.iter()).collect();
        let result = commit_on_thread(&mut appender, &vault, &events, &entries, &rt);
        drop(events);
        answer(jobs, result, started);
        since_checkpoint += 1;
        if since_checkpoint >= CHECKPOINT_EVERY && rx.is_empty() {
            // Nobody is waiting: copy the log into the main file now,
            // rather than inside a later batch's commit.
            since_checkpoint = 0;
            if let Err(e) = appender.checkpoint_wal() {
                tracing::warn!(error = %e, "WAL checkpoint between audit batches failed");
            }
        }
    }
}

/// [`commit_entries`] on the writer thread, through its [`Appender`] (the
/// vault's keys are awaited on the runtime only when some are not kept).
fn commit_on_thread(
    appender: &mut Appender,
    vault: &Vault,
    events: &[&Event],
    entries: &[NewEntry],
    rt: &tokio::runtime::Handle,
) -> Result<Vec<u64>, AuditError> {
    let pseudonyms = pseudonyms_of(events);
    let mut retried = false;
    loop {
        let keys = rt.block_on(vault.sealing_keys(&pseudonyms))?;
        match appender.append_with(entries, |seqs| seal_rows(events, &keys, seqs)) {
            Err(e) if !retried && vault::is_erased_key_guard(&e) => {
                // A kept key was erased meanwhile: seal again under fresh keys.
                vault.forget();
                retried = true;
            }
            result => return Ok(result?.0),
        }
    }
}

/// Appends one batch (the steps in the module docs); returns the seqs.
pub async fn commit(
    ledger: &Ledger,
    vault: &Vault,
    events: &[&Event],
) -> Result<Vec<u64>, AuditError> {
    let entries: Vec<NewEntry> = events
        .iter()
        .map(|e| NewEntry {
            request_id: e.request_id.clone(),
            entry: e.entry.clone(),
        })
        .collect();
    commit_entries(ledger, vault, events, &entries).await
}

/// [`commit`] with the events' chained parts already taken out
/// (`entries[i]` is `events[i]`'s).
async fn commit_entries(
    ledger: &Ledger,
    vault: &Vault,
    events: &[&Event],
    entries: &[NewEntry],
) -> Result<Vec<u64>, AuditError> {
    let pseudonyms = pseudonyms_of(events);
    let mut retried = false;
    loop {
        let keys = vault.sealing_keys(&pseudonyms).await?;
        match ledger
            .append_with(entries, |seqs| seal_rows(events, &keys, seqs))
            .await
        {
            Err(e) if !retried && vault::is_erased_key_guard(&e) => {
                // A kept key was erased meanwhile: seal again under fresh keys.
                vault.forget();
                retried = true;
            }
            result => return Ok(result?),
        }
    }
}

/// The batch's pseudonyms, each once.
fn pseudonyms_of<'a>(events: &[&'a Event]) -> Vec<&'a str> {
    let mut pseudonyms: Vec<&str> = events.iter().map(|e| e.pseudonym.as_str()).collect();
    pseudonyms.sort_unstable();
    pseudonyms.dedup();
    pseudonyms
}

/// The payload rows of `events` (appended as `seqs`), sealed under `keys`.
fn seal_rows(
    events: &[&Event],
    keys: &HashMap<String, vault::DataKey>,
    seqs: &[u64],
) -> Result<Vec<Sidecar>, String> {
    let mut rows = Vec::with_capacity(events.len());
    for (e, seq) in events.iter().zip(seqs) {
        let key = keys
            .get(e.pseudonym.as_str())
            .ok_or("a data key went missing")?;
        let sealed = vault::seal(key, *seq, &e.pseudonym, &e.payload).map_err(|e| e.to_string())?;
        let types = if e.index.entity_types.is_empty() {
            " ".to_owned()
        } else {
            format!(" {} ", e.index.entity_types.join(" "))
        };
        rows.push((
            PayloadRow {
                seq: *seq as i64,
                pseudonym: e.pseudonym.clone(),
                key_id: key.key_id.clone(),
                recorded: e.index.recorded,
                kind: e.index.kind.clone(),
                action: e.index.action.clone(),
                outcome: e.index.outcome.clone(),
                entity_types: types,
                nonce: sealed.nonce,
                payload: sealed.ciphertext,
            },
            e.index.agents.clone(),
        ));
    }
    Ok(store::sidecars(&rows))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, Instant};

    use super::{Writer, CHECKPOINT_EVERY};
    use crate::{
        audit::{
            events::{Builder, HttpFacts},
            pseudonym::Pseudonymizer,
            vault::Vault,
            Ledger,
        },
        pipeline::disclosure::Disclosure,
        state::StateStore,
    };

    #[tokio::test]
    async fn an_idle_writer_checkpoints_the_log_into_the_main_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        let ledger = Ledger::new(store.clone());
        let vault = Vault::load_or_create(&dir.path().join("keys"), store.clone()).unwrap();
        let writer = Writer::spawn(ledger, vault, 64, 64);
        let b = Builder {
            public_url: "https://gw.example".into(),
            fhir_base: "https://gw.example/fhir".into(),
            pz: Pseudonymizer::new([3; 32]),
        };
        let main = dir.path().join("state.db");
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let before = size(&main);
        // SQLite's own checkpoint waits for 1,000 pages in the log (4 KiB
        // pages, 24-byte frame headers); the migrations left far fewer.
        let wal_frames = size(&dir.path().join("state.db-wal")) / 4_120;
        assert!(wal_frames < 500, "{wal_frames} frames already");
        // One request at a time: after each batch no request is queued.
        for i in 0..CHECKPOINT_EVERY {
            let http = HttpFacts {
                method: "GET".into(),
                path: "/fhir/Patient/x".into(),
                recorded: 1_000,
                ..HttpFacts::default()
            };
            let events = b.fhir(&format!("r{i}"), &http, None, &Disclosure::default(), 200);
            writer.submit(events).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while size(&main) <= before {
            assert!(
                Instant::now() < deadline,
                "state.db is still {before} bytes: the log was not checkpointed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
