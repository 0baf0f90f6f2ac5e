//! The REST interactions on `Subscription` (R4 http.html), for the caller's
//! organization only: parse, check ownership, apply the state machine,
//! store, answer. Another organization's subscription is "not found".

use axum::http::StatusCode;
use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{
    instant,
    model::{self, Issue, Kind},
    notification,
    notify::handshake,
    state::{initial, transition, Event, Status},
    store::Stored,
};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse},
    pipeline::Disclosure,
    AppState,
};

fn now_ms() -> i64 {
    crate::audit::auditor::now_ms()
}

fn not_found(id: &str) -> FhirError {
    FhirError::not_found(format!("Subscription/{id} is not known"))
}

/// The caller's organization's subscription `id`, or 404.
async fn owned(app: &AppState, org: &str, id: &str) -> FhirResult<Stored> {
    match app.state.sub_get(id).await? {
        Some(s) if s.organization == org => Ok(s),
        _ => Err(not_found(id)),
    }
}

/// The resource as clients see it: what they sent, with id, meta, status
/// and (in error) the reason overlaid.
pub fn render(s: &Stored) -> Value {
    let mut r = s.resource.clone();
    super::secrets::redact(&mut r);
    if let Some(o) = r.as_object_mut() {
        o.insert("id".into(), json!(s.id));
        let mut meta = o.remove("meta").unwrap_or_else(|| json!({}));
        meta["versionId"] = json!(s.version.to_string());
        meta["lastUpdated"] = json!(instant(s.updated_ms));
        o.insert("meta".into(), meta);
        o.insert("status".into(), json!(s.status.as_str()));
        match (&s.error, s.status) {
            (Some(e), Status::Error) => {
                o.insert("error".into(), json!(e));
            }
            _ => {
                o.remove("error");
            }
        }
    }
    r
}

/// The client's body without what the server owns (its `status` stays as
/// the status asked for; [`render`] shows the current one).
fn accepted(body: &Value) -> Value {
    let mut r = body.clone();
    if let Some(o) = r.as_object_mut() {
        for k in ["id", "error", "_error"] {
            o.remove(k);
        }
        if let Some(meta) = o.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("versionId");
            meta.remove("lastUpdated");
        }
    }
    r
}

/// 400 (something missing or malformed) or 422 (not supported), one issue
/// per problem with its FHIRPath.
pub fn outcome(issues: &[Issue]) -> FhirResponse {
    let status = if issues.iter().any(|i| i.kind == Kind::Structure) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let issue: Vec<Value> = issues
        .iter()
        .map(|i| {
            json!({
                "severity": "error",
                "code": i.code,
                "diagnostics": format!("{}: {}", i.path, i.message),
                "expression": [i.path],
            })
        })
        .collect();
    FhirResponse::new(
        status,
        Some(json!({"resourceType": "OperationOutcome", "issue": issue})),
    )
}

fn answer(app: &AppState, s: &Stored, status: StatusCode) -> FhirResponse {
    let mut r = FhirResponse::resource(render(s));
    r.status = status;
    r.location = Some(format!(
        "{}/Subscription/{}/_history/{}",
        app.config.fhir_base(),
        s.id,
        s.version
    ));
    r
}

fn body(req: &FhirRequest) -> FhirResult<&Value> {
    req.body
        .as_ref()
        .ok_or_else(|| FhirError::bad_request("a Subscription resource is required as the body"))
}

/// `POST Subscription`: validate, store (`requested`, or `off`), handshake.
pub async fn create(
    app: &AppState,
    caller: &AccessContext,
    org: &str,
    req: &FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let body = body(req)?;
    let spec = match model::parse(body) {
        Ok(s) => s,
        Err(issues) => return Ok(outcome(&issues)),
    };
    let now = now_ms();
    let s = Stored {
        id: uuid::Uuid::new_v4().to_string(),
        organization: org.to_owned(),
        client_id: caller.client_id.clone(),
        status: initial(spec.status),
        error: None,
        resource: accepted(body),
        events: 0,
        version: 1,
        created_ms: now,
        updated_ms: now,
    };
    app.state.sub_insert(&s).await?;
    if s.status == Status::Requested {
        handshake(app, &s, &spec).await?;
    }
    let s = app.state.sub_get(&s.id).await?.unwrap_or(s);
    disclosure.other.push(format!("Subscription/{}", s.id));
    Ok(answer(app, &s, StatusCode::CREATED))
}

/// `GET Subscription/{id}`.
pub async fn read(
    app: &AppState,
    org: &str,
    id: &str,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let s = owned(app, org, id).await?;
    disclosure.other.push(format!("Subscription/{id}"));
    Ok(FhirResponse::resource(render(&s)))
}

