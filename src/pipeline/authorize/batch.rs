//! Batch and transaction Bundles (R4 http.html §3.1.0.11): each entry is
//! classified like an HTTP request (`FhirRequest::route`, as the embedded
//! store's `bundle` module does) and authorized as its own request. In a
//! transaction any refused entry refuses the whole Bundle (the error names the
//! entry); in a batch a refused entry is taken out of the Bundle sent upstream
//! and answered by the facade in its place, as is a search that can match
//! nothing visible. Narrowed entries get their `request.url` rewritten; the
//! answer's entries are filtered one by one with their own `Authorized`.
//! Bodies are judged as written: a confined caller's entry that names its
//! patient through a `urn:uuid:` placeholder is refused (403), since a
//! placeholder never proves compartment membership.

use axum::http::StatusCode;
use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{authorize_one, filter_response, Authorized, Check};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{request::bundle_entry_request, FhirRequest, FhirResponse, Interaction},
};

fn at(i: usize, mut e: FhirError) -> FhirError {
    e.message = format!("Bundle.entry[{i}]: {}", e.message);
    e
}

/// The entry's request, classified.
fn parse_entry(e: &Value) -> FhirResult<FhirRequest> {
    bundle_entry_request(e).map(|(_, req)| req)
}

/// The `request.url` of a (possibly narrowed) search or read entry.
fn entry_url(req: &FhirRequest, original: &str) -> String {
    let path = match (&req.interaction, &req.compartment, &req.resource_type) {
        (Interaction::SearchCompartment, Some((ct, cid)), Some(t)) => format!("{ct}/{cid}/{t}"),
        _ => original.split('?').next().unwrap_or(original).to_owned(),
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(req.params.iter())
        .finish();
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

fn error_entry(e: &FhirError) -> Value {
    json!({"response": {
        "status": format!("{} {}", e.status.as_u16(), e.status.canonical_reason().unwrap_or("")),
        "outcome": e.outcome(None),
    }})
}

/// Authorizes every entry of a batch or transaction.
pub(crate) fn authorize_bundle(
    ctx: &AccessContext,
    req: &mut FhirRequest,
) -> FhirResult<Authorized> {
    let Some(body) = req.body.as_mut().filter(|b| b["resourceType"] == "Bundle") else {
        return Err(FhirError::bad_request(
            "POST to the base needs a Bundle of type batch or transaction",
        ));
    };
    let transaction = body["type"] == "transaction";
    let raw: Vec<Value> = body["entry"].as_array().cloned().unwrap_or_default();
    let mut sent_entries = Vec::new();
    let mut sent = Vec::new();
    let mut answered = Vec::new();
    let mut verify = Vec::new();
    for (i, mut e) in raw.into_iter().enumerate() {
        let verdict = parse_entry(&e).and_then(|mut r| {
            let before = (r.interaction, r.compartment.clone(), r.params.clone());
            let a = authorize_one(ctx, &mut r)?;
            let changed = before != (r.interaction, r.compartment.clone(), r.params.clone());
            Ok((r, a, changed))
        });
        match verdict {
            Ok((_, a, _)) if a.answer_empty => {
                let empty = json!({"resourceType": "Bundle", "type": "searchset", "total": 0});
                answered.push((
                    i,
                    json!({"resource": empty, "response": {"status": "200 OK"}}),
                ));
            }
            Ok((r, a, changed)) => {
                if let Some(request) = e.get_mut("request").and_then(Value::as_object_mut) {
                    if changed {
                        let original = request["url"].as_str().unwrap_or_default().to_owned();
                        request.insert("url".into(), json!(entry_url(&r, &original)));
                    }
                    if r.if_none_match.is_none() {
                        request.remove("ifNoneMatch");
                    }
                    if r.if_modified_since.is_none() {
                        request.remove("ifModifiedSince");
                    }
                }
                verify.extend(a.verify_existing.iter().cloned());
                sent.push(a);
                sent_entries.push(e);
            }
            Err(err) if transaction => return Err(at(i, err)),
            Err(err) => answered.push((i, error_entry(&at(i, err)))),
        }
    }
    if let Some(obj) = body.as_object_mut() {
        obj.insert("entry".into(), Value::Array(sent_entries));
    }
    let mut a = Authorized::with(Check::Batch { sent, answered });
    a.verify_existing = verify;
    Ok(a)
}

/// Filters each answered entry with its own `Authorized`, then puts the
/// facade's own answers back at their original positions.
pub(crate) fn filter_batch(
    ctx: &AccessContext,
    sent: &[Authorized],
    answered: &[(usize, Value)],
    resp: &mut FhirResponse,
) -> FhirResult<()> {
    let Some(entries) = resp
        .body
        .as_mut()
        .and_then(|b| b.get_mut("entry"))
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    if entries.len() != sent.len() {
        return Err(FhirError::bad_gateway(
            "batch response does not have one entry per request entry",
        ));
    }
    for (e, a) in entries.iter_mut().zip(sent) {
        let Some(resource) = e.get("resource").cloned() else {
            continue;
        };
        let mut one = FhirResponse::new(StatusCode::OK, Some(resource));
        match filter_response(ctx, a, &mut one) {
            Ok(()) => {
                if let (Some(obj), Some(body)) = (e.as_object_mut(), one.body) {
                    obj.insert("resource".into(), body);
                }
            }
            Err(err) => *e = error_entry(&err),
        }
    }
    for (i, entry) in answered {
        let at = (*i).min(entries.len());
        entries.insert(at, entry.clone());
    }
    Ok(())
}
