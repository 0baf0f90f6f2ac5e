//! The consent decision index (issue 4, item 4): every Consent the facade
//! knows, kept per patient in the shared state store (SQLite or PostgreSQL,
//! tables in `0004_consent.sql`), plus each replica's in-memory cache of the
//! parsed Consents.
//!
//! # Where Consents come from
//! - [`ConsentIndex::record`] / [`ConsentIndex::forget`]: the pipeline calls
//!   them after a Consent is written or deleted through the facade.
//! - [`ConsentIndex::sync`] (on a timer: [`ConsentIndex::spawn_poller`]):
//!   polls the upstream for Consents changed elsewhere (`_lastUpdated`) and
//!   for deletions (type history); see [`poll`].
//!
//! # Freshness on every replica
//! Every change to a patient's Consents bumps that patient's row in
//! `consent_generation`, in the same transaction as the change. The cache is
//! keyed by generation: [`ConsentIndex::for_patients`] reads the generations
//! of all requested patients in one query and serves a cached entry only when
//! its generation equals the stored one, so a revocation written through (or
//! polled by) any replica takes effect on the very next request on every
//! replica. A patient without a generation row has generation 0 and no
//! Consents (answered without a second query). Decision caches downstream can
//! key on `(patient, generation)`.
//!
//! # Versions and deletions
//! An upsert is ignored unless it is newer than the stored row: versionIds
//! are compared numerically when both are integers, else `meta.lastUpdated`
//! (as instants); when neither can be compared the incoming one wins. A
//! deletion leaves a tombstone (`deleted = 1`, body dropped) carrying the
//! delete's version when known, so a stale copy polled before the delete
//! cannot resurrect it. Writes serialise per Consent (`BEGIN IMMEDIATE` on
//! SQLite, a transaction-scoped advisory lock on PostgreSQL).
//!
//! # Patients
//! `Consent.patient.reference` is normalised to `Patient/<id>` (an absolute
//! URL ending in `/Patient/<id>`, or a `/_history/<v>` suffix, is cut down);
//! any other reference is stored as written and never matches a lookup. A
//! Consent without a patient reference is kept (and listed by id) but is
//! served to no patient. The parsed [`ConsentModel::patient`] is set to the
//! normalised reference, so the evaluator's patient comparison holds for
//! absolute references too.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use serde_json::Value;

use super::{parse_consent, ConsentModel};
use crate::{error::FhirError, state::StateStore};

use crate::state::on_pool;

pub mod poll;
mod store;

/// Cached patients per replica; when full, arbitrary entries are evicted.
pub const CACHE_CAPACITY: usize = 100_000;
/// Binds per `IN (…)` list (one query per this many patients).
const IN_CHUNK: usize = 500;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The state store failed (the caller fails closed: 503).
    #[error("consent index store: {0}")]
    Store(#[from] sqlx::Error),
    /// The upstream failed while polling for Consent changes.
    #[error("consent sync upstream: {0}")]
    Upstream(FhirError),
    /// What was given to [`ConsentIndex::record`] is not a stored Consent.
    #[error("not a stored Consent: {0}")]
    NotAConsent(&'static str),
    /// A stored body cannot be read back.
    #[error("consent index data is corrupt: {0}")]
    Corrupt(String),
}

impl From<IndexError> for FhirError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Store(e) => FhirError::unavailable(format!("consent index: {e}")),
            IndexError::Upstream(e) => e,
            IndexError::NotAConsent(m) => FhirError::bad_gateway(format!("consent index: {m}")),
            IndexError::Corrupt(m) => FhirError::internal(format!("consent index: {m}")),
        }
    }
}

/// A stored Consent that does not parse. The pipeline must fail closed on
/// it while it may be active ([`Unreadable::may_be_active`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// `Consent.id`.
    pub consent_id: String,
    /// `Consent.status` as written (None: absent or not a string).
    pub status: Option<String>,
    /// Why it does not parse (an element path and reason, no values).
    pub error: String,
}

impl Unreadable {
    /// True unless the status says it is not in force.
    pub fn may_be_active(&self) -> bool {
        matches!(self.status.as_deref(), None | Some("active"))
    }
}

