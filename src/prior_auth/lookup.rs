//! Read-only lookup of authorizations already granted, for CRD (issue 7,
//! item 4): whether a member has an approved, in-period PAS authorization
//! for an ordered service under the same coverage, so the hook can answer
//! `pa-needed = satisfied` with its number as `satisfied-pa-id` (CRD 2.0.1
//! `ext-coverage-information`, invariant crd-ci-q5).
//!
//! Reads `pa_requests` (migration 0010) on both state-store backends and
//! never writes. What counts, all of:
//! - the stored request's member key (`patient_key`, the PAS Patient's
//!   first identifier `system|value`) is one of the member's identifiers;
//! - the request's item for the service is `approved` with an
//!   authorization number (item state, not request state: a partially
//!   approved request under appeal is pended again, yet its approved items
//!   stand), and the request is not cancelled;
//! - today is within the item's period (`auth_start..=auth_end`);
//! - the request's Coverage (the Claim's focal insurance) shares a
//!   subscriber id or identifier with the order's Coverage. Without a
//!   shared key nothing counts: telling a provider that authorization is
//!   satisfied when it is not is the costly mistake, so matching is strict.

use serde_json::Value;
use sqlx::Row;

use super::{state::ItemState, store::Item, validate};
use crate::state::StateStore;

/// What one lookup asks.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The member's identifiers, `system|value`.
    pub members: &'a [String],
    /// The ordered service, `system|code`.
    pub service: &'a str,
    /// The keys of the order's Coverage ([`coverage_keys`]).
    pub coverage: &'a [String],
    /// Today, `YYYY-MM-DD` (UTC).
    pub today: &'a str,
}

/// An authorization that satisfies a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The authorization number (`ClaimResponse.preAuthRef`).
    pub auth_number: String,
    /// The stored request (also the ClaimResponse id).
    pub request_id: String,
    /// Last day of validity, `YYYY-MM-DD`.
    pub auth_end: String,
}

/// The keys a Coverage can be matched on: `subscriberId|<value>` and
/// `identifier|<system>|<value>` of each identifier.
pub fn coverage_keys(coverage: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(s) = coverage["subscriberId"].as_str().filter(|s| !s.is_empty()) {
        keys.push(format!("subscriberId|{s}"));
    }
    for id in coverage["identifier"].as_array().into_iter().flatten() {
        if let Some(v) = id["value"].as_str().filter(|v| !v.is_empty()) {
            let system = id["system"].as_str().unwrap_or_default();
            keys.push(format!("identifier|{system}|{v}"));
        }
    }
    keys
}

/// `system|value` of each identifier of a resource (a Patient).
pub fn identifier_keys(resource: &Value) -> Vec<String> {
    resource["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| {
            let v = id["value"].as_str().filter(|v| !v.is_empty())?;
            Some(format!("{}|{v}", id["system"].as_str().unwrap_or_default()))
        })
        .collect()
}

