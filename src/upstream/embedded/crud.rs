//! The write rules of the embedded store, inside a caller's transaction so
//! that single interactions (`instance`) and transaction Bundles (`bundle`)
//! share them: create (with `If-None-Exist`), update (with `If-Match`,
//! update-as-create), conditional update and delete (R4 http.html
//! §3.1.0.4–3.1.0.7), versioning and `meta` stamping.

use axum::http::StatusCode;
use serde_json::{Map, Value};
use sqlx::{Row, SqliteConnection};

use super::{index, search};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{is_valid_id, now_instant, request::parse_etag, FhirResponse},
};

/// The current row of a resource.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// Row id keying the index tables.
    pub res: i64,
    /// Latest version number.
    pub version: i64,
    /// Whether the latest version is a deletion.
    pub deleted: bool,
    /// JSON text of the latest version (None when deleted).
    pub body: Option<String>,
}

/// What a write produced.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// Resource type.
    pub rtype: String,
    /// Logical id.
    pub id: String,
    /// New version.
    pub version: i64,
    /// `meta.lastUpdated` of the new version.
    pub last_updated: String,
    /// The stored resource (None for deletions and no-op deletes).
    pub body: Option<Value>,
    /// Whether the write created the resource (201) rather than updating it.
    pub created: bool,
}

impl Written {
    /// The HTTP answer for a single write.
    pub fn response(&self, base: &str) -> FhirResponse {
        let status = if self.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut r = FhirResponse::new(status, self.body.clone());
        r.version = Some(self.version.to_string());
        r.last_modified = Some(self.last_updated.clone());
        if self.body.is_some() {
            r.location = Some(format!(
                "{base}/{}/{}/_history/{}",
                self.rtype, self.id, self.version
            ));
        }
        r
    }
}

pub(crate) async fn current(
    conn: &mut SqliteConnection,
    rtype: &str,
    id: &str,
) -> FhirResult<Option<Current>> {
    let row =
        sqlx::query("SELECT res, version, deleted, body FROM resource WHERE type = ? AND id = ?")
            .bind(rtype)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| Current {
        res: r.get(0),
        version: r.get(1),
        deleted: r.get::<i64, _>(2) != 0,
        body: r.get(3),
    }))
}

/// Checks a body against the URL type and returns it as an object.
pub(crate) fn check_body(body: Option<&Value>, rtype: &str) -> FhirResult<Map<String, Value>> {
    let obj = body.and_then(Value::as_object).ok_or_else(|| {
        FhirError::bad_request("the request body must be a FHIR resource (JSON object)")
    })?;
    match obj.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == rtype => {}
        Some(t) => {
            return Err(FhirError::bad_request(format!(
                "resourceType '{t}' in the body does not match '{rtype}' in the URL"
            )))
        }
        None => return Err(FhirError::bad_request("the body has no resourceType")),
    }
    if let Some(id) = obj.get("id") {
        match id.as_str() {
            Some(s) if is_valid_id(s) => {}
            _ => {
                return Err(FhirError::bad_request(
                    "the body's id is not a valid resource id",
                ))
            }
        }
    }
    let mut path = rtype.to_owned();
    if let Some(bad) = unresolved_placeholder(body.unwrap_or(&Value::Null), &mut path) {
        return Err(FhirError::unprocessable(format!(
            "{bad} is a placeholder reference that does not resolve to a resource in this request"
        )));
    }
    Ok(obj.clone())
}

/// Finds a `reference` still holding a `urn:uuid:`/`urn:oid:` placeholder:
/// storing it would leave a reference nothing can resolve (a business-rule
/// failure, 422). Returns `path.reference 'value'`. Contained resources are
/// skipped (they use `#id` references).
fn unresolved_placeholder(v: &Value, path: &mut String) -> Option<String> {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "reference" {
                    if let Some(r) = child
                        .as_str()
                        .filter(|r| r.starts_with("urn:uuid:") || r.starts_with("urn:oid:"))
                    {
                        return Some(format!("{path}.reference '{r}'"));
                    }
                }
                if k == "contained" {
                    continue;
                }
                let len = path.len();
                path.push('.');
                path.push_str(k);
                let found = unresolved_placeholder(child, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Array(items) => items.iter().find_map(|i| unresolved_placeholder(i, path)),
        _ => None,
    }
}

