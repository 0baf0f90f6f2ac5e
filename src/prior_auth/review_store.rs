//! Review actions besides item decisions in the state store (`pa_events`,
//! migration 0014): timeframe extensions and appeals, the decided requests
//! a reviewer can record an appeal on, and the retention purge. One SQL
//! text per query (`$N` placeholders work on both backends).

use sqlx::Row;

use super::store::Record;
use crate::state::StateStore;

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
    macro_rules! run {
        ($p:expr) => {
            sqlx::query(sql)
                .bind(&e.request_id)
                .bind(e.at_ms)
                .bind(e.kind.as_str())
                .bind(e.item_sequence)
                .bind(&e.actor)
                .bind(&e.reason)
                .bind(&e.detail)
                .execute($p)
                .await
        };
    }
    match store {
        StateStore::Sqlite(p) => run!(p).map(|_| ())?,
        StateStore::Postgres(p) => run!(p).map(|_| ())?,
    }
    Ok(())
}

/// Every action on `request_id`, oldest first.
pub async fn of_request(store: &StateStore, request_id: &str) -> Result<Vec<Event>, sqlx::Error> {
    let sql =
        "SELECT request_id, at_ms, kind, item_sequence, actor, reason, detail FROM pa_events \
               WHERE request_id = $1 ORDER BY at_ms";
    let rows = match store {
        StateStore::Sqlite(p) => {
            let rows = sqlx::query(sql).bind(request_id).fetch_all(p).await?;
            rows.iter().map(event_of).collect::<Result<Vec<_>, _>>()?
        }
        StateStore::Postgres(p) => {
            let rows = sqlx::query(sql).bind(request_id).fetch_all(p).await?;
            rows.iter().map(event_of).collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok(rows.into_iter().flatten().collect())
}

/// The kinds of action each of `records` had, for the metrics:
/// `(extended, appealed)` per record, in order.
pub async fn flags(
    store: &StateStore,
    records: &[Record],
) -> Result<Vec<(bool, bool)>, sqlx::Error> {
    let mut out = Vec::with_capacity(records.len());
    // one query per request: the metrics read a reporting period, not the
    // request path; a request with no action costs one indexed probe
    for r in records {
        let events = of_request(store, &r.id).await?;
        out.push((
            events.iter().any(|e| e.kind == Kind::Extended),
            events.iter().any(|e| e.kind == Kind::Appealed),
        ));
    }
    Ok(out)
}

fn event_of<R: Row>(r: &R) -> Result<Option<Event>, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = r.try_get("kind")?;
    let Some(kind) = Kind::parse(&kind) else {
        return Ok(None);
    };
    Ok(Some(Event {
        request_id: r.try_get("request_id")?,
        at_ms: r.try_get("at_ms")?,
        kind,
        item_sequence: r.try_get("item_sequence")?,
        actor: r.try_get("actor")?,
        reason: r.try_get("reason")?,
        detail: r.try_get("detail")?,
    }))
}

/// The ids of the most recently decided requests with a denied item
/// (denied or partially approved), newest decision first, at most `limit`:
/// those an appeal can be recorded on.
pub async fn appealable(store: &StateStore, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    let sql = "SELECT id FROM pa_requests WHERE state IN ('denied', 'partially-approved') \
               ORDER BY decided_ms DESC, id LIMIT $1";
    match store {
        StateStore::Sqlite(p) => {
            let rows = sqlx::query(sql).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| r.try_get(0)).collect()
        }
        StateStore::Postgres(p) => {
            let rows = sqlx::query(sql).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| r.try_get(0)).collect()
        }
    }
}

/// Deletes decided requests (and their actions) decided before
/// `cutoff_ms`; pended requests are never purged. Returns how many went.
pub async fn purge_decided_before(store: &StateStore, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let events = "DELETE FROM pa_events WHERE request_id IN (SELECT id FROM pa_requests \
                  WHERE state <> 'pended' AND decided_ms IS NOT NULL AND decided_ms < $1)";
    let requests =
        "DELETE FROM pa_requests WHERE state <> 'pended' AND decided_ms IS NOT NULL AND decided_ms < $1";
    let n = match store {
        StateStore::Sqlite(p) => {
            let mut tx = p.begin().await?;
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
            n
        }
        StateStore::Postgres(p) => {
            let mut tx = p.begin().await?;
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
            n
        }
    };
    Ok(n)
}