/// The Coverage keys of a stored PAS Request Bundle: its Claim's focal
/// insurance (else the first).
fn request_coverage_keys(request: &Value) -> Vec<String> {
    let entries = request["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let insurance = request["entry"][0]["resource"]["insurance"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let chosen = insurance
        .iter()
        .find(|i| i["focal"] == true)
        .or_else(|| insurance.first());
    chosen
        .and_then(|i| i["coverage"]["reference"].as_str())
        .and_then(|r| validate::resolve(entries, r))
        .map(|(_, c)| coverage_keys(c))
        .unwrap_or_default()
}

/// The approved, in-period item of `items` for `q`'s service, if any.
fn approved_item<'a>(items: &'a [Item], q: &Query<'_>) -> Option<&'a Item> {
    items.iter().find(|i| {
        i.service == q.service
            && i.state == ItemState::Approved
            && i.auth_number.as_deref().is_some_and(|n| !n.is_empty())
            && i.auth_start.as_deref().is_some_and(|s| s <= q.today)
            && i.auth_end.as_deref().is_some_and(|e| q.today <= e)
    })
}

/// A member's requests that are not cancelled: `(id, items)`; the request
/// Bundle is read only for those with a fitting item ([`request_of`]).
const CANDIDATES: &str =
    "SELECT id, items FROM pa_requests WHERE patient_key = $1 AND state <> 'cancelled'";
const REQUEST: &str = "SELECT request FROM pa_requests WHERE id = $1";

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

async fn candidates(
    store: &StateStore,
    member: &str,
) -> Result<Vec<(String, Vec<Item>)>, sqlx::Error> {
    macro_rules! read {
        ($p:expr) => {{
            let rows = sqlx::query(CANDIDATES).bind(member).fetch_all($p).await?;
            rows.iter()
                .map(|r| {
                    let items: String = r.try_get("items")?;
                    Ok((r.try_get("id")?, decode(&items)?))
                })
                .collect()
        }};
    }
    match store {
        StateStore::Sqlite(p) => read!(p),
        StateStore::Postgres(p) => read!(p),
    }
}

async fn request_of(store: &StateStore, id: &str) -> Result<Value, sqlx::Error> {
    let text: Option<String> = match store {
        StateStore::Sqlite(p) => {
            let row = sqlx::query(REQUEST).bind(id).fetch_optional(p).await?;
            row.map(|r| r.try_get("request")).transpose()?
        }
        StateStore::Postgres(p) => {
            let row = sqlx::query(REQUEST).bind(id).fetch_optional(p).await?;
            row.map(|r| r.try_get("request")).transpose()?
        }
    };
    text.map_or(Ok(Value::Null), |t| decode(&t))
}

/// The authorization satisfying `q` that stays valid longest, if any.
pub async fn satisfied(store: &StateStore, q: &Query<'_>) -> Result<Option<Granted>, sqlx::Error> {
    if q.coverage.is_empty() || q.service.is_empty() {
        return Ok(None);
    }
    let mut best: Option<Granted> = None;
    for member in q.members.iter().filter(|m| !m.is_empty()) {
        for (id, items) in candidates(store, member).await? {
            let Some(item) = approved_item(&items, q) else {
                continue;
            };
            let end = item.auth_end.clone().unwrap_or_default();
            if best.as_ref().is_some_and(|b| b.auth_end >= end) {
                continue;
            }
            let theirs = request_coverage_keys(&request_of(store, &id).await?);
            if theirs.iter().any(|k| q.coverage.contains(k)) {
                best = Some(Granted {
                    auth_number: item.auth_number.clone().unwrap_or_default(),
                    request_id: id,
                    auth_end: end,
                });
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::prior_auth::{state::State, store::Record, timeframe::Urgency};

    fn item(state: ItemState, end: &str) -> Item {
        Item {
            sequence: 1,
            service: "cpt|73721".into(),
            state,
            decided_ms: Some(1),
            reviewer: Some("rules".into()),
            reason: None,
            questionnaire: None,
            auth_number: Some("PA-X-1".into()),
            auth_start: Some("2026-11-01".into()),
            auth_end: Some(end.into()),
        }
    }

    fn record(id: &str, claim: &str, state: State, it: Item) -> Record {
        let request = json!({"resourceType": "Bundle", "entry": [
            {"fullUrl": "http://x/Claim/c", "resource": {"resourceType": "Claim",
                "insurance": [{"sequence": 1, "focal": true, "coverage": {"reference": "Coverage/cov"}}]}},
            {"fullUrl": "http://x/Coverage/cov", "resource": {"resourceType": "Coverage", "id": "cov", "subscriberId": "S1"}}]});
        Record {
            id: id.into(),
            client_id: "clinic".into(),
            organization: None,
            claim_system: "urn:c".into(),
            claim_value: claim.into(),
            patient_key: "min|M1".into(),
            provider_key: "npi|1".into(),
            urgency: Urgency::Standard,
            state,
            received_ms: 1,
            deadline_ms: 2,
            decided_ms: Some(1),
            items: vec![it],
            request,
            response: json!({"resourceType": "ClaimResponse"}),
        }
    }

    /// What every backend must answer.
    async fn suite(store: &StateStore) {
        let members = vec!["min|M1".to_owned()];
        let cov = vec!["subscriberId|S1".to_owned()];
        let q = Query {
            members: &members,
            service: "cpt|73721",
            coverage: &cov,
            today: "2026-11-20",
        };
        assert_eq!(satisfied(store, &q).await.unwrap(), None, "empty store");
        let denied = record(
            "d",
            "c-d",
            State::Denied,
            item(ItemState::Denied, "2027-01-30"),
        );
        let expired = record(
            "e",
            "c-e",
            State::Approved,
            item(ItemState::Approved, "2026-11-19"),
        );
        store.pa_save(&denied, 1).await.unwrap();
        store.pa_save(&expired, 1).await.unwrap();
        assert_eq!(satisfied(store, &q).await.unwrap(), None, "denied, expired");
        let good = record(
            "g",
            "c-g",
            State::Approved,
            item(ItemState::Approved, "2027-01-30"),
        );
        store.pa_save(&good, 1).await.unwrap();
        let got = satisfied(store, &q).await.unwrap().unwrap();
        assert_eq!(
            (got.auth_number.as_str(), got.request_id.as_str()),
            ("PA-X-1", "g")
        );
        // An approved item of a request pended again (appeal of its other
        // items) stands; one of a cancelled request does not.
        let mut appealed = record(
            "a",
            "c-a",
            State::Pended,
            item(ItemState::Approved, "2027-02-28"),
        );
        appealed.items[0].auth_number = Some("PA-A-1".into());
        store.pa_save(&appealed, 1).await.unwrap();
        let got = satisfied(store, &q).await.unwrap().unwrap();
        assert_eq!(got.auth_number, "PA-A-1", "valid longest");
        let mut cancelled = appealed.clone();
        cancelled.state = State::Cancelled;
        store.pa_save(&cancelled, 3).await.unwrap();
        let got = satisfied(store, &q).await.unwrap().unwrap();
        assert_eq!(got.auth_number, "PA-X-1");
        // another coverage, another service, another member: nothing
        let other_cov = vec!["subscriberId|S2".to_owned()];
        let q2 = Query {
            coverage: &other_cov,
            ..q
        };
        assert_eq!(satisfied(store, &q2).await.unwrap(), None);
        let q3 = Query {
            service: "cpt|99999",
            ..q
        };
        assert_eq!(satisfied(store, &q3).await.unwrap(), None);
        let others = vec!["min|M2".to_owned()];
        let q4 = Query {
            members: &others,
            ..q
        };
        assert_eq!(satisfied(store, &q4).await.unwrap(), None);
        // the day after the period ends
        let q5 = Query {
            today: "2027-01-31",
            ..q
        };
        assert_eq!(satisfied(store, &q5).await.unwrap(), None);
    }

    #[tokio::test]
    async fn sqlite_finds_only_approved_in_period_authorizations_for_the_same_coverage() {
        let dir = tempfile::tempdir().unwrap();
        suite(&StateStore::open(None, dir.path()).await.unwrap()).await;
    }

    /// On the PostgreSQL of the test command (`FHIRGATE_TEST_DATABASE_URL`),
    /// in a fresh schema; skipped without it.
    #[tokio::test]
    async fn postgres_finds_only_approved_in_period_authorizations_for_the_same_coverage() {
        let Some(pg) = crate::state::tests::Scratch::postgres().await else {
            return;
        };
        suite(&pg.store).await;
        pg.drop_schema().await;
    }

    #[test]
    fn coverage_and_identifier_keys() {
        let c = json!({"subscriberId": "S1", "identifier": [{"system": "urn:m", "value": "9"}, {"system": "urn:x"}]});
        assert_eq!(coverage_keys(&c), ["subscriberId|S1", "identifier|urn:m|9"]);
        let p = json!({"identifier": [{"system": "urn:min", "value": "1"}, {"value": ""}]});
        assert_eq!(identifier_keys(&p), ["urn:min|1"]);
        assert!(coverage_keys(&json!({})).is_empty());
    }
}
