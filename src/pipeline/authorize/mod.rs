//! Pipeline stage "authorize": SMART scope enforcement (SMART App Launch 2.2
//! §"Scopes and Launch Context"; issue 3 item 6). Runs after authentication
//! (which yields the [`AccessContext`]) and before routing ([`authorize`]),
//! and again on the answer ([`filter_response`]); [`route_as`] runs
//! authorize → route → filter for one caller, including the two things the
//! stage needs from the routing step (an empty answer without asking the
//! upstream, and reading the current version before a restricted write).
//!
//! Every request is judged by resource type and interaction, never by HTTP
//! method: read, vread and instance history need `r`; type search,
//! compartment search and type history need `s`; create `c`, update `u`,
//! delete `d`. Conditional interactions also need `s` (their match reveals
//! what exists): conditional create `c`+`s`, conditional update `u`+`s`
//! (the create-when-nothing-matches is accepted under `u`, as for
//! update-as-create), conditional delete `d`+`s`; and because their condition
//! cannot be confined, they need unrestricted access (no patient confinement,
//! no granular constraint), else 403. `metadata` is always allowed. A batch or
//! transaction is judged entry by entry (`batch`): a refused entry refuses the
//! whole transaction and answers that entry alone in a batch.
//! `Patient/$everything` needs `r` and is narrowed to the granted types; other
//! operations need `system/*.cruds` until each gets its own rule.
//!
//! What the caller may see (`rules`): `patient/` scopes confine patient data
//! to the launch patient's compartment on every path, `user/` scopes follow
//! the user's role, granular scopes filter by their constraints. Searches are
//! narrowed in the request (`search`) so totals and paging stay true, and
//! every resource in every answer is checked again (`filter`): matches,
//! `_include`/`_revinclude`d resources (which need `r` or `s` on their own
//! type and are dropped otherwise, never leaked), history entries, batch
//! entries and `$everything` output.
//!
//! Refusals: a type or interaction the token has no scope for is 403
//! `forbidden` with an OperationOutcome (never an empty 200). A read of a
//! resource outside what the caller may see is 404 `not-found`, exactly as if
//! it did not exist, and a search naming another patient finds nothing; a
//! write aimed at such a resource is 403 (the write cannot be performed).

use axum::http::StatusCode;
use serde_json::Value;
use smart_launch::{
    context::AccessContext,
    scope::{Op, Perms, ResourceScope, ScopeContext, ScopeSet, SmartScope},
};

use crate::{
    error::{FhirError, FhirResult, IssueType},
    fhir::{FhirRequest, Interaction},
};

mod batch;
mod compartment;
mod constraint;
mod filter;
mod route;
mod rules;
mod search;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_paths;

pub use filter::filter_response;
pub use route::{empty_searchset, route_as};
use rules::{access, op_name, Access};
use search::Narrowing;

/// What the post-filter needs to know about one authorized request.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// How the answer is checked.
    check: Check,
    /// Writes under restricted access: the current version of each of these
    /// must be visible for the operation before the write runs ([`route_as`]
    /// reads them first; one that does not exist is no obstacle).
    pub verify_existing: Vec<Existing>,
    /// Nothing the caller may see can match: answer an empty searchset
    /// without asking the upstream.
    pub answer_empty: bool,
}

/// A resource a write will change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// Type.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
    /// The operation the caller asks for.
    pub op: Op,
}

/// How an answer is checked.
#[derive(Debug, Clone)]
enum Check {
    /// Nothing to check (capabilities, writes, operations under system/*.cruds).
    Nothing,
    /// The body is one resource, visible under `Op` (else 404).
    Resource(Op),
    /// The body is a Bundle whose matches need `op`; `exact` when the request
    /// was narrowed to exactly the visible matches; `instance` for instance
    /// history (nothing visible = 404).
    Bundle { op: Op, exact: bool, instance: bool },
    /// Batch/transaction: per entry of the Bundle sent upstream, and the
    /// entries the facade answered itself (`(original index, response entry)`).
    Batch {
        sent: Vec<Authorized>,
        answered: Vec<(usize, Value)>,
    },
}

