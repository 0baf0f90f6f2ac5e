//! Stage "authorize" after routing: every resource in the answer is judged
//! again (HAPI's consent interceptor lesson: reads are judged on the
//! response, so `_include`, `_revinclude`, history and `$everything` cannot
//! smuggle data out). Matches need the request's operation, included
//! resources `r` or `s` on their own type; what fails is dropped (a single
//! resource: 404). When matches are dropped, `Bundle.total` is kept only if
//! the page is the whole result (then it is recounted), else removed with the
//! `last` link, so no wrong number is ever sent. Also `Patient/$everything`,
//! whose answer is filtered the same way.

use std::collections::HashMap;

use serde_json::Value;
use smart_launch::{context::AccessContext, scope::Op};

use super::{
    allowed, batch, forbidden,
    rules::{access, confinement, Access},
    Authorized, Check,
};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Reference},
};

const SUBSETTED: &str = "SUBSETTED";

/// Drops or refuses everything in `resp` the caller may not see.
pub fn filter_response(
    ctx: &AccessContext,
    auth: &Authorized,
    resp: &mut FhirResponse,
) -> FhirResult<()> {
    let mut cache = Cache::new(ctx);
    match &auth.check {
        Check::Nothing => Ok(()),
        Check::Resource(op) => {
            let Some(body) = &resp.body else {
                return match cache.get(None, *op) {
                    Access::Open => Ok(()),
                    _ => Err(FhirError::not_found("no such resource")),
                };
            };
            let t = body["resourceType"].as_str().unwrap_or_default().to_owned();
            if t == "OperationOutcome" || cache.get(Some(&t), *op).admits(&t, body) {
                Ok(())
            } else {
                let id = body["id"].as_str().unwrap_or_default();
                Err(FhirError::not_found(format!("{t}/{id} is not known")))
            }
        }
        Check::Bundle {
            op,
            exact,
            instance,
        } => {
            let Some(bundle) = resp.body.as_mut() else {
                return Ok(());
            };
            let kept = filter_bundle(&mut cache, bundle, *op, *exact);
            if *instance && kept == 0 {
                return Err(FhirError::not_found("no such resource"));
            }
            Ok(())
        }
        Check::Batch { sent, answered } => batch::filter_batch(ctx, sent, answered, resp),
    }
}

/// Access per (type, op), computed once per answer.
struct Cache<'a> {
    ctx: &'a AccessContext,
    seen: HashMap<(String, &'static str), Access>,
}

impl<'a> Cache<'a> {
    fn new(ctx: &'a AccessContext) -> Self {
        Self {
            ctx,
            seen: HashMap::new(),
        }
    }

    /// `None` type: the caller must be open on... nothing is known, so deny.
    fn get(&mut self, rtype: Option<&str>, op: Op) -> &Access {
        let key = (rtype.unwrap_or("").to_owned(), op_key(op));
        let ctx = self.ctx;
        self.seen.entry(key).or_insert_with(|| match rtype {
            Some(t) => access(ctx, t, op),
            None => Access::Denied {
                reason: String::new(),
            },
        })
    }
}

fn op_key(op: Op) -> &'static str {
    match op {
        Op::Create => "c",
        Op::Read => "r",
        Op::Update => "u",
        Op::Delete => "d",
        Op::Search => "s",
    }
}

fn is_subsetted(r: &Value) -> bool {
    r["meta"]["tag"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t["code"] == SUBSETTED))
}

/// The type of an entry without a resource (a deleted version in history).
fn entry_type(e: &Value) -> Option<String> {
    let url = e["request"]["url"]
        .as_str()
        .or_else(|| e["fullUrl"].as_str())?;
    let path = url.split('?').next().unwrap_or(url);
    let segs: Vec<&str> = path.rsplit('/').collect();
    // …/Type/id or …/Type/id/_history/v
    let (t, id) = match segs.as_slice() {
        [_, "_history", id, t, ..] => (*t, *id),
        [id, t, ..] => (*t, *id),
        _ => return None,
    };
    Reference::parse(&format!("{t}/{id}"), None).map(|r| r.resource_type)
}

