//! Da Vinci Documentation Templates and Rules (DTR 2.0.1, issue 7 item 5),
//! the payer side, answered by the facade itself in the route stage
//! (`pipeline::handle_as` calls [`Operation::of`] and [`run`]):
//!
//! - `POST /fhir/Questionnaire/$questionnaire-package` and
//!   `POST /fhir/$questionnaire-package`: the Questionnaires a coverage and
//!   its orders need ([`select`]: named, or derived from the payer rules'
//!   `needs-doc` entries), each packaged with its CQL Libraries, expanded
//!   ValueSets and a draft QuestionnaireResponse ([`package`]).
//! - `POST /fhir/Questionnaire/$next-question`: the next question(s) of an
//!   adaptive form ([`next_question`], rule tables in [`adaptive`]).
//!
//! The content (Questionnaires, Libraries with CQL and ELM, ValueSets,
//! adaptive rule tables) is data under `content/`, loaded by [`catalog`].
//! Completed QuestionnaireResponses are stored through the ordinary FHIR
//! write path; PAS reads them back (`prior_auth::documentation`).
//!
//! Authorization: a scope permitting read on Questionnaire, unconstrained,
//! in any context (`patient/Questionnaire.r`, `user/Questionnaire.rs`,
//! `system/*.r`, …), else 403; a caller holding it only in the `patient/`
//! context may ask only about its launch patient (the coverage's
//! beneficiary, the response's subject). Every call is audited through the
//! request's [`Disclosure`].

use serde_json::Value;
use smart_launch::{
    context::AccessContext,
    scope::{Op, ScopeContext},
};

use crate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::{authorize::forbidden, Disclosure},
    AppState,
};

pub mod adaptive;
pub mod catalog;
pub mod next_question;
pub mod package;
pub mod params;
pub mod select;

const ADAPTIVE_EXT: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive";

/// The operations this module answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `$questionnaire-package` (type or system level).
    QuestionnairePackage,
    /// `Questionnaire/$next-question`.
    NextQuestion,
}

impl Operation {
    /// The DTR operation a request asks for, if any.
    pub fn of(req: &FhirRequest) -> Option<Self> {
        if req.interaction != Interaction::Operation
            || req.compartment.is_some()
            || req.id.is_some()
        {
            return None;
        }
        let op = req.operation.as_deref()?.trim_start_matches('$');
        match (req.resource_type.as_deref(), op) {
            (Some("Questionnaire") | None, "questionnaire-package") => {
                Some(Self::QuestionnairePackage)
            }
            (Some("Questionnaire"), "next-question") => Some(Self::NextQuestion),
            _ => None,
        }
    }
}

/// Runs a DTR operation for `caller`.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    op: Operation,
    req: FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    require_read(caller)?;
    match op {
        Operation::QuestionnairePackage => package::run(app, caller, &req, disclosure).await,
        Operation::NextQuestion => next_question::run(caller, &req, disclosure).await,
    }
}

/// The contexts in which `caller` may read Questionnaires (unconstrained).
fn read_contexts(caller: &AccessContext) -> Vec<ScopeContext> {
    caller
        .scopes
        .grants("Questionnaire", Op::Read)
        .into_iter()
        .filter(|g| g.constraints.is_empty())
        .map(|g| g.context)
        .collect()
}

/// 403 unless the token permits reading Questionnaires.
pub fn require_read(caller: &AccessContext) -> FhirResult<()> {
    if read_contexts(caller).is_empty() {
        return Err(forbidden(
            "DTR operations need a scope permitting read on Questionnaire \
             (patient/, user/ or system/Questionnaire.r or .rs)",
        ));
    }
    Ok(())
}

/// 403 when `caller` reads Questionnaires only in the `patient/` context
/// and `subject` is not its launch patient.
pub fn check_patient(caller: &AccessContext, subject: Option<&str>) -> FhirResult<()> {
    let contexts = read_contexts(caller);
    if contexts.iter().any(|c| *c != ScopeContext::Patient) {
        return Ok(());
    }
    let own = caller.patient.as_deref().map(|p| format!("Patient/{p}"));
    match (own, subject) {
        (Some(own), Some(s)) if own == s => Ok(()),
        _ => Err(forbidden(
            "with patient/ scopes, DTR documentation can only be about the patient in context \
             (Coverage.beneficiary / QuestionnaireResponse.subject)",
        )),
    }
}

/// Whether a Questionnaire is an SDC adaptive form.
pub fn is_adaptive(q: &Value) -> bool {
    q["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["url"] == ADAPTIVE_EXT && e["valueBoolean"] != false)
}

/// Records what a DTR answer released for the audit stage: under the
/// patient it is about (a local `Patient/id` reference), else as about no
/// patient.
pub fn note(disclosure: &mut Disclosure, subject: Option<&str>, released: Vec<String>) {
    let patient = subject.filter(|s| {
        s.strip_prefix("Patient/")
            .is_some_and(crate::fhir::types::is_valid_id)
    });
    match patient {
        Some(p) => disclosure.patient(p).released.extend(released),
        None => disclosure.other.extend(released),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::Method;

    fn ctx(scope: &str, patient: Option<&str>) -> AccessContext {
        AccessContext {
            client_id: "c".into(),
            scopes: smart_launch::scope::ScopeSet::parse(scope).unwrap(),
            patient: patient.map(str::to_owned),
            encounter: None,
            fhir_user: None,
            role: None,
            jti: "j".into(),
            expires_at: 0,
            purpose_of_use: None,
            organization: None,
            assurance: Default::default(),
        }
    }

    #[test]
    fn operations_are_recognised_by_type_and_name() {
        let of = |segs: &[&str]| Operation::of(&FhirRequest::route(&Method::POST, segs).unwrap());
        assert_eq!(
            of(&["Questionnaire", "$questionnaire-package"]),
            Some(Operation::QuestionnairePackage)
        );
        assert_eq!(
            of(&["$questionnaire-package"]),
            Some(Operation::QuestionnairePackage)
        );
        assert_eq!(
            of(&["Questionnaire", "$next-question"]),
            Some(Operation::NextQuestion)
        );
        assert_eq!(of(&["Claim", "$questionnaire-package"]), None);
        assert_eq!(of(&["Questionnaire", "q1", "$next-question"]), None);
    }

    #[test]
    fn reading_questionnaires_is_required_in_some_context() {
        for ok in [
            "patient/Questionnaire.r",
            "user/Questionnaire.rs",
            "system/*.read",
        ] {
            assert!(require_read(&ctx(ok, Some("p"))).is_ok(), "{ok}");
        }
        for no in [
            "patient/Observation.rs",
            "system/Questionnaire.c",
            "user/Questionnaire.rs?url=http://x",
        ] {
            assert_eq!(
                require_read(&ctx(no, None)).unwrap_err().status.as_u16(),
                403,
                "{no}"
            );
        }
    }

    #[test]
    fn patient_scopes_reach_only_the_launch_patient() {
        let c = ctx("patient/Questionnaire.r", Some("p1"));
        assert!(check_patient(&c, Some("Patient/p1")).is_ok());
        assert!(check_patient(&c, Some("Patient/p2")).is_err());
        assert!(check_patient(&c, None).is_err());
        let u = ctx("user/Questionnaire.r", None);
        assert!(check_patient(&u, Some("Patient/p2")).is_ok());
    }
}
