//! `POST /fhir/Claim/$submit`: validate, adjudicate, store and answer.
//!
//! Invalid input: 400 OperationOutcome, one issue per problem, never a
//! ClaimResponse. Valid input is matched to an earlier request of the same
//! client by Claim identifier: none → a new request; one still pended → an
//! update (re-adjudicated, clock restarted); `Claim.status = cancelled` →
//! a cancellation. A transition the state machine refuses (updating a
//! decided request, cancelling a denied one, cancelling nothing) is a
//! business rejection: 200 with a ClaimResponse carrying `error`.

use serde_json::Value;
use smart_launch::context::AccessContext;

use super::{
    adjudicate::{self, instant},
    config::PriorAuthConfig,
    note, response,
    rules::Rules,
    state::{transition, Event, ItemState, State},
    store::Record,
    timeframe::Urgency,
    validate::Kind,
    Keys,
};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse},
    pipeline::Disclosure,
    AppState,
};

/// Runs `$submit`.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    req: &FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let (bundle, answered, pas) =
        match super::checked_bundle(app, req, "submit", Kind::Request).await? {
            Ok(checked) => checked,
            Err(outcome) => return Ok(outcome),
        };
    let cfg: &PriorAuthConfig = &app.config.prior_auth;
    let rules = Rules::load(cfg).map_err(FhirError::internal)?;
    let keys = Keys::for_version(&bundle, pas);
    let now = crate::audit::auditor::now_ms();
    let created = instant(now);
    let claim = &bundle["entry"][0]["resource"];
    let cancel = pas.is_cancellation(claim);
    // a PAS 2.2 Claim Update names the Claim it updates
    let (match_system, match_value) = pas
        .prior_claim(&bundle)
        .unwrap_or_else(|| (keys.claim_system.clone(), keys.claim_value.clone()));
    let existing = app
        .state
        .pa_by_claim(&match_system, &match_value)
        .await?
        .into_iter()
        .find(|r| r.client_id == caller.client_id);
    let reject = |code: &str, text: &str| {
        let cr = response::rejection(&bundle, &created, code, text);
        let id = uuid::Uuid::new_v4().to_string();
        FhirResponse::ok(pas.submit_answer(&bundle, response::bundle(&bundle, cr, &id, &created)))
    };
    let rec = match (existing, cancel) {
        (None, true) => {
            return Ok(reject(
                "no-request",
                "no prior authorization request with this Claim identifier to cancel",
            ))
        }
        (Some(mut rec), true) => match transition(rec.state, Event::Cancel) {
            Err(r) => return Ok(reject("refused", r.reason)),
            Ok(to) => {
                for i in &mut rec.items {
                    i.state = ItemState::Cancelled;
                }
                rec.state = to;
                rec.decided_ms = Some(now);
                rec
            }
        },
        (Some(mut rec), false) => {
            let items = adjudicate::adjudicate(
                &rules,
                &bundle,
                &answered,
                now,
                &cfg.auth_number_prefix,
                &rec.id,
            );
            let to = State::of_items(items.iter().map(|i| i.state));
            match transition(rec.state, Event::Update(to)) {
                Err(r) => return Ok(reject("refused", r.reason)),
                Ok(to) => {
                    fill(&mut rec, app, caller, &bundle, &keys, now);
                    rec.items = items;
                    rec.state = to;
                    rec.decided_ms = to.is_final().then_some(now);
                    rec
                }
            }
        }
        (None, false) => {
            let id = uuid::Uuid::new_v4().to_string();
            let items = adjudicate::adjudicate(
                &rules,
                &bundle,
                &answered,
                now,
                &cfg.auth_number_prefix,
                &id,
            );
            let state = State::of_items(items.iter().map(|i| i.state));
            let mut rec = Record {
                id,
                client_id: caller.client_id.clone(),
                organization: None,
                claim_system: keys.claim_system.clone(),
                claim_value: keys.claim_value.clone(),
                patient_key: String::new(),
                provider_key: String::new(),
                urgency: Urgency::Standard,
                state,
                received_ms: now,
                deadline_ms: now,
                decided_ms: state.is_final().then_some(now),
                items,
                request: Value::Null,
                response: Value::Null,
            };
            fill(&mut rec, app, caller, &bundle, &keys, now);
            rec
        }
    };
    let mut rec = rec;
    rec.response = response::claim_response(&rec, &created);
    app.state.pa_save(&rec, now).await.map_err(|e| {
        if super::store::is_duplicate(&e) {
            FhirError::conflict(
                "a request with this Claim identifier was stored by a concurrent $submit; send it again",
            )
        } else {
            FhirError::from(e)
        }
    })?;
    if rec.state == State::Pended {
        crate::subscriptions::pas_event(app, &rec);
    }
    note(
        disclosure,
        &rec.request,
        &format!("ClaimResponse/{}", rec.id),
    );
    let bundle_id = uuid::Uuid::new_v4().to_string();
    Ok(FhirResponse::ok(pas.submit_answer(
        &rec.request,
        response::bundle(&rec.request, rec.response.clone(), &bundle_id, &created),
    )))
}

/// Takes over what a (re)submission says: request, keys, organization,
/// urgency and a restarted clock.
fn fill(
    rec: &mut Record,
    app: &AppState,
    caller: &AccessContext,
    bundle: &Value,
    keys: &Keys,
    now: i64,
) {
    let urgency = Urgency::of_claim(&bundle["entry"][0]["resource"]);
    rec.organization = app.organization_of(caller);
    rec.patient_key = keys.patient_key.clone();
    rec.provider_key = keys.provider_key.clone();
    rec.urgency = urgency;
    rec.received_ms = now;
    rec.deadline_ms = urgency.deadline_ms(now);
    rec.request = bundle.clone();
}
