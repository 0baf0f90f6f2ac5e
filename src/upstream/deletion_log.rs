//! The deletion log of an HTTP upstream: every deletion made through
//! fhirgate (a DELETE, or a DELETE entry of a batch or transaction) is
//! remembered in the state store with the resource's last version, read just
//! before the delete. A Bulk Data `_since` export names deletions in its
//! manifest's `deleted` list from the upstream's type history; an upstream
//! without one (or one that forgets a deleted resource's history, as
//! Medplum does) leaves this log as the only witness. The export judges the
//! logged last version under today's consent before naming the deletion, as
//! it judges any resource.
//!
//! [`Logged`] wraps the upstream; [`since`] reads the log back. Only
//! deletions through fhirgate are known here: one made directly at the
//! upstream is not (its type history, when it has one, still reports it).
//! Conditional deletes are not logged (the matched ids are not known
//! before the upstream acts). Recording happens after the upstream
//! confirmed the delete; if the state store fails then, the deletion
//! stands, the failure is logged as an error and the audit ledger still
//! has the DELETE.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::{RequestContext, Upstream};
use crate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse, Interaction},
    state::{on_pool, StateStore},
};

/// One logged deletion.
#[derive(Debug, Clone)]
pub struct Deletion {
    /// Log order.
    pub seq: i64,
    /// The resource id.
    pub id: String,
    /// When the upstream confirmed it, ms since the epoch.
    pub deleted_at: i64,
    /// The last version before the delete.
    pub last_version: Value,
}

/// An upstream whose deletions are logged.
pub struct Logged {
    inner: Arc<dyn Upstream>,
    state: StateStore,
}

impl Logged {
    /// Wraps `inner`, logging into `state`.
    pub fn new(inner: Arc<dyn Upstream>, state: StateStore) -> Self {
        Self { inner, state }
    }

    /// The current version of `Type/id`, if it can be read.
    async fn current(&self, rtype: &str, id: &str, ctx: &RequestContext) -> Option<Value> {
        let mut read = FhirRequest::new(Interaction::Read);
        read.resource_type = Some(rtype.to_owned());
        read.id = Some(id.to_owned());
        self.inner.execute(&read, ctx).await.ok()?.body
    }

    async fn log(&self, rtype: &str, id: &str, last: &Value, ctx: &RequestContext) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        if let Err(e) = record(&self.state, rtype, id, now as i64, last).await {
            tracing::error!(
                request_id = %ctx.request_id,
                error = %e,
                resource = %format!("{rtype}/{id}"),
                "deletion not logged: a _since export will not list it"
            );
        }
    }
}

/// `(Type, id)` of a batch entry that deletes one resource by id.
fn deletes(entry: &Value) -> Option<(String, String)> {
    if !entry["request"]["method"]
        .as_str()?
        .eq_ignore_ascii_case("DELETE")
    {
        return None;
    }
    let url = entry["request"]["url"].as_str()?;
    if url.contains('?') {
        return None;
    }
    let mut segs = url.trim_start_matches('/').split('/');
    let (t, id) = (segs.next()?, segs.next()?);
    (segs.next().is_none() && !t.is_empty() && !id.is_empty())
        .then(|| (t.to_owned(), id.to_owned()))
}

