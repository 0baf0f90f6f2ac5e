//! The payload vault: the readable AuditEvents beside the chain, encrypted
//! with AES-256-GCM under one data key per patient, and erasure by
//! destroying that key (crypto-shredding).
//!
//! - Data keys: 32 random bytes per patient pseudonym, a row of
//!   `audit_patient_keys` (`0005_audit.sql`), stored wrapped (AES-256-GCM)
//!   under the master key `<data_dir>/keys/audit-master.key` with
//!   `fhirgate-audit-key-v1|<pseudonym>|<key_id>` as associated data.
//!   Events about no patient use the row [`DEPLOYMENT`].
//! - Payloads: AES-256-GCM, a random 96-bit nonce each, associated data
//!   `fhirgate-audit-payload-v1|<seq>|<pseudonym>`, so a payload cannot be
//!   moved to another seq or patient; any changed byte fails decryption.
//! - Erasure: [`Vault::erase`] deletes the patient's key row. The chain is
//!   untouched (it holds no PHI and still verifies); the payloads become
//!   unreadable. A later event about the same patient gets a fresh key
//!   (new `key_id`); the payload row names the key it was sealed under.
//! - The ledger writer seals with [`Vault::sealing_keys`], which keeps the
//!   keys it has used in memory (shared by the vault's clones) instead of
//!   reading them back for every batch. A key erased meanwhile (here or by
//!   another replica) is caught by the store: a payload row naming a key
//!   that no longer exists is refused (`0023_audit_key_guard.sql`,
//!   [`ERASED_KEY_GUARD`]), and the writer then calls [`Vault::forget`] and
//!   seals again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use aes_gcm::{aead::KeyInit, Aes256Gcm};
use rand::RngCore;

use super::{
    ledger::on_pool,
    pseudonym::{load_or_create_secret, KeyFileError},
    LedgerError,
};
use crate::state::StateStore;

/// File name of the master (key-wrapping) key in the keys directory.
pub const MASTER_KEY_FILE: &str = "audit-master.key";
/// The key row of events about no patient.
pub const DEPLOYMENT: &str = "deployment";
/// Pseudonyms per `IN (…)` query.
const CHUNK: usize = 400;
/// Data keys the writer keeps in memory (all are dropped when full).
const SEALING_KEYS: usize = 16_384;
/// The store's refusal of a payload under an erased key (the trigger of
/// `0023_audit_key_guard.sql` raises this message).
pub const ERASED_KEY_GUARD: &str = "audit payload sealed under an erased key";

/// What can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The store failed.
    #[error("audit vault store: {0}")]
    Db(#[from] sqlx::Error),
    /// Encryption or decryption failed (tampered or foreign data).
    #[error("audit vault: {0}")]
    Crypto(String),
    /// The payload's key was destroyed (erasure).
    #[error("the payload's key was erased")]
    Erased,
}

/// One unwrapped data key.
#[derive(Clone)]
pub struct DataKey {
    /// The key's id (payload rows name it).
    pub key_id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.key_id)
    }
}

/// A sealed payload: hex nonce and base64 ciphertext (with the GCM tag).
pub use crate::aead::Sealed;

fn payload_aad(seq: u64, pseudonym: &str) -> String {
    format!("fhirgate-audit-payload-v1|{seq}|{pseudonym}")
}

fn key_aad(pseudonym: &str, key_id: &str) -> String {
    format!("fhirgate-audit-key-v1|{pseudonym}|{key_id}")
}

fn crypto(what: &str) -> VaultError {
    VaultError::Crypto(what.to_owned())
}

/// Encrypts a payload (canonical JSON) for `seq` and `pseudonym`, in its
/// stored form ([`super::compact`]).
pub fn seal(
    key: &DataKey,
    seq: u64,
    pseudonym: &str,
    plaintext: &[u8],
) -> Result<Sealed, VaultError> {
    crate::aead::seal(
        &key.cipher,
        payload_aad(seq, pseudonym).as_bytes(),
        &super::compact::compact(plaintext),
    )
    .ok_or_else(|| crypto("payload encryption failed"))
}

