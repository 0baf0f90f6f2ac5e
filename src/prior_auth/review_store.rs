//! Review actions besides item decisions in the state store (`pa_events`,
//! migration 0014): timeframe extensions and appeals, the decided requests
//! a reviewer can record an appeal on, and the retention purge. One SQL
//! text per query (`$N` placeholders work on both backends).

use super::store::Record;
use crate::state::{on_pool, StateStore};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The decision timeframe was extended.
    Extended,
    /// A denied item was appealed.
    Appealed,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extended => "extended",
            Self::Appealed => "appealed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "extended" => Some(Self::Extended),
            "appealed" => Some(Self::Appealed),
            _ => None,
        }
    }
}

/// One review action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The request.
    pub request_id: String,
    /// When (ms).
    pub at_ms: i64,
    /// What.
    pub kind: Kind,
    /// The appealed item.
    pub item_sequence: Option<i64>,
    /// The reviewer (extension) or who recorded the appeal.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// Extension: the days added.
    pub detail: Option<String>,
}

/// Records one action.
pub async fn record(store: &StateStore, e: &Event) -> Result<(), sqlx::Error> {
    let sql =
        "INSERT INTO pa_events (request_id, at_ms, kind, item_sequence, actor, reason, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on_pool!(store, |p| sqlx::query(sql)
        .bind(&e.request_id)
        .bind(e.at_ms)
        .bind(e.kind.as_str())
        .bind(e.item_sequence)
        .bind(&e.actor)
        .bind(&e.reason)
        .bind(&e.detail)
        .execute(p)
        .await
        .map(|_| ()))
}

/// A row of `pa_events`: request_id, at_ms, kind, item_sequence, actor,
/// reason, detail.
type EventRow = (
    String,
    i64,
    String,
    Option<i64>,
    String,
    String,
    Option<String>,
);

/// Every action on `request_id`, oldest first.
pub async fn of_request(store: &StateStore, request_id: &str) -> Result<Vec<Event>, sqlx::Error> {
    let sql =
        "SELECT request_id, at_ms, kind, item_sequence, actor, reason, detail FROM pa_events \
         WHERE request_id = $1 ORDER BY at_ms";
    let rows: Vec<EventRow> = on_pool!(store, |p| sqlx::query_as(sql)
        .bind(request_id)
        .fetch_all(p)
        .await)?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(request_id, at_ms, kind, item_sequence, actor, reason, detail)| {
                Some(Event {
                    request_id,
                    at_ms,
                    kind: Kind::parse(&kind)?,
                    item_sequence,
                    actor,
                    reason,
                    detail,
                })
            },
        )
        .collect())
}

/// The kinds of action each of `records` had, for the metrics and the
/// review queue: `(extended, appealed)` per record, in order. One query
/// (actions are few: extensions and appeals only).
pub async fn flags(
    store: &StateStore,
    records: &[Record],
) -> Result<Vec<(bool, bool)>, sqlx::Error> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let sql = "SELECT DISTINCT request_id, kind FROM pa_events";
    let rows: Vec<(String, String)> = on_pool!(store, |p| sqlx::query_as(sql).fetch_all(p).await)?;
    let had = |id: &str, k: Kind| rows.iter().any(|(r, kind)| r == id && kind == k.as_str());
    Ok(records
        .iter()
        .map(|r| (had(&r.id, Kind::Extended), had(&r.id, Kind::Appealed)))
        .collect())
}

/// The ids of the most recently decided requests with a denied item
/// (denied or partially approved), newest decision first, at most `limit`:
/// those an appeal can be recorded on.
pub async fn appealable(store: &StateStore, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    let sql = "SELECT id FROM pa_requests WHERE state IN ('denied', 'partially-approved') \
               ORDER BY decided_ms DESC, id LIMIT $1";
    let rows: Vec<(String,)> = on_pool!(store, |p| sqlx::query_as(sql)
        .bind(limit)
        .fetch_all(p)
        .await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Deletes decided requests (and their actions) decided before
/// `cutoff_ms`; pended requests are never purged. Returns how many went.
pub async fn purge_decided_before(store: &StateStore, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let events = "DELETE FROM pa_events WHERE request_id IN (SELECT id FROM pa_requests \
                  WHERE state <> 'pended' AND decided_ms IS NOT NULL AND decided_ms < $1)";
    let requests =
        "DELETE FROM pa_requests WHERE state <> 'pended' AND decided_ms IS NOT NULL AND decided_ms < $1";
    // On a connection closed, not pooled, if this fails or is dropped
    // mid-transaction (`state::TxConn`).
    on_pool!(store, |p| {
        let mut conn = crate::state::TxConn::acquire(p).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query(events)
            .bind(cutoff_ms)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(requests)
            .bind(cutoff_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        conn.done();
        Ok(n)
    })
}
