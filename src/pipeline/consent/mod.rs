//! Pipeline stage "consent" (issue 4): nothing a patient's consent forbids
//! leaves, on any path. It runs after the scope check (`authorize`) for
//! every caller except exempt clients (`[consent] exempt_clients`), and
//! takes over the routing step so it can judge every resource of every
//! answer:
//!
//! 1. pre-decision on the request (`precheck`): oracle-prone search
//!    features and conditional writes are refused for restricted callers;
//!    writes are checked before they run (`write`);
//! 2. the upstream is asked (through `authorize::filter_response`, so scope
//!    rules still apply to each upstream answer);
//! 3. post-filter: every resource is judged (`judge`) per entry, never by
//!    position: reads, vreads (each version with today's consent), histories,
//!    searches, `$everything` and histories paged by the facade (`pages`),
//!    batch and transaction entries (`write::filter_bundle`); released
//!    resources lose the sensitivity tags the caller is not cleared for and
//!    carry the obligations of the rules covering them.
//!
//! A hidden resource answers exactly like a missing one: the same 404
//! OperationOutcome (a hidden deleted record too, instead of 410), no ETag;
//! upstream error text never reaches the caller on these paths. A released
//! resource whose bytes the stage changed gets an ETag over the released
//! bytes (`W/"<version>.<hash>"`). Every decision is recorded in the
//! request's `Disclosure` (what the audit stage writes to the ledger);
//! break-the-glass also posts a `Communication` notification to the patient.
//!
//! Purpose of use: the `X-Purpose-Of-Use` request header, else the token's
//! `purpose_of_use` claim, else the policy default (TREAT for clinicians).
//! Break-the-glass needs purpose `BTG` or `ETREAT`, a role allowed to break
//! the glass and a reason in `X-Break-Glass-Reason`, and, with `[mfa]
//! stepup = "required"`, a token whose user stepped up (a second factor)
//! within `stepup_max_age_seconds` (else 401, RFC 9470).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use smart_launch::context::AccessContext;

use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::{
        authorize::{filter_response, Authorized},
        disclosure::Disclosure,
    },
    upstream::RequestContext,
    AppState,
};

pub mod explain;
pub mod judge;
pub mod pages;
pub mod precheck;
pub mod seal;
pub mod write;

#[cfg(test)]
mod tests;

use judge::{record, Session};
use pages::Kind;

/// Whether consent applies to this caller.
pub fn applies(app: &AppState, caller: &AccessContext) -> bool {
    !app.consent.is_exempt(&caller.client_id)
}

/// The upstream, then the scope post-filter.
pub(crate) async fn fetch(
    app: &AppState,
    caller: &AccessContext,
    auth: &Authorized,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let mut resp = app.upstream.execute(req, ctx).await?;
    crate::observability::otel::stage("filter")
        .in_scope(|| filter_response(caller, auth, &mut resp))?;
    Ok(resp)
}

/// The 404 every hidden or missing read answers, byte for byte.
pub fn missing(req: &FhirRequest) -> FhirError {
    let t = req.resource_type.as_deref().unwrap_or_default();
    let id = req.id.as_deref().unwrap_or_default();
    match &req.version {
        Some(v) if req.interaction == Interaction::Vread => {
            FhirError::not_found(format!("{t}/{id}/_history/{v} is not known"))
        }
        _ => FhirError::not_found(format!("{t}/{id} is not known")),
    }
}

/// Stages route → post-filter under consent for one authorized request.
pub async fn route(
    app: &AppState,
    caller: &AccessContext,
    auth: &Authorized,
    mut req: FhirRequest,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    precheck::check(caller, &mut req)?;
    let mut sess = Session::new(app, ctx, caller, &req);
    asks_break_glass(app, caller, &sess)?;
    if let Some(c) = disclosure.caller.as_mut() {
        c.purpose = sess.purpose.clone();
    }
    let restricted = !precheck::is_self_only(caller);
    use Interaction::*;
    let resp = match req.interaction {
        Read | Vread => read(app, caller, auth, &req, ctx, &mut sess, disclosure).await,
        HistoryInstance => {
            let kind = Kind::History { instance: true };
            let asked = req.clone();
            pages::run(app, caller, auth, req, ctx, &mut sess, disclosure, kind)
                .await
                .map_err(|e| match e.status.as_u16() {
                    404 | 410 => missing(&asked),
                    _ => e,
                })
        }
        HistoryType | HistorySystem => {
            let kind = Kind::History { instance: false };
            pages::run(app, caller, auth, req, ctx, &mut sess, disclosure, kind).await
        }
        SearchType | SearchCompartment | SearchSystem => {
            let kind = Kind::Search;
            pages::run(app, caller, auth, req, ctx, &mut sess, disclosure, kind).await
        }
        Operation if req.operation.as_deref() == Some("everything") => {
            let kind = Kind::Search;
            pages::run(app, caller, auth, req, ctx, &mut sess, disclosure, kind).await
        }
        Create | Update | Delete | ConditionalUpdate | ConditionalDelete => {
            write::single(app, caller, auth, &req, ctx, &mut sess, disclosure).await
        }
        BatchOrTransaction => {
            let sent = req.body.clone().unwrap_or(Value::Null);
            write::precheck_bundle(app, ctx, &mut sess, &sent, restricted).await?;
            let mut resp = fetch(app, caller, auth, &req, ctx).await?;
            write::filter_bundle(app, caller, ctx, &mut sess, &sent, &mut resp, disclosure).await?;
            Ok(resp)
        }
        Operation | Capabilities => {
            let mut resp = fetch(app, caller, auth, &req, ctx).await?;
            filter_any(&mut sess, &mut resp, ctx, disclosure).await?;
            Ok(resp)
        }
    }?;
    break_glass(app, ctx, &sess, disclosure).await?;
    Ok(resp)
}

