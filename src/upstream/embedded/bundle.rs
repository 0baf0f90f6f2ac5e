//! Batch and transaction Bundles in the embedded store (R4 http.html §3.1.0.11).
//!
//! A transaction is all or nothing: every write entry runs inside one SQLite
//! transaction in the order the specification gives (DELETE, POST, PUT, then
//! GET after the commit), `urn:uuid` `fullUrl`s are resolved to the ids the
//! server assigns before anything is written, and the first failing entry
//! rolls everything back and is named in the error. A batch runs each entry
//! on its own and reports each entry's outcome.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::SqliteConnection;
use std::collections::HashMap;

use super::{
    crud::{self, Written},
    search, EmbeddedStore,
};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{request::bundle_entry_request, FhirRequest, FhirResponse, Interaction},
    upstream::{RequestContext, Upstream},
};

/// One parsed Bundle entry.
struct Entry {
    /// Position in the request Bundle.
    index: usize,
    method: Method,
    /// The entry's request classified like an HTTP request.
    req: FhirRequest,
    /// `fullUrl` (for `urn:uuid` resolution).
    full_url: Option<String>,
    /// Id pre-assigned to a create.
    assigned_id: Option<String>,
}

/// Answers `POST [base]` with a batch or transaction Bundle.
pub async fn batch_or_transaction(
    store: &EmbeddedStore,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let body = req
        .body
        .as_ref()
        .filter(|b| b["resourceType"] == "Bundle")
        .ok_or_else(|| {
            FhirError::bad_request("POST to the base needs a Bundle of type batch or transaction")
        })?;
    let kind = body["type"].as_str().unwrap_or_default();
    let raw = body["entry"].as_array().cloned().unwrap_or_default();
    match kind {
        "transaction" => {
            let entries = raw
                .iter()
                .enumerate()
                .map(|(i, e)| parse_entry(i, e).map_err(|err| at(i, err)))
                .collect::<FhirResult<Vec<_>>>()?;
            transaction(store, entries, ctx).await
        }
        "batch" => batch(store, &raw, ctx).await,
        _ => Err(FhirError::bad_request(format!(
            "Bundle.type must be batch or transaction, not '{kind}'"
        ))),
    }
}

fn at(i: usize, mut e: FhirError) -> FhirError {
    e.message = format!("Bundle.entry[{i}]: {}", e.message);
    e
}

fn parse_entry(index: usize, e: &Value) -> FhirResult<Entry> {
    let (method, req) = bundle_entry_request(e)?;
    if req.interaction == Interaction::Operation {
        return Err(FhirError::bad_request(
            "operations are not supported inside Bundles",
        ));
    }
    Ok(Entry {
        index,
        method,
        req,
        full_url: e["fullUrl"].as_str().map(str::to_owned),
        assigned_id: None,
    })
}

fn order(m: &Method) -> u8 {
    match *m {
        Method::DELETE => 0,
        Method::POST => 1,
        Method::PUT => 2,
        _ => 3,
    }
}

async fn transaction(
    store: &EmbeddedStore,
    mut entries: Vec<Entry>,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let mut tx = store.write().await?;
    // Resolve urn:uuid placeholders first: creates get their ids now, conditional
    // creates that match map to the existing resource.
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut existing: HashMap<usize, Value> = HashMap::new();
    for e in entries
        .iter_mut()
        .filter(|e| e.req.interaction == Interaction::Create)
    {
        let t = e.req.resource_type.clone().unwrap_or_default();
        let mut id = crud::new_id();
        if let Some(q) = &e.req.if_none_exist {
            let pairs = crud::parse_query(q);
            let matches = search::conditional_matches(&mut tx, &t, &pairs, &ctx.base)
                .await
                .map_err(|err| at(e.index, err))?;
            match matches.as_slice() {
                [] => {}
                [one] => {
                    id = one.clone();
                    let cur = crud::current(&mut tx, &t, one).await?;
                    let body: Value = cur
                        .and_then(|c| c.body)
                        .map(|b| serde_json::from_str(&b))
                        .transpose()?
                        .unwrap_or(Value::Null);
                    existing.insert(e.index, body);
                }
                _ => {
                    return Err(at(
                        e.index,
                        FhirError::precondition_failed(
                            "ifNoneExist matched more than one resource",
                        ),
                    ))
                }
            }
        }
        if let Some(full) = &e.full_url {
            ids.insert(full.clone(), format!("{t}/{id}"));
        }
        e.assigned_id = Some(id);
    }
    for e in &mut entries {
        if let Some(b) = e.req.body.as_mut() {
            resolve_references(b, &ids);
        }
    }
    let mut results: Vec<Option<Value>> = vec![None; entries.len()];
    let mut reads = Vec::new();
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|e| order(&e.method));
    for e in sorted {
        if matches!(e.method, Method::GET | Method::HEAD) {
            reads.push(e);
            continue;
        }
        let written = if let Some(body) = existing.get(&e.index) {
            let mut r = json!({"response": {"status": "200 OK"}, "resource": body});
            if let Some(v) = body["meta"]["versionId"].as_str() {
                r["response"]["etag"] = json!(format!("W/\"{v}\""));
            }
            r
        } else {
            let w = write_entry(&mut tx, e, &ctx.base)
                .await
                .map_err(|err| at(e.index, err))?;
            written_entry(w.as_ref(), &ctx.base)
        };
        results[e.index] = Some(written);
    }
    tx.commit().await?;
    for e in reads {
        results[e.index] = Some(read_entry(store, e, ctx).await);
    }
    Ok(FhirResponse::ok(json!({
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": results.into_iter().map(|r| r.unwrap_or(Value::Null)).collect::<Vec<_>>(),
    })))
}

