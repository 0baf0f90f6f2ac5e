//! The single-resource interactions of the embedded store as the `Upstream`
//! dispatch calls them: each opens its own (write) transaction around the
//! rules in `crud` and turns the result into a `FhirResponse`.

use serde_json::{json, Value};
use sqlx::Row;

use super::{
    crud::{conditional_update_in, create_in, current, delete_in, update_in, CreateOutcome},
    search, EmbeddedStore,
};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse},
    upstream::RequestContext,
};

fn deleted_outcome(text: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}]
    })
}

/// `GET [type]/[id]`.
pub async fn read(
    store: &EmbeddedStore,
    req: &FhirRequest,
    _ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let (t, id) = type_and_id(req)?;
    let mut conn = store.pool.acquire().await?;
    match current(&mut conn, t, id).await? {
        None => Err(FhirError::not_found(format!("{t}/{id} is not known"))),
        Some(c) if c.deleted => Err(FhirError::gone(format!("{t}/{id} was deleted"))),
        Some(c) => Ok(FhirResponse::stored(c.body.as_deref())?),
    }
}

/// `GET [type]/[id]/_history/[vid]`.
pub async fn vread(
    store: &EmbeddedStore,
    req: &FhirRequest,
    _ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let (t, id) = type_and_id(req)?;
    let vid: i64 = req
        .version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| FhirError::not_found("no such version"))?;
    let row = sqlx::query(
        "SELECT deleted, body FROM resource_version WHERE type = ? AND id = ? AND version = ?",
    )
    .bind(t)
    .bind(id)
    .bind(vid)
    .fetch_optional(&store.pool)
    .await?;
    match row {
        None => Err(FhirError::not_found(format!(
            "{t}/{id} has no version {vid}"
        ))),
        Some(r) if r.get::<i64, _>(0) != 0 => Err(FhirError::gone(format!(
            "version {vid} of {t}/{id} is a deletion"
        ))),
        Some(r) => Ok(FhirResponse::stored(
            r.get::<Option<String>, _>(1).as_deref(),
        )?),
    }
}

/// `POST [type]`.
pub async fn create(
    store: &EmbeddedStore,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let t = req.resource_type.as_deref().unwrap_or_default();
    let mut tx = store.write().await?;
    let outcome = create_in(
        &mut tx,
        t,
        req.body.as_ref(),
        req.if_none_exist.as_deref(),
        &ctx.base,
    )
    .await?;
    tx.commit().await?;
    Ok(match outcome {
        CreateOutcome::Created(w) => w.response(&ctx.base),
        CreateOutcome::Exists(body) => FhirResponse::resource(body),
    })
}

/// `PUT [type]/[id]`.
pub async fn update(
    store: &EmbeddedStore,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let (t, id) = type_and_id(req)?;
    let mut tx = store.write().await?;
    let w = update_in(&mut tx, t, id, req.body.as_ref(), req.if_match.as_deref()).await?;
    tx.commit().await?;
    Ok(w.response(&ctx.base))
}

/// `PUT [type]?[criteria]`.
pub async fn conditional_update(
    store: &EmbeddedStore,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let t = req.resource_type.as_deref().unwrap_or_default();
    let mut tx = store.write().await?;
    let w = conditional_update_in(
        &mut tx,
        t,
        &req.params,
        req.body.as_ref(),
        req.if_match.as_deref(),
        &ctx.base,
    )
    .await?;
    tx.commit().await?;
    Ok(w.response(&ctx.base))
}

/// `DELETE [type]/[id]`.
pub async fn delete(
    store: &EmbeddedStore,
    req: &FhirRequest,
    _ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let (t, id) = type_and_id(req)?;
    let mut tx = store.write().await?;
    let w = delete_in(&mut tx, t, id).await?;
    tx.commit().await?;
    let mut r = FhirResponse::ok(deleted_outcome(&format!("{t}/{id} deleted")));
    if let Some(w) = w {
        r.version = Some(w.version.to_string());
        r.last_modified = Some(w.last_updated);
    }
    Ok(r)
}

/// `DELETE [type]?[criteria]`: one match is deleted; none is a no-op; several is 412.
pub async fn conditional_delete(
    store: &EmbeddedStore,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let t = req.resource_type.as_deref().unwrap_or_default();
    if req.params.is_empty() {
        return Err(FhirError::bad_request(
            "a conditional delete needs search parameters",
        ));
    }
    let mut tx = store.write().await?;
    let ids = search::conditional_matches(&mut tx, t, &req.params, &ctx.base).await?;
    let text = match ids.as_slice() {
        [] => "no resource matched; nothing deleted".to_owned(),
        [one] => {
            delete_in(&mut tx, t, one).await?;
            format!("{t}/{one} deleted")
        }
        _ => {
            return Err(FhirError::precondition_failed(
                "the conditional delete's criteria matched more than one resource",
            ))
        }
    };
    tx.commit().await?;
    Ok(FhirResponse::ok(deleted_outcome(&text)))
}

fn type_and_id(req: &FhirRequest) -> FhirResult<(&str, &str)> {
    match (req.resource_type.as_deref(), req.id.as_deref()) {
        (Some(t), Some(id)) => Ok((t, id)),
        _ => Err(FhirError::bad_request("resource type and id are required")),
    }
}
