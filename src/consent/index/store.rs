//! Writes to the consent index: upserts, tombstones, generation bumps and
//! the poller's watermark. Each change is one transaction that also bumps
//! the generation of every patient it affects; writes to one Consent
//! serialise (`BEGIN IMMEDIATE` on SQLite, `pg_advisory_xact_lock` on the
//! Consent id's hash on PostgreSQL), so read-compare-write is race-free
//! across replicas.

use serde_json::Value;
use time::OffsetDateTime;

use super::{patient_key, ConsentIndex, IndexError};
use crate::state::{on_pool, TxConn};
use crate::{
    fhir::types::{format_instant, parse_instant},
    state::StateStore,
};

const SELECT_OLD: &str =
    "SELECT patient, version_id, last_updated, deleted FROM consent_index WHERE consent_id = $1";
const UPSERT: &str = "INSERT INTO consent_index (consent_id, patient, version_id, last_updated, status, body, deleted) \
     VALUES ($1, $2, $3, $4, $5, $6, 0) \
     ON CONFLICT (consent_id) DO UPDATE SET patient = excluded.patient, version_id = excluded.version_id, \
     last_updated = excluded.last_updated, status = excluded.status, body = excluded.body, deleted = 0";
const TOMBSTONE: &str = "INSERT INTO consent_index (consent_id, patient, version_id, last_updated, status, body, deleted) \
     VALUES ($1, NULL, $2, $3, NULL, NULL, 1) \
     ON CONFLICT (consent_id) DO UPDATE SET version_id = COALESCE(excluded.version_id, consent_index.version_id), \
     last_updated = COALESCE(excluded.last_updated, consent_index.last_updated), body = NULL, deleted = 1";
const BUMP: &str = "INSERT INTO consent_generation (patient, generation) VALUES ($1, 1) \
     ON CONFLICT (patient) DO UPDATE SET generation = consent_generation.generation + 1";

/// `(patient, version_id, last_updated, deleted)` of a stored row.
type OldRow = (Option<String>, Option<String>, Option<String>, i16);

/// A version's identity: `meta.versionId` and normalised `meta.lastUpdated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub version_id: Option<String>,
    pub last_updated: Option<String>,
}

impl Stamp {
    /// `lastUpdated` as an instant, for comparisons and the watermark.
    pub fn instant(&self) -> Option<OffsetDateTime> {
        self.last_updated.as_deref().and_then(parse_instant)
    }
}

/// A FHIR instant in the one text form the index stores (UTC, ms), or the
/// text as given when it is not an instant.
pub(crate) fn normalise_instant(s: &str) -> String {
    parse_instant(s)
        .map(format_instant)
        .unwrap_or_else(|| s.to_owned())
}

/// Whether `incoming` is a newer version than `stored`: versionIds
/// numerically when both are integers, else lastUpdated instants; when
/// neither compares, the incoming one wins.
pub(crate) fn is_newer(incoming: &Stamp, stored: &Stamp) -> bool {
    let num = |s: &Stamp| s.version_id.as_deref().and_then(|v| v.parse::<i64>().ok());
    if let (Some(a), Some(b)) = (num(incoming), num(stored)) {
        return a > b;
    }
    match (incoming.instant(), stored.instant()) {
        (Some(a), Some(b)) => a > b,
        _ => match (&incoming.last_updated, &stored.last_updated) {
            (Some(a), Some(b)) => a > b,
            _ => true,
        },
    }
}

/// The indexed parts of a stored Consent.
struct Row {
    id: String,
    patient: Option<String>,
    stamp: Stamp,
    status: Option<String>,
    body: String,
}