/// `GET Subscription?…`: the organization's subscriptions; `_id`,
/// `status` and `_count` are understood, any other parameter is refused.
pub async fn search(
    app: &AppState,
    org: &str,
    req: &FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let mut count = None;
    let mut ids: Option<Vec<&str>> = None;
    let mut statuses: Option<Vec<&str>> = None;
    for (k, v) in &req.params {
        match k.as_str() {
            "_id" => ids = Some(v.split(',').collect()),
            "status" => statuses = Some(v.split(',').collect()),
            "_count" => count = v.parse::<usize>().ok(),
            other => {
                return Err(FhirError::processing(format!(
                    "search parameter '{other}' is not supported on Subscription (use _id, status, _count)"
                )))
            }
        }
    }
    let all: Vec<Stored> = app
        .state
        .sub_of_org(org)
        .await?
        .into_iter()
        .filter(|s| ids.as_ref().is_none_or(|i| i.contains(&s.id.as_str())))
        .filter(|s| {
            statuses
                .as_ref()
                .is_none_or(|st| st.contains(&s.status.as_str()))
        })
        .collect();
    let total = all.len();
    let base = app.config.fhir_base();
    let entry: Vec<Value> = all
        .iter()
        .take(count.unwrap_or(usize::MAX))
        .map(|s| {
            disclosure.other.push(format!("Subscription/{}", s.id));
            json!({
                "fullUrl": format!("{base}/Subscription/{}", s.id),
                "resource": render(s),
                "search": {"mode": "match"},
            })
        })
        .collect();
    Ok(FhirResponse::ok(json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "total": total,
        "link": [{"relation": "self", "url": format!("{base}/Subscription")}],
        "entry": entry,
    })))
}

/// `PUT Subscription/{id}`: the owner's change; `requested`/`active`
/// re-handshakes, `off` stops notifications.
pub async fn update(
    app: &AppState,
    org: &str,
    id: &str,
    req: &FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let body = body(req)?;
    if body["id"].as_str() != Some(id) {
        return Err(FhirError::bad_request(format!(
            "the Subscription's id must be '{id}', as in the URL"
        )));
    }
    let cur = owned(app, org, id).await?;
    if let Some(want) = &req.if_match {
        if *want != cur.version.to_string() {
            return Err(FhirError::precondition_failed(format!(
                "Subscription/{id} is at version {}, not {want}",
                cur.version
            )));
        }
    }
    // headers sent back redacted keep their stored values
    let restored = super::secrets::restore(body, &cur.resource);
    let body = &restored;
    let spec = match model::parse(body) {
        Ok(s) => s,
        Err(issues) => return Ok(outcome(&issues)),
    };
    let to = transition(cur.status, Event::Update(spec.status))
        .ok()
        .flatten()
        .ok_or_else(|| {
            FhirError::unprocessable(format!(
                "a subscription in status {} cannot be set to {}",
                cur.status.as_str(),
                spec.status.as_str()
            ))
        })?;
    let next = Stored {
        status: to,
        error: None,
        resource: accepted(body),
        version: cur.version + 1,
        ..cur.clone()
    };
    if !app.state.sub_replace(&next, cur.version, now_ms()).await? {
        return Err(FhirError::conflict(format!(
            "Subscription/{id} changed meanwhile; read it and try again"
        )));
    }
    if to == Status::Requested {
        handshake(app, &next, &spec).await?;
    }
    let s = app.state.sub_get(id).await?.ok_or_else(|| not_found(id))?;
    disclosure.other.push(format!("Subscription/{id}"));
    Ok(answer(app, &s, StatusCode::OK))
}

/// `DELETE Subscription/{id}`: no more notifications, ever.
pub async fn delete(
    app: &AppState,
    org: &str,
    id: &str,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let cur = owned(app, org, id).await?;
    if transition(cur.status, Event::Delete) != Ok(None) || !app.state.sub_delete(id, org).await? {
        return Err(not_found(id));
    }
    disclosure.other.push(format!("Subscription/{id}"));
    Ok(FhirResponse::ok(json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational",
                   "diagnostics": format!("Subscription/{id} deleted")}],
    })))
}

/// `GET|POST Subscription/{id}/$status`: its SubscriptionStatus.
pub async fn status(
    app: &AppState,
    org: &str,
    id: &str,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let s = owned(app, org, id).await?;
    let content = model::parse(&s.resource)
        .map(|sp| sp.content)
        .unwrap_or(model::Content::Empty);
    let base = app.config.fhir_base();
    let about = notification::About {
        base: &base,
        id: &s.id,
        status: s.status,
        events_since_start: s.events,
        content,
        error: s.error.as_deref(),
    };
    disclosure.other.push(format!("Subscription/{id}"));
    Ok(FhirResponse::ok(notification::status_bundle(
        &about,
        &instant(now_ms()),
    )))
}