impl Authorized {
    fn with(check: Check) -> Self {
        Self {
            check,
            verify_existing: Vec::new(),
            answer_empty: false,
        }
    }
}

pub(crate) fn forbidden(message: impl Into<String>) -> FhirError {
    FhirError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, message)
}

/// Stage "authorize" before routing: refuses (403 `forbidden`, or 404 for a
/// `$everything` on a patient outside reach) or narrows the request, and
/// returns what [`filter_response`] needs.
pub fn authorize(ctx: &AccessContext, req: &mut FhirRequest) -> FhirResult<Authorized> {
    match req.interaction {
        Interaction::BatchOrTransaction => batch::authorize_bundle(ctx, req),
        _ => authorize_one(ctx, req),
    }
}

/// The caller's access, or 403.
fn allowed(ctx: &AccessContext, rtype: &str, op: Op) -> FhirResult<Access> {
    match access(ctx, rtype, op) {
        Access::Denied { reason } => Err(forbidden(reason)),
        a => Ok(a),
    }
}

/// The same, but restricted access is refused too (conditional interactions).
fn allowed_open(ctx: &AccessContext, rtype: &str, op: Op, what: &str) -> FhirResult<()> {
    match allowed(ctx, rtype, op)? {
        Access::Open => Ok(()),
        _ => Err(forbidden(format!(
            "{what} needs {} on every {rtype}, not only the patient's or a granular subset",
            op_name(op)
        ))),
    }
}

fn the_type(req: &FhirRequest) -> FhirResult<String> {
    req.resource_type
        .clone()
        .ok_or_else(|| FhirError::bad_request("the request names no resource type"))
}

/// One non-Bundle request.
pub(crate) fn authorize_one(ctx: &AccessContext, req: &mut FhirRequest) -> FhirResult<Authorized> {
    use Interaction::*;
    let check = match req.interaction {
        Capabilities => Check::Nothing,
        Read | Vread | HistoryInstance => {
            if allowed(ctx, &the_type(req)?, Op::Read)? != Access::Open {
                // a 304 would reveal that a hidden resource exists
                req.if_none_match = None;
                req.if_modified_since = None;
            }
            match req.interaction {
                HistoryInstance => Check::Bundle {
                    op: Op::Read,
                    exact: false,
                    instance: true,
                },
                _ => Check::Resource(Op::Read),
            }
        }
        SearchType | SearchCompartment => return authorize_search(ctx, req),
        SearchSystem => {
            system_search(ctx, req)?;
            Check::Bundle {
                op: Op::Search,
                exact: true,
                instance: false,
            }
        }
        HistoryType | HistorySystem => {
            if let Some(t) = &req.resource_type {
                allowed(ctx, t, Op::Search)?;
            } else if !ctx.scopes.resource_scopes().any(|s| s.perms.s) {
                return Err(forbidden("the access token grants no search (s) scope"));
            }
            Check::Bundle {
                op: Op::Search,
                exact: false,
                instance: false,
            }
        }
        Create | Update => return authorize_write(ctx, req),
        Delete => {
            let t = the_type(req)?;
            let mut a = Authorized::with(Check::Nothing);
            if allowed(ctx, &t, Op::Delete)? != Access::Open {
                a.verify_existing.push(existing(req, Op::Delete));
            }
            return Ok(a);
        }
        ConditionalUpdate => {
            let t = the_type(req)?;
            allowed_open(ctx, &t, Op::Update, "conditional update")?;
            allowed_open(ctx, &t, Op::Search, "conditional update")?;
            Check::Nothing
        }
        ConditionalDelete => {
            let t = the_type(req)?;
            allowed_open(ctx, &t, Op::Delete, "conditional delete")?;
            allowed_open(ctx, &t, Op::Search, "conditional delete")?;
            Check::Nothing
        }
        Operation => return authorize_operation(ctx, req),
        BatchOrTransaction => {
            return Err(FhirError::bad_request(
                "nested batches and transactions are not supported",
            ))
        }
    };
    Ok(Authorized::with(check))
}

