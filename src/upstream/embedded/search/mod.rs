//! Search over the embedded store's index tables (R4 search.html): type,
//! system (`_type`) and Patient-compartment search answered as a `searchset`
//! Bundle, and the conditional matching behind `If-None-Exist` and conditional
//! update/delete. Parsing lives in `crate::search`; this module plans the SQL
//! (`sql`), pages it (`_count`/`_offset` over a deterministic order ending in
//! `res`; under the default order `next` links also carry a keyset `_cursor`,
//! the last row's `res`, so later pages do not re-read the rows before them), adds `_include`/`_revinclude` (`include`) and renders the Bundle
//! (`bundle`). A search reads inside one transaction, so the total, the page
//! and the includes come from one snapshot.

mod bundle;
pub(crate) mod export;
mod include;
mod sql;

use serde_json::Value;
use sqlx::{Row, SqliteConnection};

use super::EmbeddedStore;
use crate::{
    error::{FhirError, FhirResult, IssueType},
    fhir::{FhirRequest, FhirResponse, Interaction, PreferHandling},
    search::{
        compartment::patient_compartment_params,
        query::{self, SearchQuery, SortBy, Summary, TotalMode},
    },
    upstream::RequestContext,
};
use sql::{drive_rank, Bind, Compiler, Scope};

/// A resource row read by a search.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    /// Row id.
    pub res: i64,
    /// Type.
    pub rtype: String,
    /// Logical id.
    pub id: String,
    /// JSON text.
    pub body: String,
}

/// What is searched.
struct Target<'a> {
    /// `Some(type)` for type/compartment search, None for system search.
    rtype: Option<&'a str>,
    /// Patient compartment id.
    compartment: Option<&'a str>,
}

/// The WHERE clause of a search and its binds.
struct Plan {
    where_sql: String,
    binds: Vec<Bind>,
    order_sql: String,
    order_binds: Vec<Bind>,
}

fn plan(t: &Target<'_>, q: &SearchQuery) -> Plan {
    let mut c = Compiler::default();
    let scope = t.rtype.map_or(Scope::Column, Scope::Type);
    let has_id = q.clauses.iter().any(|cl| cl.def.name == "_id");
    let driver = match (t.rtype, has_id, t.compartment) {
        (Some(_), false, None) => q
            .clauses
            .iter()
            .enumerate()
            .filter_map(|(i, cl)| drive_rank(cl).map(|r| (r, i)))
            .min()
            .map(|(_, i)| i),
        _ => None,
    };
    let mut parts: Vec<String> = Vec::new();
    match t.rtype {
        Some(rt) => {
            let plus = if driver.is_some() || t.compartment.is_some() {
                "+"
            } else {
                ""
            };
            c.binds.push(Bind::T(rt.to_owned()));
            parts.push(format!("{plus}r.type = ?"));
        }
        None if !q.types.is_empty() => {
            let qs: Vec<&str> = q
                .types
                .iter()
                .map(|ty| {
                    c.binds.push(Bind::T(ty.clone()));
                    "?"
                })
                .collect();
            parts.push(format!("r.type IN ({})", qs.join(", ")));
        }
        None => {}
    }
    parts.push("r.deleted = 0".into());
    if let (Some(rt), Some(pid)) = (t.rtype, t.compartment) {
        parts.push(compartment_sql(&mut c, rt, pid));
    }
    for (i, cl) in q.clauses.iter().enumerate() {
        parts.push(c.clause(cl, "r", scope, driver == Some(i)));
    }
    let where_sql = parts.join(" AND ");
    let binds = std::mem::take(&mut c.binds);
    let mut order = Vec::new();
    for k in &q.sort {
        let dir = if k.desc { "DESC" } else { "ASC" };
        let expr = match k.by {
            SortBy::Id => "r.id".to_owned(),
            SortBy::LastUpdated => "r.last_updated".to_owned(),
            SortBy::Param(def) => {
                let (tab, col) = match def.kind {
                    capability::ParamType::String => ("idx_string", "norm"),
                    capability::ParamType::Date if k.desc => ("idx_date", "high"),
                    capability::ParamType::Date => ("idx_date", "low"),
                    capability::ParamType::Token => ("idx_token", "code"),
                    capability::ParamType::Uri => ("idx_uri", "value"),
                    _ => ("idx_quantity", "value"),
                };
                let agg = if k.desc { "MAX" } else { "MIN" };
                c.binds.push(Bind::T(def.name.to_owned()));
                format!("(SELECT {agg}(s.{col}) FROM {tab} s WHERE s.res = r.res AND +s.param = ?)")
            }
        };
        order.push(format!("{expr} {dir}"));
    }
    order.push("r.res ASC".into());
    Plan {
        where_sql,
        binds,
        order_sql: order.join(", "),
        order_binds: std::mem::take(&mut c.binds),
    }
}

