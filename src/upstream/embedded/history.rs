//! History of the embedded store: instance, type and system level
//! (R4 http.html §3.1.0.2.3), newest first, with `_count`, `_since` and paging.
//! Next links pin the newest sequence number seen on the first page
//! (`_hseq`), so pages stay stable while new versions are written.

use serde_json::{json, Value};
use sqlx::Row;

use super::EmbeddedStore;
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
    upstream::RequestContext,
};

/// Answers a history interaction with a `history` Bundle.
pub async fn history(
    store: &EmbeddedStore,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let super::paging::Page { count, offset } = super::paging::page(req, ctx)?;
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let since = super::paging::since(req)?;
    let hseq: i64 = match req.param("_hseq") {
        Some(h) => h
            .parse()
            .map_err(|_| FhirError::processing("_hseq must be an integer"))?,
        None => {
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM resource_version")
                .fetch_one(&store.pool)
                .await?
        }
    };

    let mut filter = String::from("seq <= ?");
    match req.interaction {
        Interaction::HistoryInstance => filter.push_str(" AND type = ? AND id = ?"),
        Interaction::HistoryType => filter.push_str(" AND type = ?"),
        _ => {}
    }
    if since.is_some() {
        filter.push_str(" AND last_updated >= ?");
    }
    let count_sql = format!("SELECT COUNT(*) FROM resource_version WHERE {filter}");
    let total: i64 = bind_filter(&count_sql, hseq, req, since.as_deref())
        .fetch_one(&store.pool)
        .await?
        .get(0);
    if req.interaction == Interaction::HistoryInstance && total == 0 {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT res FROM resource WHERE type = ? AND id = ?")
                .bind(req.resource_type.as_deref())
                .bind(req.id.as_deref())
                .fetch_optional(&store.pool)
                .await?;
        if exists.is_none() {
            return Err(FhirError::not_found("no such resource"));
        }
    }
    let page_sql = format!(
        "SELECT type, id, version, last_updated, method, deleted, body FROM resource_version WHERE {filter} ORDER BY seq DESC LIMIT {count} OFFSET {offset}"
    );
    let rows = bind_filter(&page_sql, hseq, req, since.as_deref())
        .fetch_all(&store.pool)
        .await?;

    let base = &ctx.base;
    let mut entries = Vec::with_capacity(rows.len());
    for r in rows {
        let t: String = r.get(0);
        let id: String = r.get(1);
        let version: i64 = r.get(2);
        let last_updated: String = r.get(3);
        let method: String = r.get(4);
        let deleted = r.get::<i64, _>(5) != 0;
        let body: Option<String> = r.get(6);
        let (status, url) = match (method.as_str(), version) {
            ("POST", _) => ("201 Created", t.clone()),
            ("DELETE", _) => ("200 OK", format!("{t}/{id}")),
            (_, 1) => ("201 Created", format!("{t}/{id}")),
            _ => ("200 OK", format!("{t}/{id}")),
        };
        let mut e = json!({
            "fullUrl": format!("{base}/{t}/{id}"),
            "request": {"method": method, "url": url},
            "response": {"status": status, "etag": format!("W/\"{version}\""), "lastModified": last_updated},
        });
        if !deleted {
            if let Some(b) = body {
                e["resource"] = serde_json::from_str::<Value>(&b)?;
            }
        }
        entries.push(e);
    }

    let path = match req.interaction {
        Interaction::HistoryInstance => format!(
            "{}/{}/_history",
            req.resource_type.as_deref().unwrap_or_default(),
            req.id.as_deref().unwrap_or_default()
        ),
        Interaction::HistoryType => format!(
            "{}/_history",
            req.resource_type.as_deref().unwrap_or_default()
        ),
        _ => "_history".to_owned(),
    };
    let link = |off: i64| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("_count", &count.to_string());
        if let Some(s) = &since {
            q.append_pair("_since", s);
        }
        q.append_pair("_hseq", &hseq.to_string());
        q.append_pair("_offset", &off.to_string());
        format!("{base}/{path}?{}", q.finish())
    };
    let mut links = vec![json!({"relation": "self", "url": link(offset)})];
    if offset + i64::from(count) < total && count > 0 {
        links.push(json!({"relation": "next", "url": link(offset + i64::from(count))}));
    }
    if offset > 0 {
        links
            .push(json!({"relation": "previous", "url": link((offset - i64::from(count)).max(0))}));
    }
    Ok(FhirResponse::ok(json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": links,
        "entry": entries,
    })))
}

fn bind_filter<'q>(
    sql: &'q str,
    hseq: i64,
    req: &'q FhirRequest,
    since: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let mut q = sqlx::query(sql).bind(hseq);
    match req.interaction {
        Interaction::HistoryInstance => {
            q = q.bind(req.resource_type.as_deref()).bind(req.id.as_deref());
        }
        Interaction::HistoryType => q = q.bind(req.resource_type.as_deref()),
        _ => {}
    }
    if let Some(s) = since {
        q = q.bind(s);
    }
    q
}
