//! Writes under consent: create, update and delete, alone or as batch and
//! transaction entries.
//!
//! Refused (403) before anything is stored: a body tagged `REDACTED` (a
//! redacted copy must never replace the full record); an update whose new
//! version would lower the stored version's labels (confidentiality or a
//! sensitivity category; see `consent::classify::lowers_label`); a write the
//! patient's consent does not permit (`collect`/`correct` actions); a change
//! to a record the caller may not see (and, for a restricted caller, a
//! delete of a record that does not exist: both answer the same 403). After
//! a successful Consent write the decision index is updated at once, so the
//! next request anywhere sees it.
//!
//! Known residual: update-as-create stays available, so a caller allowed to
//! create a type can learn whether an id is taken by a hidden record (403)
//! or free (201), at the price of creating a record under that id; every
//! such attempt is in the audit ledger.

use serde_json::Value;
use smart_launch::context::AccessContext;

use super::{
    fetch,
    judge::{normalize, record, Session},
};
use crate::{
    consent::classify::{is_redacted, lowers_label},
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::{authorize::forbidden, authorize::Authorized, disclosure::Disclosure},
    upstream::RequestContext,
    AppState,
};

/// Reads the current version of `Type/id` from the upstream (as fhirgate);
/// missing or deleted is `None`.
pub(crate) async fn current(
    app: &AppState,
    ctx: &RequestContext,
    rtype: &str,
    id: &str,
) -> FhirResult<Option<Value>> {
    let mut read = FhirRequest::new(Interaction::Read);
    read.resource_type = Some(rtype.to_owned());
    read.id = Some(id.to_owned());
    match app.upstream.execute(&read, ctx).await {
        Ok(r) => Ok(r.body),
        Err(e) if matches!(e.status.as_u16(), 404 | 410) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks one write (body for create/update, `None` for delete) before it
/// runs. For a restricted caller, deleting a record that does not exist is
/// refused exactly like deleting one it may not see, so the answer never
/// tells which it was.
pub async fn precheck(
    app: &AppState,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    rtype: &str,
    id: Option<&str>,
    body: Option<&Value>,
    restricted: bool,
) -> FhirResult<()> {
    if let Some(b) = body {
        if is_redacted(b) {
            return Err(forbidden(
                "a resource tagged REDACTED cannot be stored: it would replace the full record",
            ));
        }
        sess.prepare(&[b]).await?;
        if sess.judge_write(b).released.is_none() {
            return Err(forbidden(
                "the patient's consent does not permit this write",
            ));
        }
    }
    let Some(id) = id else {
        return Ok(());
    };
    let cannot = || forbidden(format!("{rtype}/{id} cannot be changed by this caller"));
    let Some(old) = current(app, ctx, rtype, id).await? else {
        // deleting nothing is refused like deleting a hidden record;
        // update-as-create stays open (see the module docs)
        return if restricted && body.is_none() {
            Err(cannot())
        } else {
            Ok(())
        };
    };
    sess.prepare(&[&old]).await?;
    if sess.judge(&old).released.is_none() {
        return Err(cannot());
    }
    if let Some(b) = body {
        let before = app.consent.classify(&old);
        let after = crate::consent::classify::classify(b, &app.consent.policy.value_sets);
        if lowers_label(&before, &after) {
            return Err(forbidden(
                "the update would lower the record's confidentiality or sensitivity labels",
            ));
        }
    }
    Ok(())
}

/// One create, update or delete.
pub async fn single(
    app: &AppState,
    caller: &AccessContext,
    auth: &Authorized,
    req: &FhirRequest,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let rtype = req.resource_type.clone().unwrap_or_default();
    let body = match req.interaction {
        Interaction::Delete => None,
        _ => req.body.as_ref(),
    };
    let id = match req.interaction {
        Interaction::Create => None,
        _ => req.id.as_deref(),
    };
    let restricted = !super::precheck::is_self_only(caller);
    precheck(app, ctx, sess, &rtype, id, body, restricted).await?;
    let resp = fetch(app, caller, auth, req, ctx).await?;
    let reference = resp
        .location
        .as_deref()
        .and_then(|l| normalize(l, &ctx.base))
        .or_else(|| req.id.as_ref().map(|id| format!("{rtype}/{id}")));
    if let Some(b) = body {
        let j = sess.judge_write(b);
        record(disclosure, &j, reference.as_deref());
    }
    if rtype == "Consent" {
        reindex(app, ctx, req.interaction, reference.as_deref()).await?;
    }
    Ok(resp)
}

/// Brings the decision index up to date after a Consent write.
pub async fn reindex(
    app: &AppState,
    ctx: &RequestContext,
    interaction: Interaction,
    reference: Option<&str>,
) -> FhirResult<()> {
    let Some((_, id)) = reference.and_then(|r| r.split_once('/')) else {
        return Ok(());
    };
    if interaction == Interaction::Delete {
        app.consent.index.forget(id).await?;
        return Ok(());
    }
    match current(app, ctx, "Consent", id).await? {
        Some(c) => app.consent.index.record(&c).await?,
        None => app.consent.index.forget(id).await?,
    }
    Ok(())
}

/// `(method, type, id)` of a batch entry's request.
fn entry_target(e: &Value) -> Option<(String, String, Option<String>)> {
    let method = e["request"]["method"].as_str()?.to_ascii_uppercase();
    let url = e["request"]["url"].as_str()?;
    let path = url.split('?').next().unwrap_or(url);
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let t = segs.next()?.to_owned();
    let id = segs.next().map(str::to_owned);
    Some((method, t, id))
}

/// Checks every entry of a batch or transaction before it is sent: writes
/// as [`precheck`], search URLs as the request pre-check, no conditionals.
pub async fn precheck_bundle(
    app: &AppState,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    bundle: &Value,
    restricted: bool,
) -> FhirResult<()> {
    let Some(entries) = bundle["entry"].as_array() else {
        return Ok(());
    };
    for e in entries {
        let Some((method, t, id)) = entry_target(e) else {
            continue;
        };
        let url = e["request"]["url"].as_str().unwrap_or_default();
        let query: Vec<(String, String)> = url
            .split_once('?')
            .map(|(_, q)| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if restricted {
            super::precheck::check_params(&query)?;
            let conditional = e["request"]["ifNoneExist"].is_string()
                || (method != "GET" && method != "HEAD" && !query.is_empty());
            if conditional {
                return Err(forbidden(
                    "conditional entries are not available under consent enforcement",
                ));
            }
        }
        match method.as_str() {
            "POST" => {
                let body = Some(&e["resource"]);
                precheck(app, ctx, sess, &t, None, body, restricted).await?
            }
            "PUT" => {
                let body = Some(&e["resource"]);
                precheck(app, ctx, sess, &t, id.as_deref(), body, restricted).await?
            }
            "DELETE" => precheck(app, ctx, sess, &t, id.as_deref(), None, restricted).await?,
            _ => {}
        }
    }
    Ok(())
}

/// After a batch or transaction: every GET entry is answered again by the
/// facade through the whole single-request path (scopes, then this stage:
/// a hidden read answers like a missing one, a vread is judged with today's
/// labels, a search is paged by the facade with a sealed `next` link, an
/// instance history of a hidden record is 404), replacing whatever the
/// upstream answered for it; written entries record their patients, and
/// Consent writes are indexed.
#[allow(clippy::too_many_arguments)]
pub async fn filter_bundle(
    app: &AppState,
    caller: &AccessContext,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    sent: &Value,
    resp: &mut FhirResponse,
    disclosure: &mut Disclosure,
) -> FhirResult<()> {
    let requests: Vec<Option<(String, String, Option<String>)>> = sent["entry"]
        .as_array()
        .map(|es| es.iter().map(entry_target).collect())
        .unwrap_or_default();
    let Some(entries) = resp
        .body
        .as_mut()
        .and_then(|b| b.get_mut("entry"))
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let written: Vec<&Value> = sent["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| &x["resource"])
        .filter(|r| r.is_object())
        .collect();
    sess.prepare(&written).await?;
    for (i, e) in entries.iter_mut().enumerate() {
        let target = requests.get(i).cloned().flatten();
        let Some((method, t, id)) = target else {
            continue;
        };
        let ok = e["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with('2'));
        if method == "GET" || method == "HEAD" {
            let url = sent["entry"][i]["request"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let stated = (sess.purpose.clone(), sess.reason.clone());
            *e = answer_get(app, caller, &url, stated, ctx, disclosure).await;
            continue;
        }
        if !ok {
            continue;
        }
        let reference = e["response"]["location"]
            .as_str()
            .and_then(|l| normalize(l, &ctx.base))
            .or_else(|| id.as_ref().map(|id| format!("{t}/{id}")));
        if t == "Consent" {
            let interaction = if method == "DELETE" {
                Interaction::Delete
            } else {
                Interaction::Update
            };
            reindex(app, ctx, interaction, reference.as_deref()).await?;
        }
        if let Some(body) = sent["entry"][i]["resource"].as_object() {
            let j = sess.judge_write(&Value::Object(body.clone()));
            record(disclosure, &j, reference.as_deref());
        }
    }
    Ok(())
}

/// One batch GET entry answered through `authorize::route_as`, under the
/// purpose (and break-the-glass reason) stated for the whole Bundle. Missing
/// and hidden answer the same entry, naming nothing.
async fn answer_get(
    app: &AppState,
    caller: &AccessContext,
    url: &str,
    (purpose, reason): (Option<String>, Option<String>),
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> Value {
    let result = async {
        let mut req = super::pages::continuation(url)?;
        req.purpose_of_use = purpose;
        req.break_glass_reason = reason;
        crate::pipeline::limits::cap_count(&mut req, ctx.max_page_size)?;
        Box::pin(crate::pipeline::authorize::route_as(
            app, caller, req, ctx, disclosure,
        ))
        .await
    }
    .await;
    match result {
        Ok(r) => {
            let mut response = serde_json::json!({"status": status_line(r.status)});
            if let Some(v) = &r.version {
                response["etag"] = Value::String(format!("W/\"{v}\""));
            }
            if let Some(m) = &r.last_modified {
                response["lastModified"] = Value::String(m.clone());
            }
            let mut entry = serde_json::json!({"response": response});
            if let Some(b) = r.body {
                entry["resource"] = b;
            }
            entry
        }
        Err(err) if matches!(err.status.as_u16(), 404 | 410) => missing_entry(),
        Err(err) => serde_json::json!({
            "response": {"status": status_line(err.status), "outcome": err.outcome(None)}
        }),
    }
}

fn status_line(s: axum::http::StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

/// For callers exempt from consent: Consent writes (alone or in a batch or
/// transaction) still update the decision index at once.
pub async fn reindex_exempt(
    app: &AppState,
    ctx: &RequestContext,
    req: &FhirRequest,
    resp: &FhirResponse,
) -> FhirResult<()> {
    use Interaction::*;
    match req.interaction {
        Create | Update | Delete | ConditionalUpdate | ConditionalDelete
            if req.resource_type.as_deref() == Some("Consent") =>
        {
            let reference = resp
                .location
                .as_deref()
                .and_then(|l| normalize(l, &ctx.base))
                .or_else(|| req.id.as_ref().map(|id| format!("Consent/{id}")));
            match reference {
                Some(r) => reindex(app, ctx, req.interaction, Some(&r)).await,
                // a conditional write without a known id: catch up by polling now
                None => app
                    .consent
                    .index
                    .sync(app.upstream.as_ref(), ctx)
                    .await
                    .map(|_| ())
                    .map_err(Into::into),
            }
        }
        BatchOrTransaction => {
            let sent = req.body.as_ref();
            let entries = resp.body.as_ref().and_then(|b| b["entry"].as_array());
            let (Some(sent), Some(entries)) = (sent, entries) else {
                return Ok(());
            };
            for (i, e) in entries.iter().enumerate() {
                let Some((method, t, id)) = entry_target(&sent["entry"][i]) else {
                    continue;
                };
                let ok = e["response"]["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with('2'));
                if t != "Consent" || method == "GET" || method == "HEAD" || !ok {
                    continue;
                }
                let interaction = if method == "DELETE" { Delete } else { Update };
                let reference = e["response"]["location"]
                    .as_str()
                    .and_then(|l| normalize(l, &ctx.base))
                    .or_else(|| id.map(|id| format!("Consent/{id}")));
                reindex(app, ctx, interaction, reference.as_deref()).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The answer of a batch GET entry for something missing or hidden.
fn missing_entry() -> Value {
    serde_json::json!({
        "response": {
            "status": "404 Not Found",
            "outcome": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-found", "diagnostics": "no such resource"}]
            }
        }
    })
}
