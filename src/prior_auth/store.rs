//! Persistence of prior-authorization requests (`pa_requests`, migration
//! 0010) on both state-store backends: one [`Record`] per request, keyed
//! by client and Claim identifier, with its per-item state.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use super::{
    state::{ItemState, State},
    timeframe::Urgency,
};
use crate::state::StateStore;

/// One item of a request and its decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// `Claim.item.sequence` (echoed as `ClaimResponse.item.itemSequence`).
    pub sequence: u32,
    /// `system|code` of the service.
    pub service: String,
    /// Current state.
    pub state: ItemState,
    /// When it was decided (ms), if it was.
    #[serde(default)]
    pub decided_ms: Option<i64>,
    /// Who decided: `rules` or the reviewer.
    #[serde(default)]
    pub reviewer: Option<String>,
    /// X12 reason code of a denial (or pend).
    #[serde(default)]
    pub reason: Option<String>,
    /// The Questionnaire canonical documentation is awaited for.
    #[serde(default)]
    pub questionnaire: Option<String>,
    /// Authorization number of an approval.
    #[serde(default)]
    pub auth_number: Option<String>,
    /// Approval validity (`YYYY-MM-DD`).
    #[serde(default)]
    pub auth_start: Option<String>,
    /// Approval end (`YYYY-MM-DD`).
    #[serde(default)]
    pub auth_end: Option<String>,
}

/// One stored request.
#[derive(Debug, Clone)]
pub struct Record {
    /// Our id (also the ClaimResponse id).
    pub id: String,
    /// Submitting OAuth client.
    pub client_id: String,
    /// The organization it acts for (`Organization/…`), if known.
    pub organization: Option<String>,
    /// `Claim.identifier.system`.
    pub claim_system: String,
    /// `Claim.identifier.value`.
    pub claim_value: String,
    /// The member identifier (`system|value`).
    pub patient_key: String,
    /// The requestor identifier (`system|value`).
    pub provider_key: String,
    /// Urgency.
    pub urgency: Urgency,
    /// Request state.
    pub state: State,
    /// Received (ms).
    pub received_ms: i64,
    /// Deadline (ms).
    pub deadline_ms: i64,
    /// When the last item was decided (ms).
    pub decided_ms: Option<i64>,
    /// Items.
    pub items: Vec<Item>,
    /// The PAS Request Bundle as received.
    pub request: Value,
    /// The current ClaimResponse.
    pub response: Value,
}

impl Record {
    /// Whether it is pended past its deadline at `now_ms`.
    pub fn overdue(&self, now_ms: i64) -> bool {
        super::timeframe::overdue(self.state == State::Pended, self.deadline_ms, now_ms)
    }
}

const COLUMNS: &str = "id, client_id, organization, claim_system, claim_value, patient_key, provider_key, urgency, state, received_ms, deadline_ms, decided_ms, items, request, response";

/// Reads a [`Record`] from a row of either backend.
macro_rules! from_row {
    ($r:expr) => {{
        let r = $r;
        let json = |c: &str| -> Result<Value, sqlx::Error> {
            let t: String = r.try_get(c)?;
            serde_json::from_str(&t).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        };
        let state: String = r.try_get("state")?;
        let urgency: String = r.try_get("urgency")?;
        let items: Vec<Item> =
            serde_json::from_value(json("items")?).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok::<Record, sqlx::Error>(Record {
            id: r.try_get("id")?,
            client_id: r.try_get("client_id")?,
            organization: r.try_get("organization")?,
            claim_system: r.try_get("claim_system")?,
            claim_value: r.try_get("claim_value")?,
            patient_key: r.try_get("patient_key")?,
            provider_key: r.try_get("provider_key")?,
            urgency: Urgency::parse(&urgency),
            state: State::parse(&state).unwrap_or(State::Pended),
            received_ms: r.try_get("received_ms")?,
            deadline_ms: r.try_get("deadline_ms")?,
            decided_ms: r.try_get("decided_ms")?,
            items,
            request: json("request")?,
            response: json("response")?,
        })
    }};
}