#[async_trait]
impl Upstream for Logged {
    async fn execute(&self, req: &FhirRequest, ctx: &RequestContext) -> FhirResult<FhirResponse> {
        match req.interaction {
            Interaction::Delete => {
                let (Some(t), Some(id)) = (req.resource_type.as_deref(), req.id.as_deref()) else {
                    return self.inner.execute(req, ctx).await;
                };
                let last = self.current(t, id, ctx).await;
                let resp = self.inner.execute(req, ctx).await?;
                if let Some(last) = last {
                    self.log(t, id, &last, ctx).await;
                }
                Ok(resp)
            }
            Interaction::BatchOrTransaction => {
                let entries = req
                    .body
                    .as_ref()
                    .and_then(|b| b["entry"].as_array())
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let mut before = Vec::new();
                for (i, e) in entries.iter().enumerate() {
                    if let Some((t, id)) = deletes(e) {
                        if let Some(last) = self.current(&t, &id, ctx).await {
                            before.push((i, t, id, last));
                        }
                    }
                }
                let resp = self.inner.execute(req, ctx).await?;
                if before.is_empty() {
                    return Ok(resp);
                }
                let answered = resp.body.as_ref().map(|b| &b["entry"]);
                for (i, t, id, last) in before {
                    let ok = answered
                        .and_then(|es| es[i]["response"]["status"].as_str())
                        .is_some_and(|s| s.trim_start().starts_with('2'));
                    if ok {
                        self.log(&t, &id, &last, ctx).await;
                    }
                }
                Ok(resp)
            }
            _ => self.inner.execute(req, ctx).await,
        }
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// Logs one deletion.
pub async fn record(
    store: &StateStore,
    rtype: &str,
    id: &str,
    deleted_at: i64,
    last: &Value,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO deletion_log (resource_type, resource_id, deleted_at, last_version) VALUES ($1, $2, $3, $4)";
    let body = last.to_string();
    on_pool!(store, |p| sqlx::query(sql)
        .bind(rtype)
        .bind(id)
        .bind(deleted_at)
        .bind(&body)
        .execute(p)
        .await
        .map(|_| ()))
}

/// Up to `limit` deletions of `rtype` at or after `since_ms`, after log
/// position `after_seq`, in log order (page through with the last `seq`).
pub async fn since(
    store: &StateStore,
    rtype: &str,
    since_ms: i64,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Deletion>, sqlx::Error> {
    let sql = "SELECT seq, resource_id, deleted_at, last_version FROM deletion_log \
               WHERE resource_type = $1 AND deleted_at >= $2 AND seq > $3 ORDER BY seq LIMIT $4";
    let rows: Vec<(i64, String, i64, String)> = on_pool!(store, |p| sqlx::query_as(sql)
        .bind(rtype)
        .bind(since_ms)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(p)
        .await)?;
    Ok(rows
        .into_iter()
        .filter_map(|(seq, id, deleted_at, body)| {
            // a row that does not parse is skipped (it was written by us)
            let last_version = serde_json::from_str(&body).ok()?;
            Some(Deletion {
                seq,
                id,
                deleted_at,
                last_version,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_deletes_by_id_are_logged_from_bundles() {
        let e = |m: &str, u: &str| json!({"request": {"method": m, "url": u}});
        assert_eq!(
            deletes(&e("DELETE", "Observation/o1")),
            Some(("Observation".into(), "o1".into()))
        );
        assert_eq!(
            deletes(&e("delete", "/Patient/p")),
            Some(("Patient".into(), "p".into()))
        );
        assert_eq!(deletes(&e("DELETE", "Observation?code=x")), None);
        assert_eq!(deletes(&e("DELETE", "Observation")), None);
        assert_eq!(deletes(&e("DELETE", "Observation/o1/_history/2")), None);
        assert_eq!(deletes(&e("PUT", "Observation/o1")), None);
    }

    #[tokio::test]
    async fn the_log_reads_back_by_type_time_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        for (i, (t, at)) in [
            ("Observation", 100),
            ("Patient", 150),
            ("Observation", 200),
            ("Observation", 300),
        ]
        .into_iter()
        .enumerate()
        {
            let v = json!({"resourceType": t, "id": format!("r{i}")});
            record(&store, t, &format!("r{i}"), at, &v).await.unwrap();
        }
        let all = since(&store, "Observation", 150, 0, 10).await.unwrap();
        let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["r2", "r3"]);
        assert_eq!(all[0].last_version["id"], "r2");
        let page = since(&store, "Observation", 0, 0, 1).await.unwrap();
        assert_eq!(page[0].id, "r0");
        let next = since(&store, "Observation", 0, page[0].seq, 1)
            .await
            .unwrap();
        assert_eq!(next[0].id, "r2");
    }
}
