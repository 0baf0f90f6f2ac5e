//! The CMS-0057-F payer APIs (issue 6, items 6 and 7), answered by the
//! facade itself in the route stage (`pipeline::handle_as` calls
//! [`Operation::of`] and [`run`], and [`groups`] around the upstream route
//! of Group reads):
//!
//! - `POST /fhir/Patient/$member-match` (Da Vinci HRex): [`member_match`].
//! - `POST /fhir/Group/$bulk-member-match` (PDex 2.x): [`bulk_match`],
//!   queued as a Bulk Data job with `Prefer: respond-async`, else answered
//!   at once (see there).
//! - `POST /fhir/Group/{id}/$davinci-data-export` (PDex Provider Access and
//!   Payer-to-Payer): [`data_export`] validates and plans the export and
//!   hands it to the Bulk Data core (`bulk::kickoff`).
//! - Group visibility (`groups`): a requesting payer sees only the Groups
//!   its client created; a provider client (`[payer] provider_clients`)
//!   sees only its organization's attribution Groups, without the members
//!   who opted out by Consent.
//!
//! Authorization (the `authorize` stage refuses other operations without
//! `system/*.cruds`; these have their own rules, checked here): the match
//! operations need a `system/` scope with search on Patient
//! (`system/Patient.rs`, `system/Patient.s`, `system/*.…`); the data export
//! needs a `system/` scope with read on Group. Matching searches the
//! upstream as the system; the caller's consent does not narrow the match.
//!
//! Brute force: failed matches are counted per client ([`throttle`]).

use smart_launch::{context::AccessContext, scope::ScopeContext};

use crate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::{authorize::forbidden, Disclosure},
    upstream::RequestContext,
    AppState,
};

pub mod bulk_match;
pub mod config;
pub mod consent;
pub mod data_export;
pub mod groups;
pub mod matching;
pub mod member_match;
pub mod params;
pub mod throttle;

#[cfg(test)]
mod tests;

/// The operations this module answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `Patient/$member-match`.
    MemberMatch,
    /// `Group/$bulk-member-match`.
    BulkMemberMatch,
    /// `Group/{id}/$davinci-data-export`.
    DataExport,
}

impl Operation {
    /// The payer operation a request asks for, if any.
    pub fn of(req: &FhirRequest) -> Option<Self> {
        if req.interaction != Interaction::Operation || req.compartment.is_some() {
            return None;
        }
        let op = req.operation.as_deref()?.trim_start_matches('$');
        match (req.resource_type.as_deref(), req.id.is_some(), op) {
            (Some("Patient"), false, "member-match") => Some(Self::MemberMatch),
            (Some("Group"), false, "bulk-member-match") => Some(Self::BulkMemberMatch),
            (Some("Group"), true, "davinci-data-export") => Some(Self::DataExport),
            _ => None,
        }
    }
}

/// Runs a payer operation for `caller`.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    op: Operation,
    req: FhirRequest,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    match op {
        Operation::MemberMatch => {
            require_system(caller, "Patient", |p| p.s, "search (s)")?;
            member_match::run(app, caller, &req, ctx, disclosure).await
        }
        Operation::BulkMemberMatch => {
            require_system(caller, "Patient", |p| p.s, "search (s)")?;
            bulk_match::run(app, caller, &req, ctx, disclosure).await
        }
        Operation::DataExport => {
            require_system(caller, "Group", |p| p.r, "read (r)")?;
            data_export::run(app, caller, &req, ctx, disclosure).await
        }
    }
}

/// 403 unless the token holds an unconstrained `system/` scope on `rtype`
/// (or `*`) with the permission `perm` picks.
pub fn require_system(
    caller: &AccessContext,
    rtype: &str,
    perm: fn(&smart_launch::scope::Perms) -> bool,
    what: &str,
) -> FhirResult<()> {
    let ok = caller.scopes.resource_scopes().any(|s| {
        s.context == ScopeContext::System
            && s.resource_type.as_deref().is_none_or(|t| t == rtype)
            && perm(&s.perms)
            && s.constraints.is_empty()
    });
    if ok {
        Ok(())
    } else {
        Err(forbidden(format!(
            "this operation needs a system/ scope granting {what} on {rtype}"
        )))
    }
}