/// Filters a Bundle's entries; returns how many non-outcome entries remain.
fn filter_bundle(cache: &mut Cache<'_>, bundle: &mut Value, op: Op, exact: bool) -> usize {
    let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else {
        return 0;
    };
    let before = entries.len();
    let mut dropped_matches = false;
    entries.retain(|e| {
        let mode = e["search"]["mode"].as_str().unwrap_or("match");
        if mode == "outcome" {
            return true;
        }
        let r = &e["resource"];
        let keep = match r["resourceType"].as_str() {
            None => {
                let t = entry_type(e);
                matches!(cache.get(t.as_deref(), op), Access::Open)
            }
            Some("OperationOutcome") => true,
            Some(_) if exact && mode == "match" && is_subsetted(r) => true,
            Some(t) if mode == "include" => {
                cache.get(Some(t), Op::Read).admits(t, r)
                    || cache.get(Some(t), Op::Search).admits(t, r)
            }
            Some(t) => cache.get(Some(t), op).admits(t, r),
        };
        if !keep && mode != "include" {
            dropped_matches = true;
        }
        keep
    });
    let remaining: usize = entries
        .iter()
        .filter(|e| e["search"]["mode"] != "outcome")
        .count();
    let matches = entries
        .iter()
        .filter(|e| e["search"]["mode"] != "outcome" && e["search"]["mode"] != "include")
        .count();
    if entries.len() != before && dropped_matches {
        fix_total(bundle, matches);
    }
    remaining
}

/// After matches were dropped: recount on a single page, else drop the total.
fn fix_total(bundle: &mut Value, matches: usize) {
    let has = |rel: &str, b: &Value| {
        b["link"]
            .as_array()
            .is_some_and(|ls| ls.iter().any(|l| l["relation"] == rel))
    };
    let single_page = !has("next", bundle) && !has("previous", bundle);
    let Some(obj) = bundle.as_object_mut() else {
        return;
    };
    if single_page {
        if obj.contains_key("total") {
            obj.insert("total".into(), Value::from(matches));
        }
    } else {
        obj.remove("total");
        if let Some(links) = obj.get_mut("link").and_then(Value::as_array_mut) {
            links.retain(|l| l["relation"] != "last");
        }
    }
}

/// `Patient/[id]/$everything`: the patient must be within some read grant's
/// reach (else 404, as if unknown); `_type` is narrowed to the types granted
/// `r` (when no `*` read scope exists); the output is filtered per resource.
pub(crate) fn authorize_everything(
    ctx: &AccessContext,
    req: &mut FhirRequest,
) -> FhirResult<Authorized> {
    let id = req.id.clone().unwrap_or_default();
    // some read grant must reach this patient: unconfined, or confined to it
    let reachable = ctx.scopes.resource_scopes().filter(|s| s.perms.r).any(|s| {
        match confinement(ctx, s.context) {
            Some(None) => true,
            Some(Some(p)) => p == id,
            None => false,
        }
    });
    if !reachable {
        return Err(FhirError::not_found(format!("Patient/{id} is not known")));
    }
    let wildcard = ctx
        .scopes
        .resource_scopes()
        .any(|s| s.perms.r && s.resource_type.is_none());
    if !wildcard {
        let mut granted: Vec<String> = Vec::new();
        for s in ctx.scopes.resource_scopes().filter(|s| s.perms.r) {
            if let Some(t) = &s.resource_type {
                if !granted.contains(t) && allowed(ctx, t, Op::Read).is_ok() {
                    granted.push(t.clone());
                }
            }
        }
        let asked: Option<Vec<String>> = req.param("_type").map(|v| {
            v.split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        });
        let types: Vec<String> = match asked {
            Some(a) => a.into_iter().filter(|t| granted.contains(t)).collect(),
            None => granted,
        };
        if types.is_empty() {
            return Err(forbidden(
                "the access token grants read (r) on none of the requested types",
            ));
        }
        req.params.retain(|(k, _)| k != "_type");
        req.params.push(("_type".into(), types.join(",")));
    }
    Ok(Authorized::with(Check::Bundle {
        op: Op::Read,
        exact: false,
        instance: false,
    }))
}
