//! Review actions on a whole request besides item decisions
//! ([`super::decide`]): extending a pended request's decision timeframe,
//! and recording a provider's appeal of a denied item, which pends it again
//! for a reviewer. Each is a pure step ([`apply_extension`],
//! [`apply_appeal`]) on the explicit machine of [`super::state`] and a
//! load-apply-save wrapper ([`extend`], [`appeal`]) that records the action
//! in `pa_events` for the CMS-0057-F metrics ("approved with an extended
//! timeframe", "approved after appeal").
//!
//! Rules: a request is extended at most once, by 1 to `[prior_auth]
//! max_extension_days` days (14 by default: the most CMS rules allow for a
//! standard request), with a reason. An appeal names a denied item; the
//! request goes back to pended with a fresh timeframe (`appeal_days` for a
//! standard request, `appeal_expedited_hours` for an expedited one) and the
//! item's earlier denial stays in the action's record.

use super::{
    adjudicate,
    config::PriorAuthConfig,
    response,
    review_store::{self, Event as Action, Kind},
    state::{item_appeal, transition, Event, ItemState, State},
    store::Record,
    timeframe::Urgency,
};
use crate::{
    error::{FhirError, FhirResult},
    AppState,
};

const DAY_MS: i64 = 86_400_000;

/// Extends `rec`'s deadline by `days` at `now_ms`, or says why not.
/// `already`: whether it was extended before.
pub fn apply_extension(
    rec: &mut Record,
    days: i64,
    reason: &str,
    already: bool,
    max_days: i64,
) -> Result<(), String> {
    if reason.trim().is_empty() {
        return Err("an extension needs a reason".into());
    }
    if !(1..=max_days).contains(&days) {
        return Err(format!("an extension is 1 to {max_days} days, not {days}"));
    }
    if already {
        return Err("the request's timeframe was already extended once".into());
    }
    rec.state = transition(rec.state, Event::Extend).map_err(|r| r.reason.to_owned())?;
    rec.deadline_ms += days * DAY_MS;
    Ok(())
}

/// Reopens denied item `sequence` of `rec` at `now_ms`, or says why not.
pub fn apply_appeal(
    rec: &mut Record,
    sequence: u32,
    now_ms: i64,
    cfg: &PriorAuthConfig,
) -> Result<(), String> {
    let to = transition(rec.state, Event::Appeal).map_err(|r| r.reason.to_owned())?;
    let Some(item) = rec.items.iter_mut().find(|i| i.sequence == sequence) else {
        return Err(format!("the request has no item {sequence}"));
    };
    item.state = item_appeal(item.state)?;
    item.decided_ms = None;
    item.reviewer = None;
    item.reason = None;
    rec.state = to;
    rec.decided_ms = None;
    rec.deadline_ms = now_ms
        + match rec.urgency {
            Urgency::Expedited => cfg.appeal_expedited_hours * 3_600_000,
            Urgency::Standard => cfg.appeal_days * DAY_MS,
        };
    debug_assert_eq!(
        State::of_items(rec.items.iter().map(|i| i.state)),
        State::Pended
    );
    rec.response = response::claim_response(rec, &adjudicate::instant(now_ms));
    Ok(())
}

async fn load(app: &AppState, id: &str) -> FhirResult<Record> {
    app.state
        .pa_get(id)
        .await?
        .ok_or_else(|| FhirError::not_found(format!("no prior authorization request {id}")))
}

/// Extends request `id` by `days` for `reviewer`; 404 unknown, 409 refused.
pub async fn extend(
    app: &AppState,
    id: &str,
    reviewer: &str,
    days: i64,
    reason: &str,
) -> FhirResult<Record> {
    let mut rec = load(app, id).await?;
    let already = review_store::of_request(&app.state, id)
        .await?
        .iter()
        .any(|e| e.kind == Kind::Extended);
    let now = crate::audit::auditor::now_ms();
    apply_extension(
        &mut rec,
        days,
        reason,
        already,
        app.config.prior_auth.max_extension_days,
    )
    .map_err(FhirError::conflict)?;
    app.state.pa_save(&rec, now).await?;
    review_store::record(
        &app.state,
        &Action {
            request_id: rec.id.clone(),
            at_ms: now,
            kind: Kind::Extended,
            item_sequence: None,
            actor: reviewer.to_owned(),
            reason: reason.trim().to_owned(),
            detail: Some(days.to_string()),
        },
    )
    .await?;
    Ok(rec)
}

