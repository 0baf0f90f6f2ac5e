//! `fhirgate consent explain` and `GET /admin/api/consent/explain`: the
//! decision one caller would get on one resource, and the provision or
//! policy rule that produced it, computed by the same judge the pipeline
//! uses (nothing is released or audited as a disclosure).

use serde::Deserialize;
use serde_json::{json, Value};
use smart_launch::{context::AccessContext, scope::ScopeSet};

use super::judge::{patients_of, Session};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, Interaction, Reference},
    AppState,
};

/// Who asks, about what.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExplainInput {
    /// The resource, `Type/id`.
    #[serde(default)]
    pub resource: String,
    /// OAuth client id of the caller.
    #[serde(default)]
    pub client: String,
    /// fhirUser of the caller (`Practitioner/dr`), if any.
    #[serde(default)]
    pub user: Option<String>,
    /// Role (`clinician`, `patient`, `admin`).
    #[serde(default)]
    pub role: Option<String>,
    /// Purpose of use (v3-ActReason).
    #[serde(default)]
    pub purpose: Option<String>,
    /// Organization the caller acts for (`Organization/x`), as a token
    /// would carry it; absent: the client's `[payer] provider_clients`
    /// mapping, if any.
    #[serde(default)]
    pub organization: Option<String>,
    /// Break-the-glass reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Expected patient (`Patient/x` or `x`): checked against the resource.
    #[serde(default)]
    pub patient: Option<String>,
}

/// The decision as JSON: `effect`, `basis`, `consent`, `patients`,
/// `resource`, and the `purpose` and `organization` the judge used.
pub async fn explain(app: &AppState, input: &ExplainInput) -> FhirResult<Value> {
    let r = Reference::parse(&input.resource, None).ok_or_else(|| {
        FhirError::bad_request(format!("'{}' is not a Type/id reference", input.resource))
    })?;
    let ctx = app.request_context("consent-explain");
    let mut read = FhirRequest::new(Interaction::Read);
    read.resource_type = Some(r.resource_type.clone());
    read.id = Some(r.id.clone());
    let body = app
        .upstream
        .execute(&read, &ctx)
        .await?
        .body
        .ok_or_else(|| FhirError::not_found(format!("{} is not known", input.resource)))?;
    let patients = patients_of(&body, &ctx.base);
    if let Some(p) = &input.patient {
        let want = if p.starts_with("Patient/") {
            p.clone()
        } else {
            format!("Patient/{p}")
        };
        if !patients.contains(&want) {
            return Err(FhirError::bad_request(format!(
                "{} is not about {want} (it is about: {})",
                input.resource,
                if patients.is_empty() {
                    "no patient".to_owned()
                } else {
                    patients.join(", ")
                }
            )));
        }
    }
    let caller = AccessContext {
        client_id: input.client.clone(),
        scopes: ScopeSet::default(),
        patient: None,
        encounter: None,
        fhir_user: input.user.clone(),
        role: input.role.clone(),
        jti: String::new(),
        expires_at: 0,
        purpose_of_use: input.purpose.clone(),
        organization: input.organization.clone().filter(|o| !o.is_empty()),
        assurance: Default::default(),
    };
    let mut req = FhirRequest::new(Interaction::Read);
    req.break_glass_reason = input.reason.clone();
    if app.consent.is_exempt(&input.client) {
        return Ok(json!({
            "resource": input.resource, "effect": "permit",
            "basis": format!("client {} is exempt from consent ([consent] exempt_clients)", input.client),
            "patients": patients,
        }));
    }
    let mut sess = Session::new(app, &ctx, &caller, &req);
    sess.prepare(&[&body]).await?;
    let j = sess.judge(&body);
    Ok(json!({
        "resource": input.resource,
        "effect": j.effect,
        "basis": j.basis,
        "consent": j.consent,
        "patients": j.patients,
        "purpose": sess.purpose,
        "organization": sess.requester.organization,
        "redacted_or_stripped": j.changed,
    }))
}
