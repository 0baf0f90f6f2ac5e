//! The PAS Response Bundle: a ClaimResponse (first entry) built from a
//! stored [`Record`], with item-level review actions (X12 306: A1
//! certified, A3 not certified + reason, A4 pended, NA not required),
//! `preAuthRef`/`preAuthPeriod` for approvals, `outcome`, `disposition`
//! and identifiers linking back to the Claim; plus the Patient, insurer
//! and requestor entries of the request it answers. Business rejections
//! (no ClaimResponse decision possible) go in `ClaimResponse.error`.

use serde_json::{json, Value};

use super::{
    state::{ItemState, State},
    store::{Item, Record},
    validate,
};

/// X12 306 (Action Code) code system.
pub const X12_306: &str = "https://codesystem.x12.org/005010/306";
/// X12 external code list 886 (HCR03 review decision reason codes).
pub const X12_886: &str = "https://codesystem.x12.org/external/886";
/// PAS reviewAction extension.
pub const REVIEW_ACTION: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction";
/// PAS reviewActionCode sub-extension.
pub const REVIEW_ACTION_CODE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewActionCode";
/// PAS ClaimResponse profile.
pub const PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claimresponse";
/// PAS Response Bundle profile.
pub const BUNDLE_PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-pas-response-bundle";
/// Code system of fhirgate's business-rejection codes in `ClaimResponse.error`.
pub const ERROR_SYSTEM: &str = "urn:fhirgate:prior-auth:error";

fn action(item: &Item) -> Option<(&'static str, &'static str)> {
    match item.state {
        ItemState::Approved => Some(("A1", "Certified in total")),
        ItemState::Denied => Some(("A3", "Not Certified")),
        ItemState::Pended => Some(("A4", "Pended")),
        ItemState::NotRequired => Some(("NA", "No Action Required")),
        ItemState::Cancelled => None,
    }
}

fn review_action(item: &Item) -> Option<Value> {
    let (code, display) = action(item)?;
    let mut ext = vec![json!({
        "url": REVIEW_ACTION_CODE,
        "valueCodeableConcept": {"coding": [{"system": X12_306, "code": code, "display": display}]}
    })];
    if let Some(n) = &item.auth_number {
        ext.push(json!({"url": "number", "valueString": n}));
    }
    if let Some(r) = &item.reason {
        ext.push(json!({
            "url": "reasonCode",
            "valueCodeableConcept": {"coding": [{"system": X12_886, "code": r}]}
        }));
    }
    Some(json!({"url": REVIEW_ACTION, "extension": ext}))
}

fn claim_of(rec: &Record) -> &Value {
    &rec.request["entry"][0]["resource"]
}

/// The ClaimResponse for a record's current state.
pub fn claim_response(rec: &Record, created: &str) -> Value {
    let claim = claim_of(rec);
    let items: Vec<Value> = rec
        .items
        .iter()
        .map(|i| {
            let mut adj = json!({"category": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "submitted"}]}});
            if let Some(ra) = review_action(i) {
                adj["extension"] = json!([ra]);
            }
            json!({"itemSequence": i.sequence, "adjudication": [adj]})
        })
        .collect();
    let (outcome, disposition) = match rec.state {
        State::Pended => (
            "queued",
            "Pended: one or more items await review or documentation",
        ),
        State::Approved => ("complete", "Certified"),
        State::Denied => ("complete", "Not certified"),
        State::PartiallyApproved => ("partial", "Partially certified"),
        State::Cancelled => ("complete", "Cancelled by the requestor"),
    };
    let mut cr = json!({
        "resourceType": "ClaimResponse",
        "id": rec.id,
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": "urn:fhirgate:prior-auth", "value": rec.id}],
        "status": "active",
        "type": claim["type"],
        "use": "preauthorization",
        "patient": claim["patient"],
        "created": created,
        "insurer": claim["insurer"],
        "requestor": claim["provider"],
        "request": {
            "reference": rec.request["entry"][0]["fullUrl"],
            "identifier": {"system": rec.claim_system, "value": rec.claim_value}
        },
        "outcome": outcome,
        "disposition": disposition,
        "item": items,
    });
    let approved: Vec<&Item> = rec
        .items
        .iter()
        .filter(|i| i.auth_number.is_some())
        .collect();
    if let Some(first) = approved.first() {
        cr["preAuthRef"] = json!(first.auth_number);
        let start = approved.iter().filter_map(|i| i.auth_start.clone()).min();
        let end = approved.iter().filter_map(|i| i.auth_end.clone()).max();
        cr["preAuthPeriod"] = json!({"start": start, "end": end});
    }
    let notes: Vec<Value> = rec
        .items
        .iter()
        .filter_map(|i| {
            let q = i.questionnaire.as_ref().filter(|_| i.state == ItemState::Pended)?;
            Some(json!({"number": i.sequence, "type": "display",
                "text": format!("item {}: documentation needed: complete Questionnaire {q} and resubmit with the QuestionnaireResponse", i.sequence)}))
        })
        .collect();
    if !notes.is_empty() {
        cr["processNote"] = json!(notes);
    }
    if claim["insurance"].is_array() {
        cr["insurance"] = json!([{"sequence": 1, "focal": true,
            "coverage": claim["insurance"][0]["coverage"]}]);
    }
    strip_nulls(&mut cr);
    cr
}

/// A business rejection: a ClaimResponse with `outcome = error` and one
/// `error` naming why, for the request's Claim.
pub fn rejection(request: &Value, created: &str, code: &str, text: &str) -> Value {
    let claim = &request["entry"][0]["resource"];
    let mut cr = json!({
        "resourceType": "ClaimResponse",
        "meta": {"profile": [PROFILE]},
        "status": "active",
        "type": claim["type"],
        "use": "preauthorization",
        "patient": claim["patient"],
        "created": created,
        "insurer": claim["insurer"],
        "requestor": claim["provider"],
        "request": {"identifier": claim["identifier"][0]},
        "outcome": "error",
        "disposition": text,
        "error": [{"code": {"coding": [{"system": ERROR_SYSTEM, "code": code}], "text": text}}],
    });
    strip_nulls(&mut cr);
    cr
}

/// The PAS Response Bundle around a ClaimResponse, with the request's
/// Patient, insurer and requestor entries.
pub fn bundle(request: &Value, claim_response: Value, bundle_id: &str, timestamp: &str) -> Value {
    let entries = request["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let claim = &request["entry"][0]["resource"];
    let mut out = vec![json!({
        "fullUrl": format!("urn:uuid:{bundle_id}-cr"),
        "resource": claim_response,
    })];
    for elem in ["patient", "insurer", "provider"] {
        if let Some((i, _)) = claim[elem]["reference"]
            .as_str()
            .and_then(|r| validate::resolve(entries, r))
        {
            out.push(entries[i].clone());
        }
    }
    json!({
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [BUNDLE_PROFILE]},
        "identifier": {"system": "urn:fhirgate:prior-auth:bundle", "value": bundle_id},
        "type": "collection",
        "timestamp": timestamp,
        "entry": out,
    })
}

fn strip_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
        for x in m.values_mut() {
            strip_nulls(x);
        }
    }
}