impl Row {
    fn from_consent(consent: &Value) -> Result<Self, IndexError> {
        if consent.get("resourceType").and_then(Value::as_str) != Some("Consent") {
            return Err(IndexError::NotAConsent("resourceType is not Consent"));
        }
        let id = consent
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| crate::fhir::is_valid_id(id))
            .ok_or(IndexError::NotAConsent("no valid id"))?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let meta = &consent["meta"];
        let patient = consent["patient"]["reference"]
            .as_str()
            .map(|r| patient_key(r).unwrap_or_else(|| r.trim().to_owned()));
        Ok(Self {
            id: id.to_owned(),
            patient,
            stamp: Stamp {
                version_id: text(&meta["versionId"]),
                last_updated: meta["lastUpdated"].as_str().map(normalise_instant),
            },
            status: text(&consent["status"]),
            body: consent.to_string(),
        })
    }
}

/// The transaction opener and per-Consent lock of each backend.
fn begin_and_lock(store: &StateStore) -> (&'static str, Option<&'static str>) {
    match store {
        StateStore::Sqlite(_) => ("BEGIN IMMEDIATE", None),
        StateStore::Postgres(_) => ("BEGIN", Some("SELECT pg_advisory_xact_lock(hashtext($1))")),
    }
}

impl ConsentIndex {
    /// Upserts a stored Consent (as the upstream returned it: `id`,
    /// `meta.versionId`, `meta.lastUpdated`). An older or equal version than
    /// the stored one is ignored. Bumps the generation of the Consent's
    /// patient, and of its previous patient when the reference changed.
    pub async fn record(&self, consent: &Value) -> Result<(), IndexError> {
        self.record_changed(consent).await.map(|_| ())
    }

    /// [`ConsentIndex::record`], telling whether anything changed.
    pub async fn record_changed(&self, consent: &Value) -> Result<bool, IndexError> {
        let row = Row::from_consent(consent)?;
        let (begin, lock) = begin_and_lock(self.store());
        // On a connection closed, not pooled, if this fails or is dropped
        // mid-transaction (`state::TxConn`).
        on_pool!(self.store(), |p| {
            let mut conn = TxConn::acquire(p).await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(&row.id).execute(&mut *tx).await?;
            }
            let old: Option<OldRow> = sqlx::query_as(SELECT_OLD)
                .bind(&row.id)
                .fetch_optional(&mut *tx)
                .await?;
            let mut bump: Vec<&str> = Vec::new();
            if let Some((old_patient, version_id, last_updated, deleted)) = &old {
                let stored = Stamp {
                    version_id: version_id.clone(),
                    last_updated: last_updated.clone(),
                };
                if !is_newer(&row.stamp, &stored) {
                    tx.rollback().await?;
                    conn.done();
                    return Ok(false);
                }
                if *deleted == 0 && old_patient.is_some() && *old_patient != row.patient {
                    bump.extend(old_patient.as_deref());
                }
            }
            bump.extend(row.patient.as_deref());
            sqlx::query(UPSERT)
                .bind(&row.id)
                .bind(&row.patient)
                .bind(&row.stamp.version_id)
                .bind(&row.stamp.last_updated)
                .bind(&row.status)
                .bind(&row.body)
                .execute(&mut *tx)
                .await?;
            for patient in bump {
                sqlx::query(BUMP).bind(patient).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            conn.done();
        });
        Ok(true)
    }

    /// Forgets a deleted Consent (leaves a tombstone) and bumps its
    /// patient's generation. Unknown ids are ignored.
    pub async fn forget(&self, consent_id: &str) -> Result<(), IndexError> {
        self.forget_version(consent_id, &Stamp::default())
            .await
            .map(|_| ())
    }