impl StateStore {
    /// Inserts or replaces a request (by id).
    pub async fn pa_save(&self, rec: &Record, now_ms: i64) -> Result<(), sqlx::Error> {
        let items =
            serde_json::to_string(&rec.items).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let sql = |p: fn(usize) -> String| {
            let ph: Vec<String> = (1..=16).map(p).collect();
            format!(
                "INSERT INTO pa_requests ({COLUMNS}, updated_ms) VALUES ({}) \
                 ON CONFLICT (id) DO UPDATE SET organization = excluded.organization, \
                 patient_key = excluded.patient_key, provider_key = excluded.provider_key, \
                 urgency = excluded.urgency, state = excluded.state, received_ms = excluded.received_ms, \
                 deadline_ms = excluded.deadline_ms, decided_ms = excluded.decided_ms, items = excluded.items, \
                 request = excluded.request, response = excluded.response, updated_ms = excluded.updated_ms",
                ph.join(", ")
            )
        };
        macro_rules! bind_all {
            ($q:expr) => {
                $q.bind(&rec.id)
                    .bind(&rec.client_id)
                    .bind(&rec.organization)
                    .bind(&rec.claim_system)
                    .bind(&rec.claim_value)
                    .bind(&rec.patient_key)
                    .bind(&rec.provider_key)
                    .bind(rec.urgency.as_str())
                    .bind(rec.state.as_str())
                    .bind(rec.received_ms)
                    .bind(rec.deadline_ms)
                    .bind(rec.decided_ms)
                    .bind(&items)
                    .bind(rec.request.to_string())
                    .bind(rec.response.to_string())
                    .bind(now_ms)
            };
        }
        match self {
            Self::Sqlite(p) => {
                let s = sql(|_| "?".to_owned());
                bind_all!(sqlx::query(&s)).execute(p).await?;
            }
            Self::Postgres(p) => {
                let s = sql(|i| format!("${i}"));
                bind_all!(sqlx::query(&s)).execute(p).await?;
            }
        }
        Ok(())
    }

    /// Every request with this Claim identifier (any client).
    pub async fn pa_by_claim(&self, system: &str, value: &str) -> Result<Vec<Record>, sqlx::Error> {
        match self {
            Self::Sqlite(p) => {
                let s = format!(
                    "SELECT {COLUMNS} FROM pa_requests WHERE claim_system = ? AND claim_value = ?"
                );
                let rows = sqlx::query(&s)
                    .bind(system)
                    .bind(value)
                    .fetch_all(p)
                    .await?;
                rows.iter().map(|r| from_row!(r)).collect()
            }
            Self::Postgres(p) => {
                let s = format!("SELECT {COLUMNS} FROM pa_requests WHERE claim_system = $1 AND claim_value = $2");
                let rows = sqlx::query(&s)
                    .bind(system)
                    .bind(value)
                    .fetch_all(p)
                    .await?;
                rows.iter().map(|r| from_row!(r)).collect()
            }
        }
    }

    /// Every request received in `[from_ms, to_ms)` (unbounded when `None`),
    /// for the metrics.
    pub async fn pa_received_between(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Record>, sqlx::Error> {
        let (from, to) = (from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX));
        match self {
            Self::Sqlite(p) => {
                let s = format!(
                    "SELECT {COLUMNS} FROM pa_requests WHERE received_ms >= ? AND received_ms < ?"
                );
                let rows = sqlx::query(&s).bind(from).bind(to).fetch_all(p).await?;
                rows.iter().map(|r| from_row!(r)).collect()
            }
            Self::Postgres(p) => {
                let s = format!(
                    "SELECT {COLUMNS} FROM pa_requests WHERE received_ms >= $1 AND received_ms < $2"
                );
                let rows = sqlx::query(&s).bind(from).bind(to).fetch_all(p).await?;
                rows.iter().map(|r| from_row!(r)).collect()
            }
        }
    }

    /// Every request still pended, oldest deadline first (the review queue).
    pub async fn pa_pended(&self) -> Result<Vec<Record>, sqlx::Error> {
        let s = format!(
            "SELECT {COLUMNS} FROM pa_requests WHERE state = 'pended' ORDER BY deadline_ms, id"
        );
        match self {
            Self::Sqlite(p) => {
                let rows = sqlx::query(&s).fetch_all(p).await?;
                rows.iter().map(|r| from_row!(r)).collect()
            }
            Self::Postgres(p) => {
                let rows = sqlx::query(&s).fetch_all(p).await?;
                rows.iter().map(|r| from_row!(r)).collect()
            }
        }
    }

