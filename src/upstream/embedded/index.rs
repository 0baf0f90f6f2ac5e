//! Writes the search index rows of one resource version, inside the caller's
//! write transaction: the old rows of `res` go, the rows `search::extract`
//! finds in the new body come in (multi-row inserts, a few statements per
//! resource). A deletion (`None`) leaves no rows, so the index only ever
//! describes current, non-deleted resources.

use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::{error::FhirResult, search::extract::extract};

/// Rows per INSERT statement (6 columns each stays far below SQLite's bind limit).
const CHUNK: usize = 200;

/// Rewrites the index rows of resource row `res` (type `rtype`) from `body`;
/// `None` (a deletion) removes them. `had_rows` says whether the previous
/// version was indexed (false for a new or previously deleted resource, which
/// saves six DELETEs per write when loading data).
pub async fn reindex(
    conn: &mut SqliteConnection,
    res: i64,
    rtype: &str,
    body: Option<&Value>,
    had_rows: bool,
) -> FhirResult<()> {
    for table in [
        "idx_token",
        "idx_string",
        "idx_date",
        "idx_reference",
        "idx_quantity",
        "idx_uri",
    ]
    .into_iter()
    .filter(|_| had_rows)
    {
        sqlx::query(&format!("DELETE FROM {table} WHERE res = ?"))
            .bind(res)
            .execute(&mut *conn)
            .await?;
    }
    let Some(body) = body else { return Ok(()) };
    let rows = extract(rtype, body);
    for chunk in rows.tokens.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO idx_token (res, rtype, param, system, code, display) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(res).push_bind(rtype).push_bind(r.param);
            b.push_bind(&r.system)
                .push_bind(&r.code)
                .push_bind(&r.display);
        });
        q.build().execute(&mut *conn).await?;
    }
    for chunk in rows.strings.chunks(CHUNK) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO idx_string (res, rtype, param, norm, exact) ");
        q.push_values(chunk, |mut b, r| {
            b.push_bind(res).push_bind(rtype).push_bind(r.param);
            b.push_bind(&r.norm).push_bind(&r.exact);
        });
        q.build().execute(&mut *conn).await?;
    }
    for chunk in rows.dates.chunks(CHUNK) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO idx_date (res, rtype, param, low, high) ");
        q.push_values(chunk, |mut b, r| {
            b.push_bind(res).push_bind(rtype).push_bind(r.param);
            b.push_bind(r.low).push_bind(r.high);
        });
        q.build().execute(&mut *conn).await?;
    }
    for chunk in rows.refs.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO idx_reference (res, rtype, param, target_type, target_id, url, ident_system, ident_value) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(res).push_bind(rtype).push_bind(r.param);
            b.push_bind(&r.target_type)
                .push_bind(&r.target_id)
                .push_bind(&r.url);
            b.push_bind(&r.ident_system).push_bind(&r.ident_value);
        });
        q.build().execute(&mut *conn).await?;
    }
    for chunk in rows.quantities.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO idx_quantity (res, rtype, param, value, system, code, unit) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(res).push_bind(rtype).push_bind(r.param);
            b.push_bind(r.value)
                .push_bind(&r.system)
                .push_bind(&r.code)
                .push_bind(&r.unit);
        });
        q.build().execute(&mut *conn).await?;
    }
    for chunk in rows.uris.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO idx_uri (res, rtype, param, value) ");
        q.push_values(chunk, |mut b, r| {
            b.push_bind(res)
                .push_bind(rtype)
                .push_bind(r.param)
                .push_bind(&r.value);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}
