//! Searches under restricted access: the request is narrowed so that the
//! upstream returns exactly what the caller may see, and totals stay true.
//!
//! - Patient confinement: a type search becomes the Patient-compartment search
//!   `Patient/<p>/<Type>?…` (R4 search.html §3.1.1.4.2 "compartment search"),
//!   which both upstreams honour, whatever patient parameters the caller sent;
//!   a compartment search of another patient is answered empty without asking
//!   the upstream (nothing outside the compartment exists for this caller).
//! - Granular constraints (SMART 2.2 §"Finer-grained resource constraints"):
//!   one grant's pairs are added as search parameters (AND); several grants
//!   that each constrain the same single parameter are OR-ed as one
//!   comma-separated parameter (the scope value is already in search syntax);
//!   a request that already carries one grant's exact pairs is left alone.
//!   Anything else (grants constraining different parameters, or different
//!   confinements) cannot be written as FHIR search parameters: the search then
//!   runs unconstrained and every page is filtered in memory (`PostFilter`);
//!   `Bundle.total` is then given only when the page is the whole result, else
//!   omitted (never a wrong number), and `_summary`/`_elements` are refused
//!   (403) because subsetted resources cannot be judged.
//! - Chained parameters and `_has` (§3.1.1.4.7–8) reveal data of the types they
//!   name: each such type needs a search grant without granular constraints,
//!   else 403. Chains or `_has` the facade cannot parse are refused.

use smart_launch::{context::AccessContext, scope::Op};

use super::{
    constraint, forbidden,
    rules::{access, Access, Rule},
};
use crate::{
    error::FhirResult,
    fhir::{FhirRequest, Interaction},
    search::query::{self, Test},
};

/// How a search's results relate to what the caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Narrowing {
    /// The request itself selects exactly the visible matches.
    Exact,
    /// The upstream returns more; pages are filtered in memory.
    PostFilter,
    /// Nothing can be visible: answer an empty searchset.
    Empty,
}

/// Checks chains and `_has` in `params` of a search over `rtype`.
pub(crate) fn check_joins(
    ctx: &AccessContext,
    rtype: &str,
    params: &[(String, String)],
) -> FhirResult<()> {
    let q = query::parse(rtype, params, "")?;
    if let Some(bad) = params.iter().map(|(k, _)| k).find(|k| {
        (k.contains('.') || k.starts_with("_has")) && !q.echo.iter().any(|(e, _)| e == *k)
    }) {
        return Err(forbidden(format!(
            "the chained or _has parameter '{bad}' cannot be authorized"
        )));
    }
    let mut joined: Vec<&str> = Vec::new();
    for c in &q.clauses {
        match &c.test {
            Test::Chain(branches) => joined.extend(branches.iter().map(|(t, _)| *t)),
            Test::Has { rtype, .. } => joined.push(rtype.as_str()),
            _ => {}
        }
    }
    for t in joined {
        match access(ctx, t, Op::Search) {
            Access::Denied { reason } => {
                return Err(forbidden(format!("chained search into {t}: {reason}")))
            }
            Access::Rules(rules) if rules.iter().any(|r| !r.constraints.is_empty()) => {
                return Err(forbidden(format!(
                    "chained search into {t} is not available under granular scopes"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Narrows a type or compartment search over `rtype` to `rules`.
pub(crate) fn narrow(req: &mut FhirRequest, rtype: &str, rules: &[Rule]) -> FhirResult<Narrowing> {
    let Some(confine) = rules.first().map(|r| &r.confine) else {
        return Ok(Narrowing::Empty);
    };
    if rules.iter().any(|r| &r.confine != confine) {
        return post_filter(req);
    }
    if let Some(p) = confine {
        match (&req.interaction, &req.compartment) {
            (Interaction::SearchCompartment, Some((ct, cid))) => {
                if ct != "Patient" {
                    return Err(forbidden(format!(
                        "the {ct} compartment cannot be searched under patient scopes"
                    )));
                }
                if cid != p {
                    return Ok(Narrowing::Empty);
                }
            }
            _ => {
                req.interaction = Interaction::SearchCompartment;
                req.compartment = Some(("Patient".into(), p.clone()));
            }
        }
    }
    match constraint_params(rtype, rules, &req.params) {
        Some(extra) => {
            req.params.extend(extra);
            Ok(Narrowing::Exact)
        }
        None => post_filter(req),
    }
}

fn post_filter(req: &FhirRequest) -> FhirResult<Narrowing> {
    let subsetting = req.params.iter().any(|(k, v)| {
        k == "_elements" || (k == "_summary" && !matches!(v.as_str(), "false" | "data"))
    });
    if subsetting {
        return Err(forbidden(
            "_summary and _elements are not available with this combination of granted scopes",
        ));
    }
    Ok(Narrowing::PostFilter)
}

/// Parameters that confine a search to the union of the rules' constraints,
/// or `None` when that union is not expressible as search parameters.
fn constraint_params(
    rtype: &str,
    rules: &[Rule],
    params: &[(String, String)],
) -> Option<Vec<(String, String)>> {
    let sets: Vec<&Vec<(String, String)>> = rules.iter().map(|r| &r.constraints).collect();
    if sets.iter().any(|s| s.is_empty()) {
        return Some(Vec::new());
    }
    if sets.iter().any(|s| s.iter().all(|c| params.contains(c))) {
        return Some(Vec::new());
    }
    if sets.iter().any(|s| constraint::clauses(rtype, s).is_none()) {
        return None;
    }
    if let [one] = sets.as_slice() {
        return Some((*one).clone());
    }
    let mut name: Option<&str> = None;
    let mut values: Vec<&str> = Vec::new();
    for s in &sets {
        let [(k, v)] = s.as_slice() else { return None };
        if name.is_some_and(|n| n != k) {
            return None;
        }
        name = Some(k);
        values.push(v);
    }
    name.map(|n| vec![(n.to_owned(), values.join(","))])
}