    /// [`ConsentIndex::forget`] for a deletion whose version is known (from
    /// history): a delete not newer than the stored version is ignored, and
    /// the tombstone keeps the delete's version (inserted even for an
    /// unknown id) so a stale copy cannot resurrect the Consent.
    pub(crate) async fn forget_version(
        &self,
        consent_id: &str,
        delete: &Stamp,
    ) -> Result<bool, IndexError> {
        let known = delete.version_id.is_some() || delete.last_updated.is_some();
        let (begin, lock) = begin_and_lock(self.store());
        on_pool!(self.store(), |p| {
            let mut conn = TxConn::acquire(p).await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(consent_id).execute(&mut *tx).await?;
            }
            let old: Option<OldRow> = sqlx::query_as(SELECT_OLD)
                .bind(consent_id)
                .fetch_optional(&mut *tx)
                .await?;
            let live_patient = match &old {
                None if !known => {
                    tx.rollback().await?;
                    conn.done();
                    return Ok(false);
                }
                None => None,
                Some((patient, version_id, last_updated, deleted)) => {
                    let stored = Stamp {
                        version_id: version_id.clone(),
                        last_updated: last_updated.clone(),
                    };
                    if known && !is_newer(delete, &stored) {
                        tx.rollback().await?;
                        conn.done();
                        return Ok(false);
                    }
                    if *deleted == 0 {
                        patient.clone()
                    } else if known {
                        None
                    } else {
                        tx.rollback().await?;
                        conn.done();
                        return Ok(false);
                    }
                }
            };
            sqlx::query(TOMBSTONE)
                .bind(consent_id)
                .bind(&delete.version_id)
                .bind(&delete.last_updated)
                .execute(&mut *tx)
                .await?;
            if let Some(patient) = &live_patient {
                sqlx::query(BUMP).bind(patient).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            conn.done();
            Ok(matches!(old, Some((_, _, _, 0))))
        })
    }

    /// Puts a Consent's row back to what the store holds after a write of
    /// it was undone (the request failed closed; `upstream::embedded::
    /// journal`): its previous version, the tombstone of a previous
    /// deletion, or no row at all when the undone write created it (a
    /// tombstone would make a retried create of the same id look stale).
    /// Unlike [`ConsentIndex::record`], version order is not consulted: the
    /// undone version is newer than what it goes back to. Bumps the
    /// generation of the patients before and after.
    pub async fn revert(
        &self,
        consent_id: &str,
        now: &crate::upstream::embedded::journal::Restored,
    ) -> Result<(), IndexError> {
        use crate::upstream::embedded::journal::Restored;
        const DELETE: &str = "DELETE FROM consent_index WHERE consent_id = $1";
        let live = match now {
            Restored::Live(body) => Some(Row::from_consent(body)?),
            _ => None,
        };
        let (begin, lock) = begin_and_lock(self.store());
        on_pool!(self.store(), |p| {
            let mut conn = TxConn::acquire(p).await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(consent_id).execute(&mut *tx).await?;
            }
            let old: Option<OldRow> = sqlx::query_as(SELECT_OLD)
                .bind(consent_id)
                .fetch_optional(&mut *tx)
                .await?;
            let mut bump: Vec<String> = Vec::new();
            if let Some((Some(patient), _, _, 0)) = &old {
                bump.push(patient.clone());
            }
            sqlx::query(DELETE)
                .bind(consent_id)
                .execute(&mut *tx)
                .await?;
            match (now, &live) {
                (_, Some(row)) => {
                    sqlx::query(UPSERT)
                        .bind(&row.id)
                        .bind(&row.patient)
                        .bind(&row.stamp.version_id)
                        .bind(&row.stamp.last_updated)
                        .bind(&row.status)
                        .bind(&row.body)
                        .execute(&mut *tx)
                        .await?;
                    bump.extend(row.patient.clone());
                }
                (
                    Restored::Deleted {
                        version,
                        last_updated,
                    },
                    None,
                ) => {
                    sqlx::query(TOMBSTONE)
                        .bind(consent_id)
                        .bind(version.to_string())
                        .bind(normalise_instant(last_updated))
                        .execute(&mut *tx)
                        .await?;
                }
                _ => {}
            }
            bump.sort();
            bump.dedup();
            for patient in &bump {
                sqlx::query(BUMP).bind(patient).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            conn.done();
        });
        Ok(())
    }