/// Puts `resourceType`, `id`, `meta` first and sets version and time.
fn stamp(mut obj: Map<String, Value>, rtype: &str, id: &str, version: i64, now: &str) -> Value {
    let mut meta = match obj.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version.to_string()));
    meta.insert("lastUpdated".into(), Value::String(now.to_owned()));
    obj.remove("resourceType");
    obj.remove("id");
    let mut out = Map::with_capacity(obj.len() + 3);
    out.insert("resourceType".into(), Value::String(rtype.to_owned()));
    out.insert("id".into(), Value::String(id.to_owned()));
    out.insert("meta".into(), Value::Object(meta));
    out.extend(obj);
    Value::Object(out)
}

/// Writes a new version (or the first) of `rtype/id`. `obj` None means delete.
pub(crate) async fn write_version(
    conn: &mut SqliteConnection,
    rtype: &str,
    id: &str,
    obj: Option<Map<String, Value>>,
    prev: Option<&Current>,
    method: &str,
) -> FhirResult<Written> {
    let version = prev.map(|p| p.version + 1).unwrap_or(1);
    let now = now_instant();
    let body = obj.map(|o| stamp(o, rtype, id, version, &now));
    let text = body.as_ref().map(serde_json::to_string).transpose()?;
    let deleted = i64::from(body.is_none());
    let res = match prev {
        Some(p) => {
            sqlx::query("UPDATE resource SET version = ?, last_updated = ?, deleted = ?, body = ? WHERE res = ?")
                .bind(version)
                .bind(&now)
                .bind(deleted)
                .bind(&text)
                .bind(p.res)
                .execute(&mut *conn)
                .await?;
            p.res
        }
        None => sqlx::query(
            "INSERT INTO resource (type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(rtype)
        .bind(id)
        .bind(version)
        .bind(&now)
        .bind(deleted)
        .bind(&text)
        .execute(&mut *conn)
        .await?
        .last_insert_rowid(),
    };
    sqlx::query(
        "INSERT INTO resource_version (type, id, version, last_updated, method, deleted, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(rtype)
    .bind(id)
    .bind(version)
    .bind(&now)
    .bind(method)
    .bind(deleted)
    .bind(&text)
    .execute(&mut *conn)
    .await?;
    index::reindex(
        &mut *conn,
        res,
        rtype,
        body.as_ref(),
        prev.is_some_and(|p| !p.deleted),
    )
    .await?;
    super::journal::Journal::note(super::journal::Version {
        rtype: rtype.to_owned(),
        id: id.to_owned(),
        version,
        last_updated: now.clone(),
    });
    Ok(Written {
        rtype: rtype.to_owned(),
        id: id.to_owned(),
        version,
        last_updated: now,
        body,
        created: prev.is_none_or(|p| p.deleted),
    })
}

/// A fresh server-assigned id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Parses a conditional query string (`a=b&c=d`) into pairs.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Outcome of a create inside a transaction.
pub(crate) enum CreateOutcome {
    /// Written.
    Created(Written),
    /// `If-None-Exist` matched this existing resource; nothing written.
    Exists(Value),
}

/// Create (R4 §3.1.0.7), honouring `If-None-Exist` (§3.1.0.8.2). A client id is ignored
/// unless `forced_id` (a transaction's resolved `urn:uuid`) is given.
pub(crate) async fn create_in(
    conn: &mut SqliteConnection,
    rtype: &str,
    body: Option<&Value>,
    if_none_exist: Option<&str>,
    base: &str,
) -> FhirResult<CreateOutcome> {
    let obj = check_body(body, rtype)?;
    if let Some(q) = if_none_exist {
        let pairs = parse_query(q);
        if pairs.is_empty() {
            return Err(FhirError::bad_request(
                "If-None-Exist has no search parameters",
            ));
        }
        let ids = search::conditional_matches(&mut *conn, rtype, &pairs, base).await?;
        match ids.as_slice() {
            [] => {}
            [one] => {
                let cur = current(&mut *conn, rtype, one).await?;
                let body = cur
                    .and_then(|c| c.body)
                    .map(|b| serde_json::from_str(&b))
                    .transpose()?
                    .unwrap_or(Value::Null);
                return Ok(CreateOutcome::Exists(body));
            }
            _ => {
                return Err(FhirError::precondition_failed(
                    "If-None-Exist matched more than one resource",
                ))
            }
        }
    }
    let id = new_id();
    Ok(CreateOutcome::Created(
        write_version(conn, rtype, &id, Some(obj), None, "POST").await?,
    ))
}

/// Update by id (R4 §3.1.0.4), with `If-Match` and update-as-create.
pub(crate) async fn update_in(
    conn: &mut SqliteConnection,
    rtype: &str,
    id: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> FhirResult<Written> {
    let obj = check_body(body, rtype)?;
    match obj.get("id").and_then(Value::as_str) {
        Some(b) if b == id => {}
        Some(b) => {
            return Err(FhirError::bad_request(format!(
                "the body's id '{b}' does not match the id '{id}' in the URL"
            )))
        }
        None => {
            return Err(FhirError::bad_request(
                "an update body must carry the resource id",
            ))
        }
    }
    let prev = current(&mut *conn, rtype, id).await?;
    if let Some(want) = if_match {
        let want = parse_etag(want).ok_or_else(|| {
            FhirError::bad_request("If-Match must be a version ETag like W/\"1\"")
        })?;
        match &prev {
            Some(p) if !p.deleted && p.version.to_string() == want => {}
            Some(p) if !p.deleted => {
                return Err(FhirError::precondition_failed(format!(
                    "version conflict: If-Match {want} but the current version is {}",
                    p.version
                )))
            }
            _ => {
                return Err(FhirError::precondition_failed(format!(
                    "If-Match given but {rtype}/{id} does not exist"
                )))
            }
        }
    }
    write_version(conn, rtype, id, Some(obj), prev.as_ref(), "PUT").await
}

/// Conditional update (R4 §3.1.0.4.2).
pub(crate) async fn conditional_update_in(
    conn: &mut SqliteConnection,
    rtype: &str,
    query: &[(String, String)],
    body: Option<&Value>,
    if_match: Option<&str>,
    base: &str,
) -> FhirResult<Written> {
    if query.is_empty() {
        return Err(FhirError::bad_request(
            "a conditional update needs search parameters",
        ));
    }
    let obj = check_body(body, rtype)?;
    let body_id = obj.get("id").and_then(Value::as_str).map(str::to_owned);
    let ids = search::conditional_matches(&mut *conn, rtype, query, base).await?;
    match ids.as_slice() {
        [] => {
            let id = body_id.unwrap_or_else(new_id);
            let prev = current(&mut *conn, rtype, &id).await?;
            if prev.as_ref().is_some_and(|p| !p.deleted) {
                return Err(FhirError::conflict(format!(
                    "{rtype}/{id} exists but does not match the conditional update's criteria"
                )));
            }
            write_version(conn, rtype, &id, Some(obj), prev.as_ref(), "PUT").await
        }
        [one] => {
            if body_id.as_deref().is_some_and(|b| b != one) {
                return Err(FhirError::bad_request(
                    "the body's id differs from the resource matched by the conditional update",
                ));
            }
            let mut with_id = obj;
            with_id.insert("id".into(), Value::String(one.clone()));
            update_in(conn, rtype, one, Some(&Value::Object(with_id)), if_match).await
        }
        _ => Err(FhirError::precondition_failed(
            "the conditional update's criteria matched more than one resource",
        )),
    }
}

/// Delete by id (R4 §3.1.0.6). Deleting an already deleted resource succeeds and writes nothing.
pub(crate) async fn delete_in(
    conn: &mut SqliteConnection,
    rtype: &str,
    id: &str,
) -> FhirResult<Option<Written>> {
    let prev = current(&mut *conn, rtype, id).await?;
    match prev {
        None => Err(FhirError::not_found(format!("{rtype}/{id} is not known"))),
        Some(p) if p.deleted => Ok(None),
        Some(p) => Ok(Some(
            write_version(conn, rtype, id, None, Some(&p), "DELETE").await?,
        )),
    }
}