/// A user asking to break the glass (purpose ETREAT or BTG with a reason)
/// needs a fresh second factor when `[mfa] stepup = "required"` (issue 11):
/// otherwise 401 `insufficient_user_authentication` with `max_age`, before
/// anything is fetched. Asked, not only used: the answer must not depend
/// on whether the glass would have been broken.
fn asks_break_glass(app: &AppState, caller: &AccessContext, sess: &Session<'_>) -> FhirResult<()> {
    let purpose = sess.purpose.as_deref().unwrap_or_default();
    let asks = crate::consent::evaluate::BREAK_GLASS_PURPOSES.contains(&purpose)
        && sess.reason.as_deref().is_some_and(|r| !r.trim().is_empty())
        && (caller.role.is_some() || caller.fhir_user.is_some());
    if asks {
        crate::assurance::for_sensitive(&app.config, &caller.assurance, crate::oauth::now())
            .map_err(crate::assurance::Shortfall::into_fhir)?;
    }
    Ok(())
}

/// Read and vread: the resource judged; hidden = missing.
async fn read(
    app: &AppState,
    caller: &AccessContext,
    auth: &Authorized,
    req: &FhirRequest,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let mut resp = match fetch(app, caller, auth, req, ctx).await {
        Ok(r) => r,
        Err(e) if e.status.as_u16() == 410 => {
            return Err(gone_or_missing(app, caller, auth, req, ctx, sess, disclosure).await)
        }
        Err(e) if e.status.as_u16() == 404 => return Err(missing(req)),
        Err(e) => return Err(e),
    };
    let Some(body) = resp.body.take() else {
        return Err(missing(req));
    };
    sess.prepare(&[&body]).await?;
    let mut j = sess.judge(&body);
    if req.interaction == Interaction::Vread && j.released.is_some() {
        // an old version is judged with today's labels too: hidden if the
        // record as it stands now would be
        let mut now = req.clone();
        now.interaction = Interaction::Read;
        now.version = None;
        if let Ok(cur) = fetch(app, caller, auth, &now, ctx).await {
            if let Some(cur) = cur.body {
                sess.prepare(&[&cur]).await?;
                if sess.judge(&cur).released.is_none() {
                    j.released = None;
                }
            }
        }
    }
    let reference = match (body["resourceType"].as_str(), body["id"].as_str()) {
        (Some(t), Some(id)) => Some(format!("{t}/{id}")),
        _ => None,
    };
    record(disclosure, &j, reference.as_deref());
    let Some(released) = j.released else {
        return Err(missing(req));
    };
    if j.changed {
        resp.version = Some(released_etag(resp.version.as_deref(), &released));
    }
    resp.body = Some(released);
    Ok(resp)
}

/// A deleted record: 410 only when its last version would be released.
async fn gone_or_missing(
    app: &AppState,
    caller: &AccessContext,
    auth: &Authorized,
    req: &FhirRequest,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    disclosure: &mut Disclosure,
) -> FhirError {
    let mut h = FhirRequest::new(Interaction::HistoryInstance);
    h.resource_type = req.resource_type.clone();
    h.id = req.id.clone();
    let last = match fetch(app, caller, auth, &h, ctx).await {
        Ok(r) => r.body.as_ref().and_then(pages::latest_of),
        Err(_) => None,
    };
    let Some(last) = last else {
        return missing(req);
    };
    if sess.prepare(&[&last]).await.is_err() {
        return missing(req);
    }
    let j = sess.judge(&last);
    record(disclosure, &j, None);
    match j.released {
        Some(_) => FhirError::gone(format!(
            "{}/{} was deleted",
            req.resource_type.as_deref().unwrap_or_default(),
            req.id.as_deref().unwrap_or_default()
        )),
        None => missing(req),
    }
}

/// `W/"<version>.<first 16 hex of SHA-256 of the released JSON>"`.
fn released_etag(version: Option<&str>, released: &Value) -> String {
    let bytes = serde_json::to_vec(released).unwrap_or_default();
    let hash = hex::encode(Sha256::digest(&bytes));
    format!("{}.{}", version.unwrap_or("0"), &hash[..16])
}

