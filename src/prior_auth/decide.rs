//! A reviewer's decision on one pended item: [`apply`] is the pure step
//! (item and request state machine, approval stamping, required reason for
//! a denial), [`decide`] loads, applies, rebuilds the ClaimResponse and
//! saves. The admin review queue (a later slice) calls [`decide`].

use super::{
    adjudicate,
    config::PriorAuthConfig,
    response,
    rules::Rules,
    state::{item_transition, transition, Event, State},
    store::Record,
};
use crate::{
    error::{FhirError, FhirResult},
    AppState,
};

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Certify the item (X12 306 A1).
    Approve,
    /// Do not certify it (A3); a reason is required.
    Deny,
}

/// How approvals are stamped: validity in days, authorization-number prefix.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// `preAuthPeriod` length.
    pub approval_days: i64,
    /// `preAuthRef` prefix.
    pub prefix: &'a str,
}

/// Applies a decision to `rec` at `now_ms`, or says why it cannot.
pub fn apply(
    rec: &mut Record,
    reviewer: &str,
    sequence: u32,
    (decision, reason): (Decision, Option<&str>),
    now_ms: i64,
    stamp: Stamp<'_>,
) -> Result<(), String> {
    if decision == Decision::Deny && reason.is_none_or(str::is_empty) {
        return Err("a denial needs a reason code".into());
    }
    let id = rec.id.clone();
    let Some(item) = rec.items.iter_mut().find(|i| i.sequence == sequence) else {
        return Err(format!("the request has no item {sequence}"));
    };
    let next = item_transition(item.state, decision == Decision::Approve)?;
    let mut changed = item.clone();
    match decision {
        Decision::Approve => adjudicate::approve(
            &mut changed,
            reviewer,
            now_ms,
            stamp.approval_days,
            stamp.prefix,
            &id,
        ),
        Decision::Deny => {
            changed.state = next;
            changed.reason = reason.map(str::to_owned);
            changed.decided_ms = Some(now_ms);
            changed.reviewer = Some(reviewer.to_owned());
        }
    }
    let mut items = rec.items.clone();
    if let Some(slot) = items.iter_mut().find(|i| i.sequence == sequence) {
        *slot = changed;
    }
    let to = State::of_items(items.iter().map(|i| i.state));
    let to = transition(rec.state, Event::Decide(to)).map_err(|r| r.reason.to_owned())?;
    rec.items = items;
    rec.state = to;
    if to.is_final() {
        rec.decided_ms = Some(now_ms);
    }
    rec.response = response::claim_response(rec, &adjudicate::instant(now_ms));
    Ok(())
}

/// Loads request `id`, applies the decision and saves it; 404 for an
/// unknown request, 409 for a refused transition.
pub async fn decide(
    app: &AppState,
    id: &str,
    reviewer: &str,
    sequence: u32,
    decision: Decision,
    reason: Option<&str>,
) -> FhirResult<Record> {
    let cfg: &PriorAuthConfig = &app.config.prior_auth;
    let rules = Rules::load(cfg).map_err(FhirError::internal)?;
    let mut rec = app
        .state
        .pa_get(id)
        .await?
        .ok_or_else(|| FhirError::not_found(format!("no prior authorization request {id}")))?;
    let now = crate::audit::auditor::now_ms();
    apply(
        &mut rec,
        reviewer,
        sequence,
        (decision, reason),
        now,
        Stamp {
            approval_days: rules.approval_days,
            prefix: &cfg.auth_number_prefix,
        },
    )
    .map_err(FhirError::conflict)?;
    app.state.pa_save(&rec, now).await?;
    crate::subscriptions::pas_event(app, &rec);
    Ok(rec)
}
