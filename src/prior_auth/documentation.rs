//! The documentation a PAS request carries for `needs-doc` items: DTR
//! QuestionnaireResponses, either entries of the PAS Bundle (any status,
//! as before) or stored on this server and referenced from
//! `Claim.supportingInfo[n].valueReference` as `QuestionnaireResponse/{id}`
//! (relative, or absolute under this FHIR base). A stored one is read
//! through the upstream as the system and counts only when it is about the
//! Claim's patient (`subject` = the Bundle Patient's id; one about anyone
//! else answers exactly like a missing one) and `completed` (or
//! `amended`); the rules then compare its Questionnaire canonical.
//!
//! Structural validation wants every Claim reference to resolve inside the
//! Bundle; [`answered`] takes back that complaint for a reference it
//! resolves here, and names the reference when it resolves nowhere.

use profiles::Issue;
use serde_json::Value;

use super::validate::{self, CLAIM_ROOT};
use crate::{error::FhirResult, payer::matching, AppState};

/// Statuses of a stored QuestionnaireResponse that count as documentation.
const DONE: &[&str] = &["completed", "amended"];

/// The Questionnaire canonical a QuestionnaireResponse answers; for a
/// contained (adaptive) Questionnaire (`#id`), that Questionnaire's
/// `url|version`, else its `derivedFrom`.
pub fn questionnaire_of(qr: &Value) -> Option<String> {
    let q = qr["questionnaire"].as_str()?;
    let Some(id) = q.strip_prefix('#') else {
        return Some(q.to_owned());
    };
    let contained = qr["contained"]
        .as_array()?
        .iter()
        .find(|r| r["resourceType"] == "Questionnaire" && r["id"].as_str() == Some(id))?;
    match (contained["url"].as_str(), contained["version"].as_str()) {
        (Some(u), Some(v)) => Some(format!("{u}|{v}")),
        (Some(u), None) => Some(u.to_owned()),
        _ => contained["derivedFrom"][0].as_str().map(str::to_owned),
    }
}

/// Canonicals answered by the QuestionnaireResponses in the Bundle.
pub fn contained(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] == "QuestionnaireResponse")
        .filter_map(|e| questionnaire_of(&e["resource"]))
        .collect()
}

/// The id of a `QuestionnaireResponse/{id}` reference to this server
/// (relative, or absolute under `base`).
fn local_id<'a>(reference: &'a str, base: &str) -> Option<&'a str> {
    let rel = match reference.strip_prefix(base) {
        Some(rest) => rest.strip_prefix('/')?,
        None if reference.contains("://") || reference.starts_with("urn:") => return None,
        None => reference,
    };
    let id = rel.strip_prefix("QuestionnaireResponse/")?;
    crate::fhir::is_valid_id(id).then_some(id)
}

/// Whether stored `qr` is about `patient` (the PAS Bundle's Patient id):
/// its `subject` is `Patient/{id}`, relative or under `base`.
fn about(qr: &Value, patient: Option<&str>, base: &str) -> bool {
    let (Some(patient), Some(subject)) = (patient, qr["subject"]["reference"].as_str()) else {
        return false;
    };
    let rel = subject
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(subject);
    rel.strip_prefix("Patient/") == Some(patient)
}