fn compartment_sql(c: &mut Compiler, rtype: &str, pid: &str) -> String {
    let params = patient_compartment_params(rtype);
    let mut alts = Vec::new();
    if rtype == "Patient" {
        c.binds.push(Bind::T(pid.to_owned()));
        alts.push("r.id = ?".to_owned());
    }
    if !params.is_empty() {
        c.binds.push(Bind::T(rtype.to_owned()));
        let qs: Vec<&str> = params
            .iter()
            .map(|p| {
                c.binds.push(Bind::T((*p).to_owned()));
                "?"
            })
            .collect();
        c.binds.push(Bind::T(pid.to_owned()));
        alts.push(format!(
            "r.res IN (SELECT cx.res FROM idx_reference cx WHERE cx.rtype = ? AND cx.param IN ({}) AND cx.target_id = ? AND cx.target_type = 'Patient')",
            qs.join(", ")
        ));
    }
    if alts.is_empty() {
        "0".into()
    } else {
        format!("({})", alts.join(" OR "))
    }
}

pub(crate) fn bind_all<'q>(
    sql: &'q str,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = match b {
            Bind::T(s) => q.bind(s.as_str()),
            Bind::I(i) => q.bind(*i),
            Bind::F(f) => q.bind(*f),
        };
    }
    q
}

fn to_hit(r: &sqlx::sqlite::SqliteRow) -> Hit {
    Hit {
        res: r.get(0),
        rtype: r.get(1),
        id: r.get(2),
        body: r.get::<Option<String>, _>(3).unwrap_or_default(),
    }
}