    /// One request by id.
    pub async fn pa_get(&self, id: &str) -> Result<Option<Record>, sqlx::Error> {
        match self {
            Self::Sqlite(p) => {
                let s = format!("SELECT {COLUMNS} FROM pa_requests WHERE id = ?");
                let row = sqlx::query(&s).bind(id).fetch_optional(p).await?;
                row.as_ref().map(|r| from_row!(r)).transpose()
            }
            Self::Postgres(p) => {
                let s = format!("SELECT {COLUMNS} FROM pa_requests WHERE id = $1");
                let row = sqlx::query(&s).bind(id).fetch_optional(p).await?;
                row.as_ref().map(|r| from_row!(r)).transpose()
            }
        }
    }
}

/// Whether a save failed because the client already has a request with
/// that Claim identifier (two `$submit`s racing): a conflict, not a fault.
pub fn is_duplicate(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn record(id: &str, client: &str) -> Record {
        Record {
            id: id.into(),
            client_id: client.into(),
            organization: Some("Organization/o1".into()),
            claim_system: "urn:trnorg:1".into(),
            claim_value: "c1".into(),
            patient_key: "m|1".into(),
            provider_key: "npi|2".into(),
            urgency: Urgency::Expedited,
            state: State::Pended,
            received_ms: 1_000,
            deadline_ms: 2_000,
            decided_ms: None,
            items: vec![Item {
                sequence: 1,
                service: "cpt|27447".into(),
                state: ItemState::Pended,
                decided_ms: None,
                reviewer: None,
                reason: None,
                questionnaire: Some("q".into()),
                auth_number: None,
                auth_start: None,
                auth_end: None,
            }],
            request: serde_json::json!({"resourceType": "Bundle"}),
            response: serde_json::json!({"resourceType": "ClaimResponse"}),
        }
    }

    /// What every backend must do with prior-authorization requests.
    pub(crate) async fn suite(store: &StateStore) {
        store.pa_save(&record("r1", "a"), 5).await.unwrap();
        store.pa_save(&record("r2", "b"), 5).await.unwrap();
        let mut got = store.pa_get("r1").await.unwrap().unwrap();
        assert_eq!(got.items, record("r1", "a").items);
        assert_eq!(got.urgency, Urgency::Expedited);
        assert_eq!(got.organization.as_deref(), Some("Organization/o1"));
        assert!(got.overdue(2_001) && !got.overdue(2_000));
        got.state = State::Approved;
        got.items[0].state = ItemState::Approved;
        got.decided_ms = Some(1_500);
        store.pa_save(&got, 6).await.unwrap();
        let again = store.pa_get("r1").await.unwrap().unwrap();
        assert_eq!(again.state, State::Approved);
        assert_eq!(again.decided_ms, Some(1_500));
        assert!(!again.overdue(9_999));
        assert_eq!(
            store.pa_by_claim("urn:trnorg:1", "c1").await.unwrap().len(),
            2
        );
        assert!(store
            .pa_by_claim("urn:trnorg:1", "c2")
            .await
            .unwrap()
            .is_empty());
        assert!(store.pa_get("nope").await.unwrap().is_none());
        // The metrics' query: by received time, `[from, to)`.
        let all = store.pa_received_between(None, None).await.unwrap();
        assert_eq!(all.len(), 2);
        let pended = store.pa_pended().await.unwrap();
        let ids: Vec<&str> = pended.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r2"], "r1 was approved above");
        assert!(
            pended
                .windows(2)
                .all(|w| w[0].deadline_ms <= w[1].deadline_ms),
            "oldest deadline first"
        );
        assert!(pended.iter().all(|r| r.state == State::Pended));
        let within = store.pa_received_between(Some(1_000), Some(1_001));
        assert_eq!(within.await.unwrap().len(), 2);
        let after = store.pa_received_between(Some(1_001), None).await.unwrap();
        assert!(after.is_empty());
        let before = store.pa_received_between(None, Some(1_000)).await.unwrap();
        assert!(before.is_empty());
        // One request per client and Claim identifier: a duplicate is told apart.
        let dup = store.pa_save(&record("r3", "a"), 7).await.unwrap_err();
        assert!(is_duplicate(&dup), "{dup}");
    }

    #[tokio::test]
    async fn sqlite_keeps_requests() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        suite(&store).await;
    }

    /// On the PostgreSQL of the test command (`FHIRGATE_TEST_DATABASE_URL`),
    /// in a fresh schema; skipped without it.
    #[tokio::test]
    async fn postgres_keeps_requests() {
        let Some(pg) = crate::state::tests::Scratch::postgres().await else {
            return;
        };
        suite(&pg.store).await;
        pg.drop_schema().await;
    }
}
