//! Consents of the payer APIs.
//!
//! - Payer-to-Payer: the HRex Consent a requesting payer sends with a match
//!   ([`honourable`]): it must be `active`, name the HRex policy `regular`
//!   (share everything but sensitive data) or `sensitive` (share all), and
//!   its `provision.period` must cover today. The facade honours both
//!   policies (sensitive data is segmented by the consent engine's labels).
//!   A honoured Consent is stored in the upstream for the matched member
//!   ([`store`]) and recorded in the consent index, so the consent engine
//!   and the portal see it.
//! - Provider Access: a member opts out ([`opted_out`]) with an active
//!   Consent whose `policyRule` carries [`OPT_OUT_CODE`] of
//!   [`OPT_OUT_SYSTEM`], or whose root provision is a whole-record `deny`
//!   (no class, code, data, label or data period) that names no actor or
//!   names the provider organization.

use serde_json::{json, Value};

use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, Interaction},
    upstream::RequestContext,
    AppState,
};

/// HRex Consent policy: share all but sensitive data.
pub const POLICY_REGULAR: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#regular";
/// HRex Consent policy: share all data, sensitive included.
pub const POLICY_SENSITIVE: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#sensitive";
/// Code system of the Provider Access opt-out policy rule.
pub const OPT_OUT_SYSTEM: &str = "https://fhirgate.dev/CodeSystem/payer-consent";
/// The Provider Access opt-out code.
pub const OPT_OUT_CODE: &str = "provider-access-opt-out";

/// Today as `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Whether a FHIR date/dateTime `period` covers `day` (`YYYY-MM-DD`),
/// compared at day precision; absent bounds are open.
pub fn covers(period: &Value, day: &str) -> bool {
    let bound = |k: &str| {
        period[k]
            .as_str()
            .map(|s| s.get(..10).unwrap_or(s).to_owned())
    };
    bound("start").is_none_or(|s| s.as_str() <= day)
        && bound("end").is_none_or(|e| day <= e.as_str())
}

/// Why the HRex Consent cannot be honoured, if it cannot.
pub fn honourable(consent: &Value) -> Result<(), String> {
    if consent["status"] != "active" {
        return Err(format!(
            "Consent.status must be active, not {}",
            consent["status"].as_str().unwrap_or("absent")
        ));
    }
    let policies: Vec<&str> = consent["policy"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["uri"].as_str())
        .collect();
    if !policies
        .iter()
        .any(|p| *p == POLICY_REGULAR || *p == POLICY_SENSITIVE)
    {
        return Err(
            "Consent.policy.uri must be the HRex regular or sensitive data policy".to_owned(),
        );
    }
    if !covers(&consent["provision"]["period"], &today()) {
        return Err("Consent.provision.period does not cover today".to_owned());
    }
    Ok(())
}

/// Stores the requester's Consent for the matched member (its `patient`
/// pointed at `Patient/<id>`) in the upstream, records it in the consent
/// index and returns the stored resource.
pub async fn store(
    app: &AppState,
    ctx: &RequestContext,
    consent: &Value,
    patient_id: &str,
) -> FhirResult<Value> {
    store_as(app, ctx, consent, patient_id, None).await
}

/// [`store`] under a chosen id (an update that creates), so a re-run of
/// the same asynchronous match stores the Consent once.
pub async fn store_as(
    app: &AppState,
    ctx: &RequestContext,
    consent: &Value,
    patient_id: &str,
    id: Option<&str>,
) -> FhirResult<Value> {
    let mut body = consent.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("id");
        if let Some(id) = id {
            o.insert("id".into(), json!(id));
        }
        o.remove("meta");
        o.insert(
            "patient".into(),
            json!({"reference": format!("Patient/{patient_id}")}),
        );
        if !o.contains_key("scope") {
            o.insert(
                "scope".into(),
                json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]}),
            );
        }
    }
    let mut req = FhirRequest::new(if id.is_some() {
        Interaction::Update
    } else {
        Interaction::Create
    });
    req.resource_type = Some("Consent".into());
    req.id = id.map(str::to_owned);
    req.body = Some(body);
    let resp = app.upstream.execute(&req, ctx).await?;
    let stored = resp
        .body
        .ok_or_else(|| FhirError::internal("the upstream stored the Consent without a body"))?;
    app.consent
        .index
        .record(&stored)
        .await
        .map_err(FhirError::internal)?;
    Ok(stored)
}

/// Whether the patient opted out of Provider Access for `org`
/// (`Organization/<id>`), by the Consents in the consent index.
pub async fn opted_out(app: &AppState, patient: &str, org: &str) -> FhirResult<bool> {
    let consents = app
        .consent
        .index
        .list(patient)
        .await
        .map_err(FhirError::internal)?;
    let day = today();
    Ok(consents.iter().any(|c| {
        c["status"] == "active"
            && covers(&c["provision"]["period"], &day)
            && (has_opt_out_rule(c) || denies_org(c, org))
    }))
}

fn has_opt_out_rule(c: &Value) -> bool {
    c["policyRule"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|k| k["system"] == OPT_OUT_SYSTEM && k["code"] == OPT_OUT_CODE)
}

fn denies_org(c: &Value, org: &str) -> bool {
    let p = &c["provision"];
    // only a whole-record deny is an opt-out (not one of some data classes)
    let partial = ["class", "code", "data", "securityLabel", "dataPeriod"]
        .iter()
        .any(|k| !p[*k].is_null());
    if p["type"] != "deny" || partial {
        return false;
    }
    let actors: Vec<&str> = p["actor"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["reference"]["reference"].as_str())
        .collect();
    actors.is_empty()
        || actors
            .iter()
            .any(|a| *a == org || a.ends_with(&format!("/{org}")))
}