/// Any other answer: a resource is judged, a Bundle's entries are.
async fn filter_any(
    sess: &mut Session<'_>,
    resp: &mut FhirResponse,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<()> {
    let Some(body) = resp.body.as_mut() else {
        return Ok(());
    };
    if body["resourceType"] == "OperationOutcome" || body["resourceType"] == "Parameters" {
        return Ok(());
    }
    if body["resourceType"] == "Bundle" {
        let resources: Vec<Value> = body["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"].clone())
            .filter(Value::is_object)
            .collect();
        let refs: Vec<&Value> = resources.iter().collect();
        sess.prepare(&refs).await?;
        if let Some(obj) = body.as_object_mut() {
            obj.remove("total");
            if let Some(Value::Array(links)) = obj.get_mut("link") {
                links.retain(|l| l["relation"] == "self");
            }
            if let Some(Value::Array(entries)) = obj.get_mut("entry") {
                entries.retain_mut(|e| {
                    if !e["resource"].is_object() {
                        return false;
                    }
                    let j = sess.judge(&e["resource"]);
                    let r = judge::normalize(
                        &format!(
                            "{}/{}",
                            e["resource"]["resourceType"].as_str().unwrap_or(""),
                            e["resource"]["id"].as_str().unwrap_or("")
                        ),
                        &ctx.base,
                    );
                    record(disclosure, &j, r.as_deref());
                    match j.released {
                        Some(b) => {
                            e["resource"] = b;
                            true
                        }
                        None => false,
                    }
                });
            }
        }
        return Ok(());
    }
    let copy = body.clone();
    sess.prepare(&[&copy]).await?;
    let j = sess.judge(&copy);
    record(disclosure, &j, None);
    match j.released {
        Some(b) => {
            *body = b;
            Ok(())
        }
        None => Err(FhirError::not_found("no such resource")),
    }
}

/// Break-the-glass used: flag the disclosure and notify each patient with a
/// `Communication` (category notification) stored upstream. A notification
/// that cannot be stored fails the request (nothing is released unnoticed).
async fn break_glass(
    app: &AppState,
    ctx: &RequestContext,
    sess: &Session<'_>,
    disclosure: &mut Disclosure,
) -> FhirResult<()> {
    let patients: Vec<String> = disclosure
        .patients
        .iter()
        .filter(|(_, t)| t.decisions.iter().any(|d| d.effect == "break-the-glass"))
        .map(|(p, _)| p.clone())
        .collect();
    if patients.is_empty() {
        return Ok(());
    }
    let reason = sess.reason.clone().unwrap_or_default();
    disclosure.break_glass = Some(reason.clone());
    let who = sess
        .requester
        .fhir_user
        .clone()
        .unwrap_or_else(|| format!("client {}", sess.requester.client_id));
    let now = crate::fhir::now_instant();
    for p in patients {
        let mut c = FhirRequest::new(Interaction::Create);
        c.resource_type = Some("Communication".into());
        let mut comm = json!({
            "resourceType": "Communication",
            "status": "completed",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "notification"}]}],
            "subject": {"reference": p},
            "recipient": [{"reference": p}],
            "sent": now,
            "reasonCode": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG", "display": "break the glass"}]}],
            "payload": [{"contentString": format!(
                "Your record was opened under emergency access (break-the-glass) by {who} at {now}. Reason given: {reason}"
            )}],
        });
        if let Some(u) = &sess.requester.fhir_user {
            comm["sender"] = json!({"reference": u});
        }
        c.body = Some(comm);
        app.upstream.execute(&c, ctx).await.map_err(|e| {
            FhirError::unavailable(format!(
                "the break-the-glass notification could not be stored: {}",
                e.status
            ))
        })?;
    }
    Ok(())
}

/// For exempt clients (no consent decisions): what the answer released, per
/// patient, so the audit still names every patient whose data left.
pub fn record_exempt(resp: &FhirResponse, base: &str, disclosure: &mut Disclosure) {
    let Some(body) = &resp.body else {
        return;
    };
    let mut one = |r: &Value| {
        let (Some(t), Some(id)) = (r["resourceType"].as_str(), r["id"].as_str()) else {
            return;
        };
        if t == "OperationOutcome" || t == "Bundle" {
            return;
        }
        let reference = format!("{t}/{id}");
        let patients = judge::patients_of(r, base);
        for p in &patients {
            disclosure.patient(p).released.push(reference.clone());
        }
        if patients.is_empty() {
            disclosure.other.push(reference);
        }
    };
    if body["resourceType"] == "Bundle" {
        for e in body["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            if r["resourceType"] == "Bundle" {
                for inner in r["entry"].as_array().into_iter().flatten() {
                    one(&inner["resource"]);
                }
            } else {
                one(r);
            }
        }
    } else {
        one(body);
    }
}
