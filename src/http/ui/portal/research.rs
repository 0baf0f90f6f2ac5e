//! The portal's research choice (issue 12 item 3): whether the patient's
//! data enters de-identified exports for research and other secondary use.
//!
//! - The page says where the patient stands now: an active `research`
//!   Consent in force decides (deny overrides permit, as the export's gate,
//!   `deid::export::admits`), else the deployment's `[deid]
//!   research_consent` (opt-out: included; opt-in: not included).
//! - `POST /portal/research` (`choice=in|out`): every active research
//!   Consent of the patient is set `inactive` (`If-Match` its version), then
//!   one new research Consent is created (root provision `permit` or
//!   `deny`, `policyRule` OPTIN/OPTOUT), all through the pipeline as the
//!   patient, audited, with a receipt for the new Consent; back to
//!   `/portal?research=in|out`.

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use serde_json::{json, Value};

use super::{
    as_patient, created_id, inactivate, issue_receipt, note, noted, require_patient, see_other,
    session,
    vocab::{ACT_CODE, CONSENT_SCOPE, LOINC},
    Fields, UiError, PATH,
};
use crate::{
    consent::{index::PatientConsents, parse::parse_consent},
    deid::{config::ResearchPolicy, export::admits},
    fhir::{is_valid_id, FhirRequest, Interaction},
    http::ui::request_id,
    AppState,
};

/// Whether a stored Consent is a research Consent.
pub fn is_research(c: &Value) -> bool {
    c["scope"]["coding"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|x| x["code"] == "research"))
}

/// The research section of the page, from the patient's stored Consents.
pub fn view(app: &AppState, stored: &[Value]) -> ui::ResearchChoice {
    let policy = app.config.deid.research_consent;
    let research: Vec<_> = stored
        .iter()
        .filter(|c| is_research(c))
        .filter_map(|c| parse_consent(c).ok())
        .collect();
    let unreadable = stored
        .iter()
        .filter(|c| is_research(c) && c["status"] == "active")
        .count()
        > research
            .iter()
            .filter(|m| m.status == crate::consent::model::ConsentStatus::Active)
            .count();
    let chosen = research
        .iter()
        .any(|m| m.status == crate::consent::model::ConsentStatus::Active);
    let pc = PatientConsents {
        patient: String::new(),
        generation: 0,
        consents: research,
        unreadable: Vec::new(),
    };
    let included = !unreadable && admits(&pc, policy, crate::oauth::now());
    let status = match included {
        true => "Your data may be included in de-identified data sets for research.",
        false => "Your data is kept out of de-identified data sets for research.",
    };
    let why = match (chosen, policy) {
        (true, _) => "This is your choice.",
        (false, ResearchPolicy::OptOut) => {
            "You have not chosen: here, data is included unless you say no."
        }
        (false, ResearchPolicy::OptIn) => {
            "You have not chosen: here, data is only included if you say yes."
        }
    };
    ui::ResearchChoice {
        included,
        status: status.to_owned(),
        explained: format!(
            "{why} De-identified means your name, contact details, identifiers, exact dates, \
             street and notes are removed first, and only approved research or data-product \
             clients may ask for it. Your other choices still apply to it."
        ),
    }
}

/// The Consent a choice creates.
fn research_consent(patient: &str, include: bool, now: &str) -> Value {
    let (kind, rule, rule_display, words) = match include {
        true => (
            "permit",
            "OPTIN",
            "opt-in",
            "My data may be included in de-identified data sets for research.",
        ),
        false => (
            "deny",
            "OPTOUT",
            "opt-out",
            "My data must be kept out of de-identified data sets for research.",
        ),
    };
    json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "research", "display": "Research"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": patient},
        "dateTime": now,
        "performer": [{"reference": patient}],
        "policyRule": {"coding": [{"system": ACT_CODE, "code": rule, "display": rule_display}]},
        "provision": {"type": kind},
        "text": {"status": "generated",
            "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{words}</div>")},
    })
}

/// `POST /portal/research`.
pub async fn research_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    let f = Fields::parse(&body);
    signed.check_csrf(f.get("csrf"))?;
    if let Err(to_stepup) = crate::http::ui::mfa::require_stepup(&app, &signed, PATH).await? {
        return Ok(to_stepup);
    }
    let patient_id = require_patient(&signed)?;
    if let Err(page) = crate::http::ui::assurance::gate_page(&app, &signed, PATH).await? {
        return Ok(page);
    }
    let include = match f.get("choice") {
        Some("in") => true,
        Some("out") => false,
        _ => {
            return Err(UiError::BadRequest(
                "Choose whether your data may be included in research.".into(),
            ))
        }
    };
    let rid = request_id(&headers);
    let patient_ref = format!("Patient/{patient_id}");
    // the earlier choices end first: one research choice is in force
    let stored = app
        .consent
        .index
        .list(&patient_ref)
        .await
        .map_err(UiError::internal)?;
    for old in stored
        .iter()
        .filter(|c| is_research(c) && c["status"] == "active")
    {
        let Some(id) = old["id"].as_str().filter(|id| is_valid_id(id)) else {
            continue;
        };
        let update = inactivate(id, old);
        match as_patient(&app, &signed, &patient_id, &rid, update)
            .await?
            .0
        {
            Ok(_) => {}
            Err(e) if matches!(e.status.as_u16(), 409 | 412) => {
                return Err(UiError::BadRequest(
                    "Your research choice changed while you were looking at it. Go back, \
                     reload the page and try again."
                        .into(),
                ))
            }
            Err(e) => return Err(UiError::internal(e)),
        }
    }
    let mut create = FhirRequest::new(Interaction::Create);
    create.resource_type = Some("Consent".into());
    create.body = Some(research_consent(
        &patient_ref,
        include,
        &crate::fhir::now_instant(),
    ));
    let (result, seq) = as_patient(&app, &signed, &patient_id, &rid, create).await?;
    let resp = result.map_err(UiError::internal)?;
    let id = created_id(&app, &resp)?;
    let version = resp
        .body
        .as_ref()
        .and_then(|b| b["meta"]["versionId"].as_str());
    let choice = if include { "in" } else { "out" };
    tracing::info!(consent = %id, patient = %patient_ref, choice, "research choice in the portal");
    let rec = issue_receipt(&app, &signed, "granted", &patient_ref, &id, version, seq).await?;
    let res = see_other(&format!("{PATH}?research={choice}{rec}"))?;
    Ok(noted(
        res,
        note(
            &signed,
            &patient_id,
            format!("research choice {choice} Consent/{id}"),
        ),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_choice_is_a_research_consent_the_gate_reads() {
        for (include, policy) in [
            (true, ResearchPolicy::OptIn),
            (false, ResearchPolicy::OptOut),
        ] {
            let c = research_consent("Patient/p1", include, "2026-11-23T00:00:00Z");
            assert!(is_research(&c));
            let m = parse_consent(&c).unwrap();
            let pc = PatientConsents {
                patient: "Patient/p1".into(),
                generation: 1,
                consents: vec![m],
                unreadable: Vec::new(),
            };
            assert_eq!(admits(&pc, policy, crate::oauth::now()), include);
        }
    }
}