/// Decrypts a payload sealed for `seq` and `pseudonym`: its canonical JSON.
pub fn open(
    key: &DataKey,
    seq: u64,
    pseudonym: &str,
    sealed: &Sealed,
) -> Result<Vec<u8>, VaultError> {
    let stored = crate::aead::open(&key.cipher, sealed, payload_aad(seq, pseudonym).as_bytes())
        .ok_or_else(|| {
            crypto(&format!(
                "payload of seq {seq} fails authentication (tampered)"
            ))
        })?;
    super::compact::expand(&stored).ok_or_else(|| {
        crypto(&format!(
            "payload of seq {seq} names a word this fhirgate does not know (written by a newer version)"
        ))
    })
}

/// The vault: the master key and the key table.
#[derive(Clone)]
pub struct Vault {
    master: Aes256Gcm,
    store: StateStore,
    /// Keys the writer has sealed with, by pseudonym.
    sealing: Arc<Mutex<HashMap<String, DataKey>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

type KeyRow = (String, String, String, String);

impl Vault {
    /// The vault over `store` with the master key in `keys_dir` (created on
    /// first use).
    pub fn load_or_create(
        keys_dir: &std::path::Path,
        store: StateStore,
    ) -> Result<Self, KeyFileError> {
        let path = keys_dir.join(MASTER_KEY_FILE);
        let master = load_or_create_secret(&path)?;
        let master = Aes256Gcm::new_from_slice(&master).map_err(|_| KeyFileError {
            path,
            message: "not an AES-256 key".into(),
        })?;
        Ok(Self {
            master,
            store,
            sealing: Arc::default(),
        })
    }

    fn unwrap_row(&self, (pseudonym, key_id, nonce, wrapped): &KeyRow) -> Option<DataKey> {
        let sealed = Sealed {
            nonce: nonce.clone(),
            ciphertext: wrapped.clone(),
        };
        let raw = crate::aead::open(&self.master, &sealed, key_aad(pseudonym, key_id).as_bytes())?;
        let cipher = Aes256Gcm::new_from_slice(&raw).ok()?;
        Some(DataKey {
            key_id: key_id.clone(),
            cipher,
        })
    }

