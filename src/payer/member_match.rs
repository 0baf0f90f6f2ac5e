//! `POST /fhir/Patient/$member-match` (Da Vinci HRex 1.1, as PDex 2.x uses
//! it for Payer-to-Payer).
//!
//! Input `Parameters`: `MemberPatient` (Patient, with a family name and a
//! birth date), `CoverageToMatch` (Coverage), `CoverageToLink` (Coverage,
//! optional) and `Consent` (Consent; PDex requires it). A missing part, a
//! repeated one, or one holding another type is 400 with an
//! OperationOutcome naming the part.
//!
//! Exactly one member ([`matching`](super::matching)) and a Consent that
//! can be honoured ([`consent::honourable`]) → 200 `Parameters` with
//! `MemberIdentifier` (Identifier typed UMB of v2-0203, system
//! `[payer] member_identifier_system`, value the member's Patient id) and
//! `MemberId` (Reference to the Patient); the Consent is stored for the
//! member. No match, several, or a Consent that cannot be honoured → 422
//! with an OperationOutcome. No match and several count as failed matches
//! for the brute-force limit ([`throttle`]); a client over the limit gets
//! 429 before anything is matched. `CoverageToLink` is validated but not
//! stored (the facade keeps no link between the two plans' coverages).

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{consent, matching, params, throttle};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse},
    pipeline::Disclosure,
    upstream::RequestContext,
    AppState,
};

/// The v2-0203 code system of the UMB identifier type.
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// The parts of one member-match request.
#[derive(Debug, Clone)]
pub struct MatchInput {
    /// `MemberPatient`.
    pub patient: Value,
    /// `CoverageToMatch`.
    pub coverage: Value,
    /// `CoverageToLink`, if sent.
    pub link: Option<Value>,
    /// `Consent`.
    pub consent: Value,
}

/// Reads and validates the parts (`prefix` names them in errors, e.g.
/// `MemberBundle[2].`).
pub fn input(parts: &[Value], prefix: &str) -> FhirResult<MatchInput> {
    let name = |n: &str| format!("{prefix}{n}");
    let get = |n: &str, t: &str| {
        params::resource(parts, n, t).map_err(|mut e| {
            e.message = e.message.replacen(n, &name(n), 1);
            e
        })
    };
    let patient = get("MemberPatient", "Patient")?;
    matching::validate_patient(&patient, &name("MemberPatient"))?;
    let coverage = get("CoverageToMatch", "Coverage")?;
    let link =
        params::optional_resource(parts, "CoverageToLink", "Coverage").map_err(|mut e| {
            e.message = e
                .message
                .replacen("CoverageToLink", &name("CoverageToLink"), 1);
            e
        })?;
    let consent = get("Consent", "Consent")?;
    Ok(MatchInput {
        patient,
        coverage,
        link,
        consent,
    })
}

/// The `MemberIdentifier` of a member.
pub fn member_identifier(app: &AppState, patient_id: &str) -> Value {
    json!({
        "type": {"coding": [{"system": V2_0203, "code": "UMB", "display": "Member Number"}]},
        "system": app.config.payer.member_identifier_system,
        "value": patient_id
    })
}

/// Runs the operation.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    req: &FhirRequest,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let client = caller.client_id.as_str();
    throttle::check(app, client).await?;
    let parts = params::parameters(req.body.as_ref(), "member-match")?;
    let input = input(&parts, "")?;
    let (patient, _coverage) =
        match matching::find(app, ctx, &input.patient, &input.coverage).await? {
            matching::Found::One { patient, coverage } => (patient, coverage),
            matching::Found::None => {
                throttle::fail(app, client, &ctx.request_id).await?;
                return Err(FhirError::unprocessable(
                    "no member matches the MemberPatient and CoverageToMatch given",
                ));
            }
            matching::Found::Several(_) => {
                throttle::fail(app, client, &ctx.request_id).await?;
                return Err(FhirError::unprocessable(
                    "more than one member matches; no unique match",
                ));
            }
        };
    let pid = patient["id"].as_str().unwrap_or_default().to_owned();
    if let Err(why) = consent::honourable(&input.consent) {
        return Err(FhirError::unprocessable(format!(
            "the Consent cannot be honoured: {why}"
        )));
    }
    let stored = consent::store(app, ctx, &input.consent, &pid).await?;
    let reference = format!("Patient/{pid}");
    let touch = disclosure.patient(&reference);
    touch.released.push(reference.clone());
    if let Some(cid) = stored["id"].as_str() {
        touch.released.push(format!("Consent/{cid}"));
    }
    Ok(FhirResponse::ok(params::build(vec![
        json!({"name": "MemberIdentifier", "valueIdentifier": member_identifier(app, &pid)}),
        json!({"name": "MemberId", "valueReference": {"reference": reference}}),
    ])))
}
