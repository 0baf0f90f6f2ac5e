//! The consent pre-decision on the request, before anything is asked of the
//! upstream: search features that would let a caller learn about resources
//! consent hides are refused (403) instead of answered, because their answer
//! is computed by the upstream over data the facade never gets to judge:
//!
//! - chained parameters (`subject:Patient.name=…`) and reverse chains
//!   (`_has:…`): matches would reveal a hidden resource's contents;
//! - `_security`, `_tag`, `_text`, `_content`, `_filter`, `_list`, `_query`,
//!   `_source`, `_profile` and `_sort` on those: labels, narrative and
//!   free text are exactly what consent hides or strips;
//! - conditional create, update and delete (their match can be a hidden
//!   resource, and the answer tells whether it exists).
//!
//! A patient reading their own record is not restricted (nothing of theirs is
//! hidden from them). Conditional reads (`If-None-Match`,
//! `If-Modified-Since`) are dropped for everyone else: a 304 would confirm a
//! hidden resource.

use smart_launch::context::AccessContext;

use crate::{
    error::FhirResult,
    fhir::{FhirRequest, Interaction},
    pipeline::authorize::forbidden,
};

/// Parameters refused for restricted callers (after the modifier is cut).
const HIDDEN_ATTRIBUTES: &[&str] = &[
    "_security",
    "_tag",
    "_text",
    "_content",
    "_filter",
    "_list",
    "_query",
    "_source",
    "_profile",
];

/// Whether the caller is a patient confined to their own record.
pub fn is_self_only(caller: &AccessContext) -> bool {
    match (&caller.fhir_user, &caller.patient) {
        (Some(u), Some(p)) => u.strip_prefix("Patient/") == Some(p.as_str()),
        _ => false,
    }
}

/// Refuses what a restricted caller may not ask; strips conditional reads.
pub fn check(caller: &AccessContext, req: &mut FhirRequest) -> FhirResult<()> {
    if is_self_only(caller) {
        return Ok(());
    }
    req.if_none_match = None;
    req.if_modified_since = None;
    check_params(&req.params)?;
    let conditional = req.if_none_exist.is_some()
        || matches!(
            req.interaction,
            Interaction::ConditionalUpdate | Interaction::ConditionalDelete
        );
    if conditional {
        return Err(forbidden(
            "conditional create, update and delete are not available under consent enforcement \
             (their match could be a record the caller may not see)",
        ));
    }
    Ok(())
}

/// The parameter checks alone (also used for batch entries' URLs).
pub fn check_params(params: &[(String, String)]) -> FhirResult<()> {
    for (k, v) in params {
        let name = k.split(':').next().unwrap_or(k);
        if name == "_has" || k.starts_with("_has:") {
            return Err(forbidden(
                "_has is not available under consent enforcement (it would reveal hidden records)",
            ));
        }
        let chained = k.contains('.') && !name.starts_with('_');
        if chained || (k.contains(':') && k.contains('.')) {
            return Err(forbidden(format!(
                "chained search ({k}) is not available under consent enforcement \
                 (it would reveal hidden records)"
            )));
        }
        if HIDDEN_ATTRIBUTES.contains(&name) {
            return Err(forbidden(format!(
                "{name} is not available under consent enforcement (it searches what consent hides)"
            )));
        }
        if name == "_sort" {
            let bad = v
                .split(',')
                .map(|s| s.trim().trim_start_matches('-'))
                .find(|s| HIDDEN_ATTRIBUTES.contains(s));
            if let Some(s) = bad {
                return Err(forbidden(format!(
                    "sorting by {s} is not available under consent enforcement"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.into(), v.into())]
    }

    #[test]
    fn refuses_oracles_and_allows_plain_search() {
        for (k, v) in [
            ("subject:Patient.name", "x"),
            ("subject.name", "x"),
            ("_has:Observation:patient:code", "x"),
            ("_security", "R"),
            ("_tag:not", "x"),
            ("_text", "hiv"),
            ("_content", "x"),
            ("_sort", "-_security"),
        ] {
            assert_eq!(
                check_params(&p(k, v)).unwrap_err().status.as_u16(),
                403,
                "{k}"
            );
        }
        for (k, v) in [
            ("code", "1234-5"),
            ("subject", "Patient/1"),
            ("_sort", "-date,_id"),
            ("_include", "Observation:subject"),
            ("value-quantity", "gt5.4"),
            ("code:text", "glucose"),
        ] {
            assert!(check_params(&p(k, v)).is_ok(), "{k}");
        }
    }
}