/// One patient's Consents at one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientConsents {
    /// `Patient/<id>`.
    pub patient: String,
    /// The generation these were loaded at (0: the patient has none).
    pub generation: i64,
    /// Every stored (not deleted) Consent that parses, any status, by id;
    /// `patient` is the normalised reference.
    pub consents: Vec<ConsentModel>,
    /// Stored Consents that do not parse, by id.
    pub unreadable: Vec<Unreadable>,
}

impl PatientConsents {
    fn empty(patient: &str) -> Self {
        Self {
            patient: patient.to_owned(),
            generation: 0,
            consents: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    /// Whether an unreadable Consent may be in force (fail closed).
    pub fn has_unreadable_active(&self) -> bool {
        self.unreadable.iter().any(Unreadable::may_be_active)
    }
}

/// `Consent.patient.reference` as an index key: `Patient/<id>` for a
/// relative or absolute Patient reference (with or without `/_history/<v>`),
/// else None.
pub fn patient_key(reference: &str) -> Option<String> {
    let r = reference.trim();
    let r = match r.find("/_history/") {
        Some(i) => &r[..i],
        None => r,
    };
    let mut parts = r.rsplit('/');
    let id = parts.next()?;
    let ty = parts.next()?;
    let relative_ok = r == format!("Patient/{id}");
    let absolute_ok = r.contains("://") && ty == "Patient";
    if ty == "Patient" && crate::fhir::is_valid_id(id) && (relative_ok || absolute_ok) {
        Some(format!("Patient/{id}"))
    } else {
        None
    }
}

/// The decision index on a state store. Cheap to clone (one shared cache).
#[derive(Debug, Clone)]
pub struct ConsentIndex {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: StateStore,
    cache: Mutex<HashMap<String, Arc<PatientConsents>>>,
    capacity: usize,
}

impl ConsentIndex {
    /// The index in `store` (its tables come with the store's migrations).
    pub fn new(store: StateStore) -> Self {
        Self::with_capacity(store, CACHE_CAPACITY)
    }

    /// As [`ConsentIndex::new`] with another cache bound (at least 1).
    pub fn with_capacity(store: StateStore, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                cache: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
            }),
        }
    }

    pub(crate) fn store(&self) -> &StateStore {
        &self.inner.store
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Arc<PatientConsents>>> {
        // A panic elsewhere cannot leave the map inconsistent (every update
        // is one insert or remove), so a poisoned lock is still usable.
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of cached patients (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.cache().len()
    }

    /// The Consents of each patient (`Patient/<id>`; absolute references are
    /// normalised for the lookup), keyed by the strings given. Generations
    /// are read in one query; unchanged patients come from the cache, the
    /// others are reloaded together in one query (per 500 patients).
    pub async fn for_patients(
        &self,
        patients: &[String],
    ) -> Result<HashMap<String, Arc<PatientConsents>>, IndexError> {
        let key = |p: &String| patient_key(p).unwrap_or_else(|| p.clone());
        let keys: Vec<String> = patients
            .iter()
            .map(key)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let generations = self.generations(&keys).await?;
        let mut found: HashMap<String, Arc<PatientConsents>> = HashMap::with_capacity(keys.len());
        let mut stale: Vec<(String, i64)> = Vec::new();
        {
            let cache = self.cache();
            for k in keys {
                let generation = generations.get(&k).copied().unwrap_or(0);
                if generation == 0 {
                    let empty = Arc::new(PatientConsents::empty(&k));
                    found.insert(k, empty);
                    continue;
                }
                match cache.get(&k) {
                    Some(c) if c.generation == generation => {
                        found.insert(k, c.clone());
                    }
                    _ => stale.push((k, generation)),
                }
            }
        }
        if !stale.is_empty() {
            let loaded = self.load(&stale).await?;
            let mut cache = self.cache();
            for pc in loaded {
                let pc = Arc::new(pc);
                let newer = cache
                    .get(&pc.patient)
                    .is_none_or(|c| c.generation <= pc.generation);
                if newer {
                    if !cache.contains_key(&pc.patient) && cache.len() >= self.inner.capacity {
                        if let Some(victim) = cache.keys().next().cloned() {
                            cache.remove(&victim);
                        }
                    }
                    cache.insert(pc.patient.clone(), pc.clone());
                }
                found.insert(pc.patient.clone(), pc);
            }
        }
        Ok(patients
            .iter()
            .filter_map(|p| found.get(&key(p)).map(|c| (p.clone(), c.clone())))
            .collect())
    }

    /// The stored generations of these patients (absent: none stored).
    async fn generations(&self, keys: &[String]) -> Result<HashMap<String, i64>, IndexError> {
        let mut out = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(IN_CHUNK) {
            // asked on every request: read in place on a SQLite file (`inline`)
            if let StateStore::Sqlite(p) = self.store() {
                if let Some(rows) = crate::state::inline::read(p, |c| {
                    let sql = format!(
                        "SELECT patient, generation FROM consent_generation WHERE patient IN ({})",
                        vec!["?"; chunk.len()].join(", ")
                    );
                    let mut st = c.prepare_cached(&sql)?;
                    let rows = st.query_map(rusqlite::params_from_iter(chunk), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                }) {
                    out.extend(rows?);
                    continue;
                }
            }
            let rows: Vec<(String, i64)> = on_pool!(self.store(), |p| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT patient, generation FROM consent_generation WHERE patient IN (",
                );
                let mut list = q.separated(", ");
                for k in chunk {
                    list.push_bind(k.as_str());
                }
                q.push(")");
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Loads and parses the Consents of these patients at these generations.
    async fn load(&self, stale: &[(String, i64)]) -> Result<Vec<PatientConsents>, IndexError> {
        let mut by_patient: HashMap<&str, PatientConsents> = stale
            .iter()
            .map(|(k, g)| {
                let mut pc = PatientConsents::empty(k);
                pc.generation = *g;
                (k.as_str(), pc)
            })
            .collect();
        for chunk in stale.chunks(IN_CHUNK) {
            type LoadRow = (String, Option<String>, Option<String>, Option<String>);
            let rows: Vec<LoadRow> = on_pool!(self.store(), |p| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT consent_id, patient, status, body FROM consent_index WHERE deleted = 0 AND patient IN (",
                );
                let mut list = q.separated(", ");
                for (k, _) in chunk {
                    list.push_bind(k.as_str());
                }
                q.push(") ORDER BY consent_id");
                q.build_query_as().fetch_all(p).await
            })?;
            for (id, patient, status, body) in rows {
                let Some(pc) = patient.as_deref().and_then(|p| by_patient.get_mut(p)) else {
                    continue;
                };
                match compile(&pc.patient, body.as_deref()) {
                    Ok(model) => pc.consents.push(model),
                    Err(error) => pc.unreadable.push(Unreadable {
                        consent_id: id,
                        status,
                        error,
                    }),
                }
            }
        }
        Ok(by_patient.into_values().collect())
    }

    /// The raw stored (not deleted) Consents of a patient, by id, for the
    /// portal and explanations.
    pub async fn list(&self, patient: &str) -> Result<Vec<Value>, IndexError> {
        let key = patient_key(patient).unwrap_or_else(|| patient.to_owned());
        let sql =
            "SELECT body FROM consent_index WHERE deleted = 0 AND patient = $1 ORDER BY consent_id";
        let rows: Vec<(Option<String>,)> = on_pool!(self.store(), |p| sqlx::query_as(sql)
            .bind(&key)
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(|(body,)| {
                serde_json::from_str(body.as_deref().unwrap_or(""))
                    .map_err(|_| IndexError::Corrupt("a stored Consent body is not JSON".into()))
            })
            .collect()
    }
}

/// Parses a stored body for `patient`; the error text names no values.
fn compile(patient: &str, body: Option<&str>) -> Result<ConsentModel, String> {
    let v: Value = serde_json::from_str(body.unwrap_or(""))
        .map_err(|_| "stored body is not JSON".to_owned())?;
    let mut model = parse_consent(&v).map_err(|e| e.to_string())?;
    model.patient = Some(patient.to_owned());
    Ok(model)
}

#[cfg(test)]
#[path = "tests_index.rs"]
mod tests;
