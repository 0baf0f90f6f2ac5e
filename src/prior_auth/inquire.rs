//! `POST /fhir/Claim/$inquire`: the current ClaimResponse of an earlier
//! `$submit`, matched by Claim identifier, member identifier and provider
//! identifier (PAS Inquiry Request Bundle). Only the submitting client, or
//! a client of the same organization, may see it; for anyone else there
//! is no match (404), never another's data.

use smart_launch::context::AccessContext;

use super::{adjudicate::instant, note, response, validate::Kind, Keys};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse},
    pipeline::Disclosure,
    AppState,
};

/// Runs `$inquire`.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    req: &FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let (bundle, _, pas) = match super::checked_bundle(app, req, "inquire", Kind::Inquiry).await? {
        Ok(checked) => checked,
        Err(outcome) => return Ok(outcome),
    };
    let keys = Keys::for_version(&bundle, pas);
    let org = app.organization_of(caller);
    let found = app
        .state
        .pa_by_claim(&keys.claim_system, &keys.claim_value)
        .await?
        .into_iter()
        .find(|r| {
            let mine = r.client_id == caller.client_id || (org.is_some() && r.organization == org);
            mine && r.patient_key == keys.patient_key && r.provider_key == keys.provider_key
        });
    let Some(rec) = found else {
        return Err(FhirError::not_found(
            "no prior authorization request of yours matches the inquiry",
        ));
    };
    note(
        disclosure,
        &rec.request,
        &format!("ClaimResponse/{}", rec.id),
    );
    let now = instant(crate::audit::auditor::now_ms());
    let id = uuid::Uuid::new_v4().to_string();
    Ok(FhirResponse::ok(pas.inquiry_answer(
        &rec.request,
        response::bundle(&rec.request, rec.response.clone(), &id, &now),
    )))
}
