//! `POST /fhir/Group/$bulk-member-match` (PDex 2.x Payer-to-Payer, bulk).
//!
//! Input `Parameters`: one or more `MemberBundle` parts, each with the
//! `$member-match` parts as `part` (`MemberPatient`, `CoverageToMatch`,
//! `CoverageToLink` optional, `Consent`); a malformed bundle is 400 naming
//! it (`MemberBundle[i].Consent`).
//!
//! Answered synchronously (PDex prefers the asynchronous pattern; a
//! synchronous answer is what the facade does today, documented here and
//! in the README): each member is matched as `$member-match` does, then
//! three Groups are created in the upstream and returned in a `Parameters`:
//! - `MatchedMembers` (always): one member per unique match with a Consent
//!   that can be honoured, `entity` the member's Patient and the
//!   `MemberIdentifier` as an extension-free `entity.identifier`; the
//!   Consent is stored for the member.
//! - `NonMatchedMembers` (when any): no match or several; the submitted
//!   Patients are contained and referenced (`#nm-<i>`).
//! - `ConsentConstrainedMembers` (when any): matched but the Consent cannot
//!   be honoured; the submitted Patients are contained (`#cc-<i>`), our
//!   member id is not revealed.
//!
//! Each Group's `managingEntity` names the requesting client
//! ([`groups::owner_reference`]), so only that client sees it. Each member
//! that did not match counts as one failed match ([`throttle`]).

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{consent, groups, matching, member_match, params, throttle};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::Disclosure,
    upstream::RequestContext,
    AppState,
};

/// The PDex member-match Group code system.
pub const GROUP_CODES: &str =
    "http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMultiMemberMatchResultCS";

/// Most members one request may carry.
pub const MAX_MEMBERS: usize = 500;

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
    let parts = params::parameters(req.body.as_ref(), "bulk-member-match")?;
    let bundles: Vec<&Value> = params::named(&parts, "MemberBundle").collect();
    if bundles.is_empty() {
        return Err(FhirError::bad_request("parameter MemberBundle is missing"));
    }
    if bundles.len() > MAX_MEMBERS {
        return Err(FhirError::bad_request(format!(
            "at most {MAX_MEMBERS} MemberBundle parts per request"
        )));
    }
    let mut inputs = Vec::new();
    for (i, b) in bundles.iter().enumerate() {
        let sub = b["part"].as_array().cloned().unwrap_or_default();
        inputs.push(member_match::input(&sub, &format!("MemberBundle[{i}]."))?);
    }
    let (mut matched, mut unmatched, mut constrained) = (Vec::new(), Vec::new(), Vec::new());
    let (mut nm_contained, mut cc_contained) = (Vec::new(), Vec::new());
    for (i, input) in inputs.iter().enumerate() {
        match matching::find(app, ctx, &input.patient, &input.coverage).await? {
            matching::Found::One { patient, .. } => {
                let pid = patient["id"].as_str().unwrap_or_default().to_owned();
                if consent::honourable(&input.consent).is_err() {
                    constrained.push(contained_member(&mut cc_contained, "cc", i, &input.patient));
                    continue;
                }
                consent::store(app, ctx, &input.consent, &pid).await?;
                let reference = format!("Patient/{pid}");
                disclosure
                    .patient(&reference)
                    .released
                    .push(reference.clone());
                matched.push(json!({
                    "entity": {
                        "reference": reference,
                        "identifier": member_match::member_identifier(app, &pid)
                    }
                }));
            }
            matching::Found::None | matching::Found::Several(_) => {
                throttle::fail(app, client, &ctx.request_id).await?;
                unmatched.push(contained_member(&mut nm_contained, "nm", i, &input.patient));
            }
        }
    }
    let mut out = vec![json!({
        "name": "MatchedMembers",
        "resource": create(app, ctx, client, "match", "Matched members", matched, Vec::new()).await?
    })];
    if !unmatched.is_empty() {
        out.push(json!({
            "name": "NonMatchedMembers",
            "resource": create(app, ctx, client, "nomatch", "Non-matched members", unmatched, nm_contained).await?
        }));
    }
    if !constrained.is_empty() {
        out.push(json!({
            "name": "ConsentConstrainedMembers",
            "resource": create(app, ctx, client, "consentconstraint", "Consent-constrained members", constrained, cc_contained).await?
        }));
    }
    Ok(FhirResponse::ok(params::build(out)))
}

/// A member entry pointing at the submitted Patient, contained as `#<tag>-<i>`.
fn contained_member(contained: &mut Vec<Value>, tag: &str, i: usize, patient: &Value) -> Value {
    let local = format!("{tag}-{i}");
    let mut p = patient.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("meta");
        o.insert("id".into(), json!(local));
    }
    contained.push(p);
    json!({"entity": {"reference": format!("#{local}")}})
}

/// Creates one result Group in the upstream (as the system) and returns it.
async fn create(
    app: &AppState,
    ctx: &RequestContext,
    client: &str,
    code: &str,
    name: &str,
    members: Vec<Value>,
    contained: Vec<Value>,
) -> FhirResult<Value> {
    let mut g = json!({
        "resourceType": "Group",
        "type": "person",
        "actual": true,
        "code": {"coding": [{"system": GROUP_CODES, "code": code}]},
        "name": name,
        "managingEntity": groups::owner_reference(client),
        "quantity": members.len(),
        "characteristic": [{
            "code": {"coding": [{"system": GROUP_CODES, "code": code}]},
            "valueBoolean": true,
            "exclude": false
        }]
    });
    if !members.is_empty() {
        g["member"] = Value::Array(members);
    }
    if !contained.is_empty() {
        g["contained"] = Value::Array(contained);
    }
    let mut req = FhirRequest::new(Interaction::Create);
    req.resource_type = Some("Group".into());
    req.body = Some(g);
    app.upstream
        .execute(&req, ctx)
        .await?
        .body
        .ok_or_else(|| FhirError::internal("the upstream stored the Group without a body"))
}
