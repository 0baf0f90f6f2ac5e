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
/// Entries per cache before it is cleared (a crude bound on memory).
const CACHE_LIMIT: usize = 200_000;

/// The server's consent engine. Cheap to share (`Arc`).
pub struct ConsentEngine {
    /// The deployment policy (base policy, jurisdiction packs, roles, value sets).
    pub policy: Policy,
    /// The per-patient decision index in the state store.
    pub index: ConsentIndex,
    /// Clients exempt from consent (trusted internal pipelines; still audited).
    pub exempt_clients: Vec<String>,
    classes: Mutex<HashMap<String, Arc<Classification>>>,
    states: Mutex<HashMap<String, (Option<String>, Instant)>>,
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
            classes: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
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
            StateStore::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
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
                return c.clone();
            }
        }
        let c = Arc::new(classify::classify(resource, &self.policy.value_sets));
        if let Some(k) = key {
            let mut map = lock(&self.classes);
            if map.len() >= CACHE_LIMIT {
                map.clear();
            }
            map.insert(k, c.clone());
        }
        c
    }

    /// A cached jurisdiction key: `Some(state)` when known and fresh.
    pub fn cached_state(&self, patient: &str) -> Option<Option<String>> {
        lock(&self.states)
            .get(patient)
            .filter(|(_, at)| at.elapsed() < STATE_TTL)
            .map(|(s, _)| s.clone())
    }

    /// Remembers a patient's jurisdiction key.
    pub fn remember_state(&self, patient: &str, state: Option<String>) {
        let mut map = lock(&self.states);
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        map.insert(patient.to_owned(), (state, Instant::now()));
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