/// Every canonical the request documents: the Bundle's
/// QuestionnaireResponses and the completed stored ones its Claim
/// references. Adjusts `issues` (structural validation's) for the stored
/// references: resolved ones are no longer errors; unresolvable ones are.
pub async fn answered(
    app: &AppState,
    bundle: &Value,
    issues: &mut Vec<Issue>,
) -> FhirResult<Vec<String>> {
    let mut out = contained(bundle);
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let claim = &bundle["entry"][0]["resource"];
    let ctx = app.request_context("pas-documentation");
    let patient = claim["patient"]["reference"]
        .as_str()
        .and_then(|r| validate::resolve(entries, r))
        .and_then(|(_, p)| p["id"].as_str().map(str::to_owned));
    let infos = claim["supportingInfo"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (i, info) in infos.iter().enumerate() {
        let Some(reference) = info["valueReference"]["reference"].as_str() else {
            continue;
        };
        if validate::resolve(entries, reference).is_some() {
            continue;
        }
        let Some(id) = local_id(reference, &ctx.base) else {
            continue;
        };
        let path = format!("{CLAIM_ROOT}.supportingInfo[{i}].valueReference");
        issues.retain(|x| !(x.path == path && x.code == "not-found"));
        // a stored response about another patient answers exactly like a
        // missing one: a PAS client learns nothing of others' documentation
        let stored = matching::read(app, &ctx, "QuestionnaireResponse", id)
            .await?
            .filter(|qr| about(qr, patient.as_deref(), &ctx.base));
        match stored {
            None => issues.push(Issue {
                code: "not-found",
                path,
                message: format!(
                    "{reference} is neither an entry of the Bundle nor a QuestionnaireResponse stored on this server"
                ),
            }),
            Some(qr) => {
                let done = qr["status"].as_str().is_some_and(|s| DONE.contains(&s));
                match questionnaire_of(&qr) {
                    Some(q) if done => out.push(q),
                    _ => tracing::debug!(
                        reference,
                        "stored QuestionnaireResponse is not completed; not counted as documentation"
                    ),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stored_response_counts_only_for_the_claims_patient() {
        let base = "http://f.test/fhir";
        let qr = |s: &str| json!({"subject": {"reference": s}});
        assert!(about(&qr("Patient/p1"), Some("p1"), base));
        assert!(about(
            &qr("http://f.test/fhir/Patient/p1"),
            Some("p1"),
            base
        ));
        assert!(!about(&qr("Patient/p2"), Some("p1"), base));
        assert!(!about(
            &qr("http://other/fhir/Patient/p1"),
            Some("p1"),
            base
        ));
        assert!(!about(&qr("Patient/p1"), None, base));
        assert!(!about(&json!({}), Some("p1"), base));
    }

    #[test]
    fn stored_references_are_recognised() {
        let base = "http://f.test/fhir";
        assert_eq!(local_id("QuestionnaireResponse/a1", base), Some("a1"));
        assert_eq!(
            local_id("http://f.test/fhir/QuestionnaireResponse/a1", base),
            Some("a1")
        );
        assert_eq!(
            local_id("http://other/fhir/QuestionnaireResponse/a1", base),
            None
        );
        assert_eq!(local_id("Observation/a1", base), None);
        assert_eq!(local_id("QuestionnaireResponse/a/b", base), None);
        assert_eq!(local_id("urn:uuid:1", base), None);
    }

    #[test]
    fn the_questionnaire_of_a_response_follows_contained_forms() {
        let qr = json!({"questionnaire": "http://x/Q|1"});
        assert_eq!(questionnaire_of(&qr).as_deref(), Some("http://x/Q|1"));
        let qr = json!({"questionnaire": "#a", "contained": [
            {"resourceType": "Questionnaire", "id": "a", "url": "http://x/A", "version": "2"}]});
        assert_eq!(questionnaire_of(&qr).as_deref(), Some("http://x/A|2"));
        let qr = json!({"questionnaire": "#a", "contained": [
            {"resourceType": "Questionnaire", "id": "a", "derivedFrom": ["http://x/B|1"]}]});
        assert_eq!(questionnaire_of(&qr).as_deref(), Some("http://x/B|1"));
        assert_eq!(questionnaire_of(&json!({"questionnaire": "#zz"})), None);
    }

    #[test]
    fn bundle_entries_count_whatever_their_status() {
        let b = json!({"entry": [
            {"resource": {"resourceType": "Claim"}},
            {"resource": {"resourceType": "QuestionnaireResponse", "status": "in-progress",
                          "questionnaire": "http://x/Q|1"}}]});
        assert_eq!(contained(&b), ["http://x/Q|1"]);
    }
}