/// Records an appeal of denied item `sequence` of request `id`, taken by
/// `actor` (the reviewer who logged it); 404 unknown, 409 refused.
pub async fn appeal(
    app: &AppState,
    id: &str,
    actor: &str,
    sequence: u32,
    reason: &str,
) -> FhirResult<Record> {
    if reason.trim().is_empty() {
        return Err(FhirError::conflict("an appeal needs a reason"));
    }
    let mut rec = load(app, id).await?;
    let denial = rec
        .items
        .iter()
        .find(|i| i.sequence == sequence && i.state == ItemState::Denied)
        .and_then(|i| i.reason.clone());
    let now = crate::audit::auditor::now_ms();
    apply_appeal(&mut rec, sequence, now, &app.config.prior_auth).map_err(FhirError::conflict)?;
    app.state.pa_save(&rec, now).await?;
    review_store::record(
        &app.state,
        &Action {
            request_id: rec.id.clone(),
            at_ms: now,
            kind: Kind::Appealed,
            item_sequence: Some(i64::from(sequence)),
            actor: actor.to_owned(),
            reason: reason.trim().to_owned(),
            detail: denial.map(|d| format!("denied with {d}")),
        },
    )
    .await?;
    // the ClaimResponse changed (pended again): subscribers hear of it
    crate::subscriptions::pas_event(app, &rec);
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prior_auth::store::Item;

    fn rec(state: State, items: &[ItemState]) -> Record {
        Record {
            id: "r1".into(),
            client_id: "c".into(),
            organization: None,
            claim_system: "s".into(),
            claim_value: "v".into(),
            patient_key: "m|1".into(),
            provider_key: "npi|1".into(),
            urgency: Urgency::Standard,
            state,
            received_ms: 0,
            deadline_ms: 7 * DAY_MS,
            decided_ms: Some(DAY_MS),
            items: items
                .iter()
                .enumerate()
                .map(|(i, s)| Item {
                    sequence: i as u32 + 1,
                    service: "cpt|27447".into(),
                    state: *s,
                    decided_ms: Some(DAY_MS),
                    reviewer: Some("dr".into()),
                    reason: (*s == ItemState::Denied).then(|| "0U".into()),
                    questionnaire: None,
                    auth_number: None,
                    auth_start: None,
                    auth_end: None,
                })
                .collect(),
            request: serde_json::json!({"entry": [{"resource": {"resourceType": "Claim"}}]}),
            response: serde_json::json!({}),
        }
    }

    #[test]
    fn an_extension_moves_the_deadline_once_within_the_limit() {
        let mut r = rec(State::Pended, &[ItemState::Pended]);
        apply_extension(&mut r, 14, "records requested", false, 14).unwrap();
        assert_eq!(r.deadline_ms, 21 * DAY_MS);
        assert_eq!(r.state, State::Pended);
        let mut again = r.clone();
        assert!(apply_extension(&mut again, 1, "x", true, 14).is_err());
        assert!(apply_extension(&mut r.clone(), 15, "x", false, 14).is_err());
        assert!(apply_extension(&mut r.clone(), 0, "x", false, 14).is_err());
        assert!(apply_extension(&mut r.clone(), 3, " ", false, 14).is_err());
        let mut done = rec(State::Approved, &[ItemState::Approved]);
        assert!(apply_extension(&mut done, 3, "x", false, 14).is_err());
        assert_eq!(
            done.deadline_ms,
            7 * DAY_MS,
            "a refused step changes nothing"
        );
    }

    #[test]
    fn an_appeal_pends_a_denied_item_again_with_a_fresh_timeframe() {
        let cfg = PriorAuthConfig::default();
        let mut r = rec(
            State::PartiallyApproved,
            &[ItemState::Approved, ItemState::Denied],
        );
        apply_appeal(&mut r, 2, 10 * DAY_MS, &cfg).unwrap();
        assert_eq!(r.state, State::Pended);
        assert_eq!(r.items[1].state, ItemState::Pended);
        assert_eq!(r.items[1].reason, None);
        assert_eq!(r.items[0].state, ItemState::Approved, "others untouched");
        assert_eq!(r.decided_ms, None);
        assert_eq!(r.deadline_ms, 40 * DAY_MS);
        assert_eq!(r.response["outcome"], "queued");
        // the approved item cannot be appealed, nor a pended request
        let mut p = rec(
            State::PartiallyApproved,
            &[ItemState::Approved, ItemState::Denied],
        );
        assert!(apply_appeal(&mut p, 1, 0, &cfg).is_err());
        assert!(apply_appeal(&mut p, 9, 0, &cfg).is_err());
        let mut pended = rec(State::Pended, &[ItemState::Pended]);
        assert!(apply_appeal(&mut pended, 1, 0, &cfg).is_err());
        let mut approved = rec(State::Approved, &[ItemState::Approved]);
        assert!(apply_appeal(&mut approved, 1, 0, &cfg).is_err());
        // expedited: hours
        let mut e = rec(State::Denied, &[ItemState::Denied]);
        e.urgency = Urgency::Expedited;
        apply_appeal(&mut e, 1, 0, &cfg).unwrap();
        assert_eq!(e.deadline_ms, 72 * 3_600_000);
    }
}
