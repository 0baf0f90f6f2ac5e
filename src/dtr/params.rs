//! The `$questionnaire-package` input (DTR 2.0.1 "DTR Questionnaire
//! Package Input Parameters", `dtr-qpackage-input-parameters`): `coverage`
//! (1..*, Coverage), `order` (0..*, a request or Encounter/Appointment),
//! `questionnaire` (0..*, canonical), `context` (0..1, string); dtr-1: at
//! least one of `order`, `questionnaire` and `context`. Parsed and
//! checked here; every problem is a 400 OperationOutcome naming the part.

use serde_json::Value;

use crate::error::{FhirError, FhirResult};

/// Resource types an `order` part may hold (the operation's allowed types).
pub const ORDER_TYPES: &[&str] = &[
    "Appointment",
    "Encounter",
    "CommunicationRequest",
    "DeviceRequest",
    "MedicationRequest",
    "NutritionOrder",
    "ServiceRequest",
    "SupplyRequest",
    "VisionPrescription",
];

/// The parsed input.
#[derive(Debug, Clone, Default)]
pub struct PackageInput {
    /// The Coverage resources (at least one).
    pub coverages: Vec<Value>,
    /// The orders, if any.
    pub orders: Vec<Value>,
    /// Questionnaire canonicals asked for by name, if any.
    pub questionnaires: Vec<String>,
    /// The CRD/PAS context id, if any.
    pub context: Option<String>,
}

/// Parses the operation's body.
pub fn parse(body: Option<&Value>) -> FhirResult<PackageInput> {
    let Some(body) = body.filter(|b| b["resourceType"] == "Parameters") else {
        return Err(FhirError::bad_request(
            "$questionnaire-package needs a Parameters body (coverage, and order, questionnaire or context)",
        ));
    };
    let mut input = PackageInput::default();
    for (i, p) in body["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("Parameters.parameter[{i}]");
        match p["name"].as_str().unwrap_or_default() {
            "coverage" => {
                if p["resource"]["resourceType"] != "Coverage" {
                    return Err(FhirError::bad_request(format!(
                        "{at} (coverage) must hold a Coverage resource"
                    )));
                }
                input.coverages.push(p["resource"].clone());
            }
            "order" => {
                let rt = p["resource"]["resourceType"].as_str().unwrap_or_default();
                if !ORDER_TYPES.contains(&rt) {
                    return Err(FhirError::bad_request(format!(
                        "{at} (order) must hold one of {}; got '{rt}'",
                        ORDER_TYPES.join(", ")
                    )));
                }
                input.orders.push(p["resource"].clone());
            }
            "questionnaire" => match p["valueCanonical"].as_str().map(str::trim) {
                Some(c) if !c.is_empty() => input.questionnaires.push(c.to_owned()),
                _ => {
                    return Err(FhirError::bad_request(format!(
                        "{at} (questionnaire) must have a valueCanonical"
                    )))
                }
            },
            "context" => match p["valueString"].as_str() {
                Some(c) if input.context.is_none() => input.context = Some(c.to_owned()),
                Some(_) => {
                    return Err(FhirError::bad_request(format!(
                        "{at}: context may be given once"
                    )))
                }
                None => {
                    return Err(FhirError::bad_request(format!(
                        "{at} (context) must have a valueString"
                    )))
                }
            },
            // `changedsince` (a later DTR version) and unknown parts are ignored.
            _ => {}
        }
    }
    if input.coverages.is_empty() {
        return Err(FhirError::bad_request(
            "coverage is required: a parameter named 'coverage' holding the Coverage the documentation is for",
        ));
    }
    if input.orders.is_empty() && input.questionnaires.is_empty() && input.context.is_none() {
        return Err(FhirError::bad_request(
            "dtr-1: at least one of 'order', 'questionnaire' and 'context' must be given",
        ));
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn params(parts: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": parts})
    }

    #[test]
    fn a_full_input_is_read() {
        let b = params(json!([
            {"name": "coverage", "resource": {"resourceType": "Coverage", "id": "c"}},
            {"name": "order", "resource": {"resourceType": "ServiceRequest", "id": "s"}},
            {"name": "questionnaire", "valueCanonical": "http://x/Q|1"},
            {"name": "context", "valueString": "ctx"}
        ]));
        let i = parse(Some(&b)).unwrap();
        assert_eq!(i.coverages.len(), 1);
        assert_eq!(i.orders.len(), 1);
        assert_eq!(i.questionnaires, ["http://x/Q|1"]);
        assert_eq!(i.context.as_deref(), Some("ctx"));
    }

    #[test]
    fn bad_inputs_are_refused_with_a_reason() {
        let cov = json!({"name": "coverage", "resource": {"resourceType": "Coverage"}});
        let q = json!({"name": "questionnaire", "valueCanonical": "http://x/Q"});
        for (body, says) in [
            (json!({"resourceType": "Bundle"}), "Parameters body"),
            (params(json!([q])), "coverage is required"),
            (params(json!([cov])), "dtr-1"),
            (
                params(json!([cov, {"name": "order", "resource": {"resourceType": "Patient"}}])),
                "(order)",
            ),
            (
                params(json!([{"name": "coverage", "resource": {"resourceType": "Patient"}}, q])),
                "(coverage)",
            ),
            (
                params(json!([cov, {"name": "questionnaire"}])),
                "valueCanonical",
            ),
        ] {
            let e = parse(Some(&body)).unwrap_err();
            assert_eq!(e.status.as_u16(), 400);
            assert!(e.message.contains(says), "{} lacks {says}", e.message);
        }
        assert!(parse(None).is_err());
    }
}