    /// The poller's watermark (a normalised instant), if it ever synced.
    pub async fn watermark(&self) -> Result<Option<String>, IndexError> {
        let sql = "SELECT watermark FROM consent_sync WHERE id = 0";
        let row: Option<(Option<String>,)> = on_pool!(self.store(), |p| sqlx::query_as(sql)
            .fetch_optional(p)
            .await)?;
        Ok(row.and_then(|(w,)| w))
    }

    /// Advances the watermark (never moves it back: replicas may race).
    pub(crate) async fn advance_watermark(&self, to: OffsetDateTime) -> Result<(), IndexError> {
        let to = format_instant(to);
        let sql = "UPDATE consent_sync SET watermark = $1 WHERE id = 0 AND (watermark IS NULL OR watermark < $1)";
        on_pool!(self.store(), |p| sqlx::query(sql)
            .bind(&to)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{fill_disk, free_disk, sqlite_one_connection};
    use serde_json::json;

    fn consent(id: &str, version: u32, filler: usize) -> Value {
        json!({
            "resourceType": "Consent", "id": id, "status": "active",
            "meta": {"versionId": version.to_string(), "lastUpdated": format!("2026-01-01T00:00:0{version}Z")},
            "patient": {"reference": "Patient/p1"},
            "text": {"status": "generated", "div": "z".repeat(filler)},
        })
    }

    async fn stored(store: &StateStore, id: &str) -> Option<OldRow> {
        on_pool!(store, |p| sqlx::query_as(SELECT_OLD)
            .bind(id)
            .fetch_optional(p)
            .await
            .unwrap())
    }

    /// An undone write goes back to the previous version (though older),
    /// or leaves no row at all (so a retried create of the same id counts).
    #[tokio::test]
    async fn revert_puts_back_what_the_store_holds() {
        use crate::upstream::embedded::journal::Restored;
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_one_connection(dir.path()).await;
        let index = ConsentIndex::new(store.clone());
        index.record(&consent("c1", 1, 1)).await.unwrap();
        index.record(&consent("c1", 2, 1)).await.unwrap();
        index
            .revert("c1", &Restored::Live(consent("c1", 1, 1)))
            .await
            .unwrap();
        let row = stored(&store, "c1").await.unwrap();
        assert_eq!(row.1.as_deref(), Some("1"));
        assert_eq!(row.3, 0);
        index
            .revert(
                "c1",
                &Restored::Deleted {
                    version: 1,
                    last_updated: "2026-01-01T00:00:01Z".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(stored(&store, "c1").await.unwrap().3, 1);
        index.revert("c1", &Restored::Gone).await.unwrap();
        assert_eq!(stored(&store, "c1").await, None);
        assert!(index.record_changed(&consent("c1", 1, 1)).await.unwrap());
    }

    /// An index write that fails on a full disk (SQLite ends the
    /// transaction itself, so sqlx's `ROLLBACK` fails) closes its
    /// connection: on a one-connection pool, the next write works once
    /// space is back, where a pooled connection stuck "in a transaction"
    /// refused every later `BEGIN IMMEDIATE`.
    #[tokio::test]
    async fn a_write_failed_on_a_full_disk_does_not_poison_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_one_connection(dir.path()).await;
        let StateStore::Sqlite(pool) = &store else {
            unreachable!("a SQLite store")
        };
        let index = ConsentIndex::new(store.clone());
        index.record(&consent("c1", 1, 10)).await.unwrap();
        fill_disk(pool).await;
        let err = index.record(&consent("c1", 2, 20_000)).await;
        assert!(err.is_err(), "the disk is full");
        free_disk(pool).await;
        index.record(&consent("c1", 3, 20_000)).await.unwrap();
        index.forget("c1").await.unwrap();
        assert!(index.record(&consent("c1", 2, 10)).await.is_ok());
    }
}
