//! The consent engine as the server holds it: the deployment policy, the
//! shared decision index (`index`), and two process-local caches the
//! pipeline's consent stage reads through:
//!
//! - classifications per resource version (`Type/id/_history/v`): a
//!   classification is a pure function of the stored bytes, so a version's
//!   never goes stale;
//! - each patient's jurisdiction key (`Patient.address.state`), refreshed
//!   after [`STATE_TTL`].
//!
//! Both are bounded ([`CLASS_LIMIT`], [`STATE_LIMIT`] entries, [`Bounded`]:
//! two generations, recently used entries kept), so an export that reads
//! every resource once costs the same memory at any data size.
//!
//! Decisions themselves are not cached across requests: they depend on the
//! Consents' generation (checked on every request through the index), the
//! caller and the time, and cost microseconds.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{
    classify,
    index::{ConsentIndex, IndexError},
    Classification, Policy,
};
use crate::state::StateStore;

/// How long a patient's state (jurisdiction key) is trusted.
pub const STATE_TTL: Duration = Duration::from_secs(300);
/// Most classifications kept (about 1 KiB each).
pub const CLASS_LIMIT: usize = 16_384;
/// Most patients' jurisdiction keys kept.
pub const STATE_LIMIT: usize = 65_536;

/// A map of at most `cap` entries: a newer and an older generation of up to
/// `cap / 2` each. Inserts go to the newer; when it is full it becomes the
/// older (the previous older is dropped). A hit in the older generation is
/// moved to the newer, so what is in use survives. O(1) per operation.
#[derive(Debug)]
pub struct Bounded<V> {
    half: usize,
    newer: HashMap<String, V>,
    older: HashMap<String, V>,
}

impl<V: Clone> Bounded<V> {
    /// An empty map holding at most `cap` (at least 2) entries.
    pub fn new(cap: usize) -> Self {
        Self {
            half: (cap / 2).max(1),
            newer: HashMap::new(),
            older: HashMap::new(),
        }
    }

    /// The value of `key`, if kept.
    pub fn get(&mut self, key: &str) -> Option<V> {
        if let Some(v) = self.newer.get(key) {
            return Some(v.clone());
        }
        let v = self.older.remove(key)?;
        self.insert(key.to_owned(), v.clone());
        Some(v)
    }

    /// Keeps `value` under `key` (replacing an older value).
    pub fn insert(&mut self, key: String, value: V) {
        if !self.newer.contains_key(&key) && self.newer.len() >= self.half {
            self.older = std::mem::take(&mut self.newer);
        }
        self.older.remove(&key);
        self.newer.insert(key, value);
    }

    /// Entries kept (never more than the bound).
    pub fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The server's consent engine. Cheap to share (`Arc`).
pub struct ConsentEngine {
    /// The deployment policy (base policy, jurisdiction packs, roles, value sets).
    pub policy: Policy,
    /// The per-patient decision index in the state store.
    pub index: ConsentIndex,
    /// Clients exempt from consent (trusted internal pipelines; still audited).
    pub exempt_clients: Vec<String>,
    classes: Mutex<Bounded<Arc<Classification>>>,
    states: Mutex<Bounded<(Option<String>, Instant)>>,
    store: StateStore,
    seal_key: Vec<u8>,
}

/// State-store meta key of the paging seal secret (shared by replicas).
const SEAL_KEY_META: &str = "consent_seal_key";

impl ConsentEngine {
    /// The engine for a state store: its index, and the paging seal secret
    /// (created on first use and kept in the store, so every replica shares it).
    pub async fn open(
        policy: Policy,
        store: StateStore,
        exempt_clients: Vec<String>,
    ) -> Result<Self, sqlx::Error> {
        let key = match store.meta(SEAL_KEY_META).await? {
            Some(k) => k,
            None => {
                let fresh = smart_launch::token::random_token(32);
                store.set_meta(SEAL_KEY_META, &fresh).await?;
                // another replica may have won the race: read back what is stored
                store.meta(SEAL_KEY_META).await?.unwrap_or(fresh)
            }
        };
        Ok(Self {
            policy,
            index: ConsentIndex::new(store.clone()),
            exempt_clients,
            classes: Mutex::new(Bounded::new(CLASS_LIMIT)),
            states: Mutex::new(Bounded::new(STATE_LIMIT)),
            store,
            seal_key: key.into_bytes(),
        })
    }

    /// The secret paging tokens are sealed with.
    pub fn seal_key(&self) -> &[u8] {
        &self.seal_key
    }