async fn write_entry(
    conn: &mut SqliteConnection,
    e: &Entry,
    base: &str,
) -> FhirResult<Option<Written>> {
    let t = e.req.resource_type.as_deref().unwrap_or_default();
    match e.req.interaction {
        Interaction::Create => {
            let obj = crud::check_body(e.req.body.as_ref(), t)?;
            let id = e.assigned_id.clone().unwrap_or_else(crud::new_id);
            Ok(Some(
                crud::write_version(conn, t, &id, Some(obj), None, "POST").await?,
            ))
        }
        Interaction::Update => {
            let id = e.req.id.as_deref().unwrap_or_default();
            Ok(Some(
                crud::update_in(conn, t, id, e.req.body.as_ref(), e.req.if_match.as_deref())
                    .await?,
            ))
        }
        Interaction::ConditionalUpdate => Ok(Some(
            crud::conditional_update_in(
                conn,
                t,
                &e.req.params,
                e.req.body.as_ref(),
                e.req.if_match.as_deref(),
                base,
            )
            .await?,
        )),
        Interaction::Delete => {
            crud::delete_in(conn, t, e.req.id.as_deref().unwrap_or_default()).await
        }
        Interaction::ConditionalDelete => {
            let ids = search::conditional_matches(conn, t, &e.req.params, base).await?;
            match ids.as_slice() {
                [] => Ok(None),
                [one] => crud::delete_in(conn, t, one).await,
                _ => Err(FhirError::precondition_failed(
                    "conditional delete matched more than one resource",
                )),
            }
        }
        _ => Err(FhirError::method_not_allowed(
            "this interaction is not allowed in a Bundle",
        )),
    }
}

fn written_entry(w: Option<&Written>, base: &str) -> Value {
    match w {
        None => json!({"response": {"status": "204 No Content"}}),
        Some(w) => {
            let status = if w.created { "201 Created" } else { "200 OK" };
            let mut r = json!({"response": {
                "status": status,
                "etag": format!("W/\"{}\"", w.version),
                "lastModified": w.last_updated,
            }});
            if let Some(b) = &w.body {
                r["fullUrl"] = json!(format!("{base}/{}/{}", w.rtype, w.id));
                r["resource"] = b.clone();
                r["response"]["location"] = json!(format!(
                    "{base}/{}/{}/_history/{}",
                    w.rtype, w.id, w.version
                ));
            } else {
                r["response"]["status"] = json!("200 OK");
            }
            r
        }
    }
}

async fn read_entry(store: &EmbeddedStore, e: &Entry, ctx: &RequestContext) -> Value {
    match store.execute(&e.req, ctx).await {
        Ok(r) => response_entry(&r),
        Err(err) => error_entry(&err, &ctx.request_id),
    }
}

fn response_entry(r: &FhirResponse) -> Value {
    let mut v = json!({"response": {"status": status_line(r.status)}});
    if let Some(b) = &r.body {
        v["resource"] = b.clone();
    }
    if let Some(ver) = &r.version {
        v["response"]["etag"] = json!(format!("W/\"{ver}\""));
    }
    if let Some(l) = &r.location {
        v["response"]["location"] = json!(l);
    }
    if let Some(lm) = &r.last_modified {
        v["response"]["lastModified"] = json!(lm);
    }
    v
}

fn error_entry(err: &FhirError, request_id: &str) -> Value {
    json!({"response": {"status": status_line(err.status), "outcome": err.outcome(Some(request_id))}})
}

fn status_line(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

async fn batch(
    store: &EmbeddedStore,
    raw: &[Value],
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, e) in raw.iter().enumerate() {
        let result = match parse_entry(i, e) {
            Err(err) => error_entry(&err, &ctx.request_id),
            Ok(entry) => match store.execute(&entry.req, ctx).await {
                Ok(r) => {
                    let mut v = response_entry(&r);
                    if r.body.is_some() && entry.req.interaction.is_write() {
                        if let (Some(t), Some(id)) = (
                            r.body.as_ref().and_then(|b| b["resourceType"].as_str()),
                            r.body.as_ref().and_then(|b| b["id"].as_str()),
                        ) {
                            v["fullUrl"] = json!(format!("{}/{t}/{id}", ctx.base));
                        }
                    }
                    v
                }
                Err(err) => error_entry(&err, &ctx.request_id),
            },
        };
        out.push(result);
    }
    Ok(FhirResponse::ok(json!({
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": out,
    })))
}

/// Replaces every `reference` equal to a resolved `fullUrl` (e.g. `urn:uuid:…`).
fn resolve_references(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "reference" {
                    if let Some(target) = child.as_str().and_then(|s| ids.get(s)) {
                        *child = Value::String(target.clone());
                        continue;
                    }
                }
                resolve_references(child, ids);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| resolve_references(i, ids)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_uuid_references_resolve_at_any_depth() {
        let mut ids = HashMap::new();
        ids.insert("urn:uuid:1".to_owned(), "Patient/abc".to_owned());
        let mut v = json!({"subject": {"reference": "urn:uuid:1"}, "x": [{"actor": {"reference": "urn:uuid:1"}}], "y": {"reference": "Patient/9"}});
        resolve_references(&mut v, &ids);
        assert_eq!(v["subject"]["reference"], "Patient/abc");
        assert_eq!(v["x"][0]["actor"]["reference"], "Patient/abc");
        assert_eq!(v["y"]["reference"], "Patient/9");
    }

    #[test]
    fn entries_are_ordered_as_the_spec_says() {
        assert!(order(&Method::DELETE) < order(&Method::POST));
        assert!(order(&Method::POST) < order(&Method::PUT));
        assert!(order(&Method::PUT) < order(&Method::GET));
    }
}