fn existing(req: &FhirRequest, op: Op) -> Existing {
    Existing {
        resource_type: req.resource_type.clone().unwrap_or_default(),
        id: req.id.clone().unwrap_or_default(),
        op,
    }
}

fn authorize_search(ctx: &AccessContext, req: &mut FhirRequest) -> FhirResult<Authorized> {
    let t = the_type(req)?;
    let acc = allowed(ctx, &t, Op::Search)?;
    search::check_joins(ctx, &t, &req.params)?;
    let narrowing = match &acc {
        Access::Rules(rules) => search::narrow(req, &t, rules)?,
        _ => Narrowing::Exact,
    };
    let mut a = Authorized::with(Check::Bundle {
        op: Op::Search,
        exact: narrowing == Narrowing::Exact,
        instance: false,
    });
    a.answer_empty = narrowing == Narrowing::Empty;
    Ok(a)
}

/// `GET [base]?_type=…`: every listed type needs unrestricted `s` (one
/// compartment or constraint cannot be applied across types); without
/// `_type`, a `*` search grant without restriction is needed.
fn system_search(ctx: &AccessContext, req: &FhirRequest) -> FhirResult<()> {
    let types: Vec<&str> = req
        .params
        .iter()
        .filter(|(k, _)| k == "_type")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if types.is_empty() {
        let wildcard = ctx
            .scopes
            .resource_scopes()
            .any(|s| s.resource_type.is_none() && s.perms.s && s.constraints.is_empty());
        if !wildcard {
            return Err(forbidden(
                "a search across all types needs _type or a */s scope",
            ));
        }
        // the wildcard must also be unconfined: judged on a patient-data type
        return allowed_open(ctx, "Patient", Op::Search, "a search across all types");
    }
    for t in types {
        allowed_open(ctx, t, Op::Search, "a search across types")?;
    }
    Ok(())
}

fn authorize_write(ctx: &AccessContext, req: &mut FhirRequest) -> FhirResult<Authorized> {
    let t = the_type(req)?;
    let op = if req.interaction == Interaction::Create {
        Op::Create
    } else {
        Op::Update
    };
    let acc = allowed(ctx, &t, op)?;
    if req.if_none_exist.is_some() {
        allowed_open(ctx, &t, Op::Create, "conditional create")?;
        allowed_open(ctx, &t, Op::Search, "conditional create")?;
    }
    let mut a = Authorized::with(Check::Nothing);
    if acc == Access::Open {
        return Ok(a);
    }
    let body = req
        .body
        .as_ref()
        .filter(|b| b["resourceType"] == t.as_str());
    let Some(body) = body else {
        return Err(FhirError::bad_request(format!(
            "the body must be a {t} resource"
        )));
    };
    if !acc.admits(&t, body) {
        return Err(forbidden(format!(
            "the {t} is outside what the access token may {} (patient compartment or granular scope)",
            op_name(op)
        )));
    }
    if op == Op::Update {
        a.verify_existing.push(existing(req, Op::Update));
    }
    Ok(a)
}

/// Whether the token holds `system/*.cruds` without constraints.
fn is_system_superuser(ctx: &AccessContext) -> bool {
    let all = SmartScope::Resource(ResourceScope {
        context: ScopeContext::System,
        resource_type: None,
        perms: Perms::ALL,
        constraints: Vec::new(),
        v2: true,
    });
    let wanted: ScopeSet = [all].into_iter().collect();
    wanted.covered_by(&ctx.scopes)
}

fn authorize_operation(ctx: &AccessContext, req: &mut FhirRequest) -> FhirResult<Authorized> {
    let op = req.operation.clone().unwrap_or_default();
    let everything =
        op == "everything" && req.resource_type.as_deref() == Some("Patient") && req.id.is_some();
    if everything {
        return filter::authorize_everything(ctx, req);
    }
    if is_system_superuser(ctx) {
        return Ok(Authorized::with(Check::Nothing));
    }
    Err(forbidden(format!(
        "the operation ${op} is not authorized for this access token"
    )))
}
