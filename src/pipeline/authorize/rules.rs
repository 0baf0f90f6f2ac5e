//! From scopes to rules: what the caller may see of one resource type for one
//! operation. Each SMART grant (`ScopeSet::grants`) becomes a [`Rule`]: an
//! optional Patient compartment the caller is confined to plus the grant's
//! granular constraints. How each scope context is confined:
//! - `patient/` (SMART 2.2 §"Scopes for requesting FHIR Resources"): the
//!   launch patient's compartment; without a launch patient the grant gives
//!   nothing (fail closed).
//! - `user/`: by the signed-in user's role. `clinician` and `admin` see what
//!   their scopes allow, unconfined (a care-team model is future work); a
//!   `patient` user, or a user with no such role whose `fhirUser` is a Patient,
//!   is confined to their own `fhirUser` Patient's compartment exactly like
//!   `patient/` scopes; any other user gets nothing from `user/` scopes.
//! - `system/`: no confinement (Backend Services).
//!
//! Confinement applies only to patient data (`compartment::is_patient_data`);
//! shared types (Organization, Practitioner, Medication, ...) are not
//! confined. A confined rule for a compartment type fhirgate cannot compute
//! membership for (`!compartment::can_confine`) is dropped.

use serde_json::Value;
use smart_launch::{
    context::AccessContext,
    scope::{Op, ScopeContext},
};

use super::{compartment, constraint};
use crate::fhir::Reference;

/// One way the caller may see resources of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// Patient id whose compartment the resource must be in; `None` = any.
    pub confine: Option<String>,
    /// Granular constraints, AND-ed; empty = none.
    pub constraints: Vec<(String, String)>,
}

impl Rule {
    /// Whether this rule admits `body` (a resource of `rtype`).
    pub fn admits(&self, rtype: &str, body: &Value) -> bool {
        self.confine
            .as_deref()
            .is_none_or(|p| compartment::in_compartment(rtype, body, p))
            && constraint::matches(rtype, body, &self.constraints)
    }

    /// Whether this rule leaves nothing out.
    pub fn is_open(&self) -> bool {
        self.confine.is_none() && self.constraints.is_empty()
    }

    /// Whether everything `other` admits, `self` admits too.
    fn subsumes(&self, other: &Rule) -> bool {
        (self.confine.is_none() || self.confine == other.confine)
            && self
                .constraints
                .iter()
                .all(|c| other.constraints.contains(c))
    }
}

/// What the caller may do with one type for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// No grant (or none that resolves): refuse with 403.
    Denied {
        /// Why, for the OperationOutcome.
        reason: String,
    },
    /// Everything of the type.
    Open,
    /// Only what one of these rules admits (no rule subsumes another).
    Rules(Vec<Rule>),
}

impl Access {
    /// Whether `body` (a resource of `rtype`) is visible under this access.
    pub fn admits(&self, rtype: &str, body: &Value) -> bool {
        match self {
            Access::Denied { .. } => false,
            Access::Open => true,
            Access::Rules(rules) => rules.iter().any(|r| r.admits(rtype, body)),
        }
    }
}

/// The Patient the user/ scopes of a patient user are confined to.
fn patient_user(ctx: &AccessContext) -> Option<String> {
    let r = Reference::parse(ctx.fhir_user.as_deref()?, None)?;
    (r.resource_type == "Patient").then_some(r.id)
}

/// The confinement of a grant in `context`: `Some(None)` = unconfined,
/// `Some(Some(p))` = Patient p's compartment, `None` = the grant gives nothing.
pub(crate) fn confinement(ctx: &AccessContext, context: ScopeContext) -> Option<Option<String>> {
    match context {
        ScopeContext::System => Some(None),
        ScopeContext::Patient => ctx.patient.clone().map(Some),
        ScopeContext::User => match ctx.role.as_deref() {
            Some("clinician" | "admin") => Some(None),
            Some("patient") => patient_user(ctx).map(Some),
            Some(_) => None,
            None => patient_user(ctx).map(Some),
        },
    }
}

/// The caller's access to `rtype` for `op`.
pub(crate) fn access(ctx: &AccessContext, rtype: &str, op: Op) -> Access {
    let grants = ctx.scopes.grants(rtype, op);
    if grants.is_empty() {
        return Access::Denied {
            reason: format!(
                "the access token grants no scope for {} on {rtype}",
                op_name(op)
            ),
        };
    }
    let patient_data = compartment::is_patient_data(rtype);
    let mut rules: Vec<Rule> = Vec::new();
    let mut uncomputable = false;
    for g in grants {
        let Some(confine) = confinement(ctx, g.context) else {
            continue;
        };
        let confine = confine.filter(|_| patient_data);
        if confine.is_some() && !compartment::can_confine(rtype) {
            uncomputable = true;
            continue;
        }
        let rule = Rule {
            confine,
            constraints: g.constraints,
        };
        if rule.is_open() {
            return Access::Open;
        }
        if !rules.iter().any(|r| r.subsumes(&rule)) {
            rules.retain(|r| !rule.subsumes(r));
            rules.push(rule);
        }
    }
    if rules.is_empty() {
        let reason = if uncomputable {
            format!("{rtype} cannot be confined to the patient compartment; access under patient scopes is refused")
        } else {
            format!(
                "the access token's scopes for {} on {rtype} have no patient or user context to apply to",
                op_name(op)
            )
        };
        return Access::Denied { reason };
    }
    Access::Rules(rules)
}

/// The permission letter's meaning, for messages.
pub(crate) fn op_name(op: Op) -> &'static str {
    match op {
        Op::Create => "create (c)",
        Op::Read => "read (r)",
        Op::Update => "update (u)",
        Op::Delete => "delete (d)",
        Op::Search => "search (s)",
    }
}
