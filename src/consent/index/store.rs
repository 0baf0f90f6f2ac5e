//! Writes to the consent index: upserts, tombstones, generation bumps and
//! the poller's watermark. Each change is one transaction that also bumps
//! the generation of every patient it affects; writes to one Consent
//! serialise (`BEGIN IMMEDIATE` on SQLite, `pg_advisory_xact_lock` on the
//! Consent id's hash on PostgreSQL), so read-compare-write is race-free
//! across replicas.

use serde_json::Value;
use time::OffsetDateTime;

use super::{patient_key, ConsentIndex, IndexError};
use crate::state::on_pool;
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
        on_pool!(self.store(), |p| {
            let mut tx = p.begin_with(begin).await?;
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
            let mut tx = p.begin_with(begin).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(consent_id).execute(&mut *tx).await?;
            }
            let old: Option<OldRow> = sqlx::query_as(SELECT_OLD)
                .bind(consent_id)
                .fetch_optional(&mut *tx)
                .await?;
            let live_patient = match &old {
                None if !known => return Ok(false),
                None => None,
                Some((patient, version_id, last_updated, deleted)) => {
                    let stored = Stamp {
                        version_id: version_id.clone(),
                        last_updated: last_updated.clone(),
                    };
                    if known && !is_newer(delete, &stored) {
                        return Ok(false);
                    }
                    if *deleted == 0 {
                        patient.clone()
                    } else if known {
                        None
                    } else {
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
            Ok(matches!(old, Some((_, _, _, 0))))
        })
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