/// Type, system and compartment search; answers a searchset Bundle.
pub async fn search(
    store: &EmbeddedStore,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let (target, path) = match req.interaction {
        Interaction::SearchType => {
            let rt = req
                .resource_type
                .as_deref()
                .ok_or_else(|| FhirError::bad_request("no resource type"))?;
            (
                Target {
                    rtype: Some(rt),
                    compartment: None,
                },
                rt.to_owned(),
            )
        }
        Interaction::SearchSystem => (
            Target {
                rtype: None,
                compartment: None,
            },
            String::new(),
        ),
        Interaction::SearchCompartment => {
            let rt = req
                .resource_type
                .as_deref()
                .ok_or_else(|| FhirError::bad_request("no resource type"))?;
            let Some((ct, cid)) = req.compartment.as_ref() else {
                return Err(FhirError::bad_request("no compartment"));
            };
            if ct != "Patient" {
                return Err(FhirError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    IssueType::NotSupported,
                    format!("the {ct} compartment is not supported; only Patient"),
                ));
            }
            (
                Target {
                    rtype: Some(rt),
                    compartment: Some(cid.as_str()),
                },
                format!("{ct}/{cid}/{rt}"),
            )
        }
        _ => return Err(FhirError::bad_request("not a search")),
    };
    let q = query::parse(target.rtype.unwrap_or("Resource"), &req.params, &ctx.base)?;
    if req.prefer.handling == Some(PreferHandling::Strict) && !q.ignored.is_empty() {
        return Err(FhirError::processing(format!(
            "unknown or unsupported search parameters: {}",
            q.ignored.join("; ")
        )));
    }
    let mut notes = q.ignored.clone();
    let max = ctx.max_page_size.max(1);
    let mut count = q.count.unwrap_or(ctx.default_page_size).min(max);
    if q.count.is_some_and(|c| c > max) {
        notes.push(format!(
            "_count {} exceeds the maximum page size; {max} used",
            q.count.unwrap_or(max)
        ));
    }
    if q.summary == Summary::Count {
        count = 0;
    }
    let p = plan(&target, &q);
    let mut tx = store.pool.begin().await?;
    let want_total = q.total != TotalMode::None || q.summary == Summary::Count;
    let mut hits = Vec::new();
    // Under the default order (row key) a `_cursor` pages by keyset: the
    // page starts after the previous page's last row, whatever its offset.
    let cursor = q.after.filter(|_| q.sort.is_empty());
    if count > 0 {
        let (keyset, skip) = match cursor {
            Some(_) => (" AND r.res > ?", 0),
            None => ("", q.offset),
        };
        let sql = format!(
            "SELECT r.res, r.type, r.id, r.body FROM resource r WHERE {}{keyset} ORDER BY {} LIMIT {} OFFSET {skip}",
            p.where_sql, p.order_sql, u64::from(count) + 1
        );
        let mut binds = p.binds.clone();
        if let Some(after) = cursor {
            binds.push(sql::Bind::I(after));
        }
        binds.extend(p.order_binds.iter().cloned());
        hits = bind_all(&sql, &binds)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(to_hit)
            .collect();
    }
    let has_more = hits.len() > count as usize;
    hits.truncate(count as usize);
    // A last page that is not empty (or a first page) already tells the exact
    // total; only otherwise is a COUNT over the whole match needed.
    let page_tells_total = count > 0 && !has_more && (!hits.is_empty() || q.offset == 0);
    let total: Option<i64> = match (want_total, page_tells_total) {
        (false, _) => None,
        (true, true) => Some(
            i64::try_from(q.offset)
                .unwrap_or(i64::MAX)
                .saturating_add(hits.len() as i64),
        ),
        (true, false) => {
            let sql = format!("SELECT COUNT(*) FROM resource r WHERE {}", p.where_sql);
            Some(bind_all(&sql, &p.binds).fetch_one(&mut *tx).await?.get(0))
        }
    };
    let included = include::collect(&mut tx, &hits, &q).await?;
    tx.commit().await?;
    let page = bundle::Page {
        base: &ctx.base,
        path: &path,
        count,
        offset: q.offset,
        total,
        has_more,
        cursor,
        next_cursor: hits.last().filter(|_| q.sort.is_empty()).map(|h| h.res),
    };
    Ok(FhirResponse::ok(bundle::render(
        &page, &q, &hits, &included, &notes,
    )?))
}

/// Ids of current resources of `rtype` matching a conditional query, seen
/// from inside the caller's (write) transaction. Unknown parameters are an
/// error here: ignoring one would widen the match.
pub async fn conditional_matches(
    conn: &mut SqliteConnection,
    rtype: &str,
    query: &[(String, String)],
    base: &str,
) -> FhirResult<Vec<String>> {
    let q = query::parse(rtype, query, base)?;
    if !q.ignored.is_empty() {
        return Err(FhirError::processing(format!(
            "unknown or unsupported search parameters in the condition: {}",
            q.ignored.join("; ")
        )));
    }
    let p = plan(
        &Target {
            rtype: Some(rtype),
            compartment: None,
        },
        &q,
    );
    let sql = format!(
        "SELECT r.id FROM resource r WHERE {} ORDER BY r.res",
        p.where_sql
    );
    let rows = bind_all(&sql, &p.binds).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
}

/// Parses a stored body (rows are written by us, so this only fails on corruption).
pub(crate) fn parse_body(body: &str) -> FhirResult<Value> {
    serde_json::from_str(body).map_err(FhirError::internal)
}

#[cfg(test)]
mod tests;