    async fn rows(&self, pseudonyms: &[&str]) -> Result<Vec<KeyRow>, VaultError> {
        let mut out = Vec::new();
        for chunk in pseudonyms.chunks(CHUNK) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT pseudonym, key_id, nonce, wrapped FROM audit_patient_keys WHERE pseudonym IN ({})",
                marks.join(", ")
            );
            let rows: Vec<KeyRow> = on_pool!(&self.store, |p| {
                let mut q = sqlx::query_as(&sql);
                for s in chunk {
                    q = q.bind(*s);
                }
                q.fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// The current keys of these pseudonyms (absent: never made, or erased).
    pub async fn existing(
        &self,
        pseudonyms: &[&str],
    ) -> Result<HashMap<String, DataKey>, VaultError> {
        let mut out = HashMap::new();
        for row in self.rows(pseudonyms).await? {
            let key = self.unwrap_row(&row).ok_or_else(|| {
                crypto("a patient key does not unwrap under the master key (wrong key file?)")
            })?;
            out.insert(row.0, key);
        }
        Ok(out)
    }

    /// The keys of these pseudonyms, creating the missing ones.
    pub async fn keys_for(
        &self,
        pseudonyms: &[&str],
    ) -> Result<HashMap<String, DataKey>, VaultError> {
        let mut keys = self.existing(pseudonyms).await?;
        let missing: Vec<&str> = pseudonyms
            .iter()
            .copied()
            .filter(|p| !keys.contains_key(*p))
            .collect();
        if missing.is_empty() {
            return Ok(keys);
        }
        let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let mut rows = Vec::with_capacity(missing.len());
        for p in &missing {
            let mut raw = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            let key_id = uuid::Uuid::new_v4().simple().to_string();
            let wrapped = crate::aead::seal(&self.master, key_aad(p, &key_id).as_bytes(), &raw)
                .ok_or_else(|| crypto("key wrapping failed"))?;
            rows.push((*p, key_id, wrapped.nonce, wrapped.ciphertext));
        }
        // One statement (one commit) for all new keys of a batch.
        let insert =
            "INSERT INTO audit_patient_keys (pseudonym, key_id, nonce, wrapped, created_at) ";
        for chunk in rows.chunks(CHUNK) {
            on_pool!(&self.store, |pool| {
                let mut q = sqlx::QueryBuilder::new(insert);
                q.push_values(chunk, |mut b, (p, id, n, w)| {
                    b.push_bind(*p)
                        .push_bind(id.as_str())
                        .push_bind(n.as_str())
                        .push_bind(w.as_str())
                        .push_bind(now);
                });
                q.push(" ON CONFLICT (pseudonym) DO NOTHING");
                q.build().execute(pool).await.map(|_| ())
            })?;
        }
        // A racing replica may have won: read back what is stored.
        keys.extend(self.existing(&missing).await?);
        if keys.len() < pseudonyms.len() {
            return Err(crypto("a patient key could not be created"));
        }
        Ok(keys)
    }

    /// [`Self::keys_for`] for sealing: the keys kept in memory, the store
    /// asked only for the others (see the module docs).
    pub async fn sealing_keys(
        &self,
        pseudonyms: &[&str],
    ) -> Result<HashMap<String, DataKey>, VaultError> {
        let mut keys = HashMap::with_capacity(pseudonyms.len());
        let mut missing = Vec::new();
        if let Ok(kept) = self.sealing.lock() {
            for p in pseudonyms {
                match kept.get(*p) {
                    Some(k) => {
                        keys.insert((*p).to_owned(), k.clone());
                    }
                    None => missing.push(*p),
                }
            }
        } else {
            missing.extend_from_slice(pseudonyms);
        }
        if missing.is_empty() {
            return Ok(keys);
        }
        let fetched = self.keys_for(&missing).await?;
        if let Ok(mut kept) = self.sealing.lock() {
            if kept.len() + fetched.len() > SEALING_KEYS {
                kept.clear();
            }
            kept.extend(fetched.iter().map(|(p, k)| (p.clone(), k.clone())));
        }
        keys.extend(fetched);
        Ok(keys)
    }

    /// Drops the keys kept for sealing (after [`ERASED_KEY_GUARD`]).
    pub fn forget(&self) {
        if let Ok(mut kept) = self.sealing.lock() {
            kept.clear();
        }
    }

    /// Destroys a pseudonym's key (erasure); returns the rows deleted.
    pub async fn erase(&self, pseudonym: &str) -> Result<u64, VaultError> {
        if let Ok(mut kept) = self.sealing.lock() {
            kept.remove(pseudonym);
        }
        let sql = "DELETE FROM audit_patient_keys WHERE pseudonym = $1";
        Ok(on_pool!(&self.store, |p| sqlx::query(sql)
            .bind(pseudonym)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?)
    }
}

/// Whether an append failed on [`ERASED_KEY_GUARD`].
pub fn is_erased_key_guard(e: &LedgerError) -> bool {
    match e {
        LedgerError::Db(sqlx::Error::Database(d)) => d.message().contains(ERASED_KEY_GUARD),
        LedgerError::Sqlite(rusqlite::Error::SqliteFailure(_, Some(m))) => {
            m.contains(ERASED_KEY_GUARD)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::{engine::general_purpose::STANDARD as B64, Engine};

    use super::*;

    fn key(b: u8) -> DataKey {
        DataKey {
            key_id: "k".into(),
            cipher: Aes256Gcm::new_from_slice(&[b; 32]).unwrap(),
        }
    }

    #[test]
    fn payloads_decrypt_and_tampering_is_caught() {
        let k = key(7);
        let s = seal(&k, 5, "pseud", b"{\"a\":1}").unwrap();
        assert_eq!(open(&k, 5, "pseud", &s).unwrap(), b"{\"a\":1}");
        // Another seq, pseudonym or key: refused.
        assert!(open(&k, 6, "pseud", &s).is_err());
        assert!(open(&k, 5, "other", &s).is_err());
        assert!(open(&key(8), 5, "pseud", &s).is_err());
        // Any flipped byte of the ciphertext: refused.
        let mut ct = B64.decode(&s.ciphertext).unwrap();
        for i in [0, ct.len() / 2, ct.len() - 1] {
            ct[i] ^= 1;
            let bad = Sealed {
                nonce: s.nonce.clone(),
                ciphertext: B64.encode(&ct),
            };
            assert!(open(&k, 5, "pseud", &bad).is_err());
            ct[i] ^= 1;
        }
        // A malformed nonce is an error, not a panic.
        let bad = Sealed {
            nonce: "00".into(),
            ciphertext: s.ciphertext.clone(),
        };
        assert!(open(&k, 5, "pseud", &bad).is_err());
        // Fresh nonces: the same plaintext seals differently.
        assert_ne!(
            seal(&k, 5, "pseud", b"x").unwrap(),
            seal(&k, 5, "pseud", b"x").unwrap()
        );
    }

    #[test]
    fn a_read_s_events_are_stored_compact_and_open_as_canonical_json() {
        use crate::audit::{
            events::{Builder, FhirFacts, HttpFacts},
            pseudonym::Pseudonymizer,
        };
        use crate::fhir::{FhirRequest, Interaction};
        let b = Builder {
            public_url: "https://gw.example".into(),
            fhir_base: "https://gw.example/fhir".into(),
            pz: Pseudonymizer::new([1; 32]),
        };
        let mut r = FhirRequest::new(Interaction::Read);
        r.resource_type = Some("Patient".into());
        r.id = Some("p1".into());
        let http = HttpFacts {
            method: "GET".into(),
            path: "/fhir/Patient/p1".into(),
            ..HttpFacts::default()
        };
        let d = crate::pipeline::disclosure::Disclosure::default();
        let events = b.fhir("rid", &http, Some(&FhirFacts::of(&r)), &d, 200);
        assert_eq!(events.len(), 3);
        let k = key(3);
        for (seq, e) in events.iter().enumerate() {
            let s = seal(&k, seq as u64, &e.pseudonym, &e.payload).unwrap();
            let stored = B64.decode(&s.ciphertext).unwrap().len() - 16;
            // BALP's member names, systems and profiles are most of it.
            assert!(
                stored * 2 < e.payload.len(),
                "{stored} stored bytes for {} of JSON",
                e.payload.len()
            );
            assert_eq!(open(&k, seq as u64, &e.pseudonym, &s).unwrap(), e.payload);
            // Sealed as plain canonical JSON (before the stored form): the same.
            let old = crate::aead::seal(
                &k.cipher,
                payload_aad(seq as u64, &e.pseudonym).as_bytes(),
                &e.payload,
            )
            .unwrap();
            assert_eq!(open(&k, seq as u64, &e.pseudonym, &old).unwrap(), e.payload);
        }
    }

    #[tokio::test]
    async fn keys_are_created_once_wrapped_and_erasable() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        let vault = Vault::load_or_create(&dir.path().join("keys"), store.clone()).unwrap();
        let a = vault.keys_for(&["p1", "p2"]).await.unwrap();
        let b = vault.keys_for(&["p1", DEPLOYMENT]).await.unwrap();
        assert_eq!(a["p1"].key_id, b["p1"].key_id);
        let s = seal(&a["p1"], 1, "p1", b"hello").unwrap();
        assert_eq!(open(&b["p1"], 1, "p1", &s).unwrap(), b"hello");
        // The stored key is wrapped: the raw key bytes are not in the table.
        let StateStore::Sqlite(pool) = &store else {
            return;
        };
        let (wrapped,): (String,) =
            sqlx::query_as("SELECT wrapped FROM audit_patient_keys WHERE pseudonym = 'p1'")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(B64.decode(wrapped).unwrap().len(), 32 + 16);
        // Another master key cannot unwrap it.
        let other = Vault::load_or_create(&dir.path().join("other"), store.clone()).unwrap();
        assert!(other.existing(&["p1"]).await.is_err());
        // Erasure: gone; a later key is a new one.
        assert_eq!(vault.erase("p1").await.unwrap(), 1);
        assert!(vault.existing(&["p1"]).await.unwrap().is_empty());
        let c = vault.keys_for(&["p1"]).await.unwrap();
        assert_ne!(c["p1"].key_id, a["p1"].key_id);
        assert!(open(&c["p1"], 1, "p1", &s).is_err());
    }
}