    /// The consent epoch: grows with every change to any patient's Consents
    /// (the sum of the per-patient generations), so a paging token sealed
    /// under an older epoch is refused.
    pub async fn epoch(&self) -> Result<i64, IndexError> {
        let sql = "SELECT CAST(COALESCE(SUM(generation), 0) AS BIGINT) FROM consent_generation";
        let n: i64 = match &self.store {
            // asked on every paged search: read in place on a SQLite file
            StateStore::Sqlite(p) => match crate::state::inline::read(p, |c| {
                c.prepare_cached(sql)?.query_row([], |r| r.get(0))
            }) {
                Some(n) => n,
                None => sqlx::query_scalar(sql).fetch_one(p).await,
            },
            StateStore::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .map_err(IndexError::from)?;
        Ok(n)
    }

    /// Whether a client bypasses consent.
    pub fn is_exempt(&self, client_id: &str) -> bool {
        self.exempt_clients.iter().any(|c| c == client_id)
    }

    /// The classification of a resource, cached per version when it has one.
    pub fn classify(&self, resource: &Value) -> Arc<Classification> {
        let key = version_key(resource);
        if let Some(k) = &key {
            if let Some(c) = lock(&self.classes).get(k) {
                return c;
            }
        }
        let c = Arc::new(classify::classify(resource, &self.policy.value_sets));
        if let Some(k) = key {
            lock(&self.classes).insert(k, c.clone());
        }
        c
    }

    /// A cached jurisdiction key: `Some(state)` when known and fresh.
    pub fn cached_state(&self, patient: &str) -> Option<Option<String>> {
        lock(&self.states)
            .get(patient)
            .filter(|(_, at)| at.elapsed() < STATE_TTL)
            .map(|(s, _)| s)
    }

    /// Remembers a patient's jurisdiction key.
    pub fn remember_state(&self, patient: &str, state: Option<String>) {
        lock(&self.states).insert(patient.to_owned(), (state, Instant::now()));
    }

    /// Entries in the classification and jurisdiction caches (bounded by
    /// [`CLASS_LIMIT`] and [`STATE_LIMIT`]).
    pub fn cache_sizes(&self) -> (usize, usize) {
        (lock(&self.classes).len(), lock(&self.states).len())
    }
}

/// `Type/id/_history/v` when the resource carries all three.
fn version_key(r: &Value) -> Option<String> {
    Some(format!(
        "{}/{}/_history/{}",
        r["resourceType"].as_str()?,
        r["id"].as_str()?,
        r["meta"]["versionId"].as_str()?
    ))
}

/// A poisoned cache lock only means another request panicked mid-insert;
/// the map is still a valid cache.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_at_most_its_bound_and_what_is_used() {
        let mut m: Bounded<u32> = Bounded::new(100);
        m.insert("hot".into(), 0);
        for i in 0..10_000u32 {
            m.insert(format!("k{i}"), i);
            // the hot key is read all along: it survives every turnover
            assert_eq!(m.get("hot"), Some(0));
            assert!(m.len() <= 100, "{} entries", m.len());
        }
        assert_eq!(m.get("k9999"), Some(9999));
        assert_eq!(m.get("k0"), None);
        m.insert("k9999".into(), 1);
        assert_eq!(m.get("k9999"), Some(1));
    }

    #[tokio::test]
    async fn engine_caches_stay_within_their_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        let policy = Policy::starter(super::super::BasePolicy::OptOut);
        let engine = ConsentEngine::open(policy, store, Vec::new())
            .await
            .unwrap();
        for i in 0..(CLASS_LIMIT + 5_000) {
            let r = serde_json::json!({"resourceType": "Observation", "id": format!("o{i}"),
                "meta": {"versionId": "1"}, "subject": {"reference": "Patient/p"}});
            engine.classify(&r);
            engine.remember_state(&format!("Patient/{i}"), None);
        }
        for i in 0..(STATE_LIMIT + 5_000) {
            engine.remember_state(&format!("Patient/{i}"), Some("CA".into()));
        }
        let (classes, states) = engine.cache_sizes();
        assert!(classes <= CLASS_LIMIT, "{classes} classifications kept");
        assert!(states <= STATE_LIMIT, "{states} states kept");
        assert!(classes > 0 && states > 0);
        let last = format!("Patient/{}", STATE_LIMIT + 4_999);
        assert_eq!(engine.cached_state(&last), Some(Some("CA".into())));
    }
}
