//! `POST /fhir/Questionnaire/$next-question` (SDC adaptive forms, as DTR
//! 2.0.1 uses it): the body is a QuestionnaireResponse (bare, or in a
//! `Parameters` part `questionnaire-response` / `questionnaire-response-in`)
//! whose `questionnaire` is `#id` of its contained adaptive Questionnaire.
//! The answer is that QuestionnaireResponse with the contained
//! Questionnaire's items being the questions asked so far plus the next
//! one(s) ([`super::adaptive::Form::step`]), answers off the path dropped,
//! and `status` `completed` when no question is left (else
//! `in-progress`). Bare in, bare out; Parameters in, Parameters (`return`)
//! out.
//!
//! 400: not a QuestionnaireResponse, no contained Questionnaire it
//! references, an answer the form does not accept. 404: a Questionnaire
//! that is no adaptive form of this payer's.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::catalog::{canonical_of, catalog};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{types::now_instant, FhirRequest, FhirResponse},
    pipeline::Disclosure,
};

/// The QuestionnaireResponse of the body, and whether it came in Parameters.
fn input(body: Option<&Value>) -> FhirResult<(Value, bool)> {
    let Some(body) = body else {
        return Err(FhirError::bad_request(
            "$next-question needs a QuestionnaireResponse (or Parameters with it) as its body",
        ));
    };
    let (qr, wrapped) = if body["resourceType"] == "Parameters" {
        let part = body["parameter"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                matches!(
                    p["name"].as_str(),
                    Some("questionnaire-response" | "questionnaire-response-in")
                )
            });
        (
            part.map(|p| p["resource"].clone()).unwrap_or(Value::Null),
            true,
        )
    } else {
        (body.clone(), false)
    };
    if qr["resourceType"] != "QuestionnaireResponse" {
        return Err(FhirError::bad_request(
            "$next-question needs a QuestionnaireResponse (bare, or in the Parameters part 'questionnaire-response')",
        ));
    }
    Ok((qr, wrapped))
}

/// The index in `contained` of the Questionnaire `qr.questionnaire` names.
fn contained_questionnaire(qr: &Value) -> FhirResult<usize> {
    let id = qr["questionnaire"]
        .as_str()
        .and_then(|q| q.strip_prefix('#'))
        .ok_or_else(|| {
            FhirError::bad_request(
                "QuestionnaireResponse.questionnaire must reference its contained adaptive Questionnaire ('#id')",
            )
        })?;
    qr["contained"]
        .as_array()
        .into_iter()
        .flatten()
        .position(|r| r["resourceType"] == "Questionnaire" && r["id"].as_str() == Some(id))
        .ok_or_else(|| {
            FhirError::bad_request(format!(
                "QuestionnaireResponse.questionnaire names #{id}, which is not a contained Questionnaire"
            ))
        })
}

/// The canonical an adaptive contained Questionnaire stands for: its own
/// `url|version`, else its `derivedFrom`.
pub fn form_canonical(q: &Value) -> Option<String> {
    if q["url"].is_string() {
        return Some(canonical_of(q));
    }
    q["derivedFrom"][0].as_str().map(str::to_owned)
}

/// Runs the operation.
pub async fn run(
    caller: &AccessContext,
    req: &FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let (mut qr, wrapped) = input(req.body.as_ref())?;
    let subject = qr["subject"]["reference"].as_str().map(str::to_owned);
    super::check_patient(caller, subject.as_deref())?;
    let at = contained_questionnaire(&qr)?;
    let q = &qr["contained"][at];
    let qid = q["id"].as_str().unwrap_or_default().to_owned();
    let canonical = form_canonical(q).unwrap_or_default();
    let catalog = catalog().map_err(FhirError::internal)?;
    let form = catalog.adaptive(&canonical).ok_or_else(|| {
        FhirError::not_found(format!(
            "'{canonical}' is not an adaptive Questionnaire of this payer's"
        ))
    })?;
    let seen: Vec<String> = q["item"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["linkId"].as_str().map(str::to_owned))
        .collect();
    let mut answers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for item in qr["item"].as_array().into_iter().flatten() {
        if let Some(id) = item["linkId"].as_str() {
            let given = item["answer"].as_array().cloned().unwrap_or_default();
            answers.entry(id.to_owned()).or_default().extend(given);
        }
    }
    let step = form.step(&answers, &seen).map_err(FhirError::bad_request)?;
    let items: Vec<Value> = step
        .asked
        .iter()
        .filter_map(|id| form.item(id).cloned())
        .collect();
    let answered: Vec<Value> = step
        .asked
        .iter()
        .filter_map(|id| {
            let given = answers.get(id).filter(|a| !a.is_empty())?;
            let text = form
                .item(id)
                .map(|i| i["text"].clone())
                .unwrap_or(Value::Null);
            Some(json!({"linkId": id, "text": text, "answer": given}))
        })
        .collect();
    qr["contained"][at]["item"] = Value::Array(items);
    qr["item"] = Value::Array(answered);
    if step.complete {
        qr["status"] = json!("completed");
        qr["authored"] = json!(now_instant());
    } else {
        qr["status"] = json!("in-progress");
    }
    let released = vec![format!("Questionnaire/{qid}")];
    super::note(disclosure, subject.as_deref(), released);
    let body = if wrapped {
        json!({"resourceType": "Parameters", "parameter": [{"name": "return", "resource": qr}]})
    } else {
        qr
    };
    Ok(FhirResponse::ok(body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_response_must_reference_a_contained_questionnaire() {
        let qr = json!({"resourceType": "QuestionnaireResponse", "questionnaire": "http://x/Q"});
        assert_eq!(
            contained_questionnaire(&qr).unwrap_err().status.as_u16(),
            400
        );
        let qr = json!({"resourceType": "QuestionnaireResponse", "questionnaire": "#a",
                        "contained": [{"resourceType": "Questionnaire", "id": "b"}]});
        assert!(contained_questionnaire(&qr).is_err());
        let qr = json!({"resourceType": "QuestionnaireResponse", "questionnaire": "#b",
                        "contained": [{"resourceType": "Questionnaire", "id": "b"}]});
        assert_eq!(contained_questionnaire(&qr).unwrap(), 0);
    }

    #[test]
    fn the_body_may_be_bare_or_wrapped() {
        let qr = json!({"resourceType": "QuestionnaireResponse"});
        assert!(!input(Some(&qr)).unwrap().1);
        let p = json!({"resourceType": "Parameters", "parameter": [{"name": "questionnaire-response", "resource": qr}]});
        assert!(input(Some(&p)).unwrap().1);
        assert!(input(Some(&json!({"resourceType": "Patient"}))).is_err());
        assert!(input(None).is_err());
    }
}
