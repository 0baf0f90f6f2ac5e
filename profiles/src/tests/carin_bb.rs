//! CARIN Blue Button 2.0.0: a valid instance per profile, and invalid ones.

use super::*;

const B: &str = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/";
const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
const SUPP: &str = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType";

fn c4bb(id: &str) -> &'static Profile {
    profile(&format!("{B}{id}"))
}

fn type_of(code: &str) -> Value {
    json!({"coding": [{"system": CLAIM_TYPE, "code": code}]})
}

fn coverage() -> Value {
    json!({"resourceType": "Coverage", "meta": {"lastUpdated": "2024-01-01T00:00:00Z"},
        "status": "active", "beneficiary": {"reference": "Patient/1"},
        "payor": [{"reference": "Organization/1"}]})
}

fn organization() -> Value {
    json!({"resourceType": "Organization", "meta": {"lastUpdated": "2024-01-01T00:00:00Z"},
        "active": true, "name": "Acme Health Plan",
        "identifier": [{"type": {"coding": [{"system": "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType", "code": "payerid"}]},
            "value": "99901"}]})
}

fn eob(kind: &str) -> Value {
    json!({"resourceType": "ExplanationOfBenefit",
        "meta": {"lastUpdated": "2024-01-01T00:00:00Z"},
        "identifier": [{"value": "C1"}], "status": "active", "type": type_of(kind), "use": "claim",
        "patient": {"reference": "Patient/1"}, "billablePeriod": {"start": "2024-01-01"},
        "created": "2024-01-02", "insurer": {"reference": "Organization/1"},
        "provider": {"reference": "Organization/2"}, "outcome": "complete",
        "insurance": [{"focal": true, "coverage": {"reference": "Coverage/1"}}]})
}

fn professional() -> Value {
    edit(eob("professional"), |v| {
        v["diagnosis"] = json!([{"sequence": 1, "diagnosisCodeableConcept": {"text": "M17.11"}}]);
        v["item"] = json!([{"sequence": 1, "productOrService": {"text": "99213"}, "servicedDate": "2024-01-01"}]);
    })
}

fn pharmacy() -> Value {
    edit(eob("pharmacy"), |v| {
        v["supportingInfo"] = json!([{"sequence": 1,
            "category": {"coding": [{"system": SUPP, "code": "dayssupply"}]},
            "valueQuantity": {"value": 30}}]);
        v["item"] = json!([{"sequence": 1, "productOrService": {"text": "NDC"}, "servicedDate": "2024-01-01"}]);
    })
}

/// One valid instance per CARIN BB profile.
pub(super) fn valid() -> Vec<(String, Value)> {
    vec![
        ("C4BB-Coverage", coverage()),
        ("C4BB-Organization", organization()),
        ("C4BB-ExplanationOfBenefit", eob("institutional")),
        (
            "C4BB-ExplanationOfBenefit-Professional-NonClinician",
            professional(),
        ),
        ("C4BB-ExplanationOfBenefit-Pharmacy", pharmacy()),
    ]
    .into_iter()
    .map(|(id, v)| (format!("{B}{id}"), v))
    .collect()
}

#[test]
fn coverage_needs_last_updated_and_a_payor() {
    let p = c4bb("C4BB-Coverage");
    assert_one(
        p,
        &edit(coverage(), |v| remove(v, "meta")),
        "required",
        "Coverage.meta",
    );
    assert_one(
        p,
        &edit(coverage(), |v| remove(v, "payor")),
        "required",
        "Coverage.payor",
    );
    assert_one(
        p,
        &edit(coverage(), |v| v["status"] = json!("void")),
        "code-invalid",
        "Coverage.status",
    );
}

#[test]
fn eob_use_is_fixed_and_outcome_bound() {
    let p = c4bb("C4BB-ExplanationOfBenefit");
    assert_one(
        p,
        &edit(eob("oral"), |v| v["use"] = json!("preauthorization")),
        "value",
        "ExplanationOfBenefit.use",
    );
    assert_one(
        p,
        &edit(eob("oral"), |v| v["outcome"] = json!("done")),
        "code-invalid",
        "ExplanationOfBenefit.outcome",
    );
    assert_one(
        p,
        &edit(eob("oral"), |v| v["type"] = type_of("dental")),
        "code-invalid",
        "ExplanationOfBenefit.type",
    );
    assert_one(
        p,
        &edit(eob("oral"), |v| {
            v["billablePeriod"] = json!({"end": "2024-01-01"})
        }),
        "required",
        "ExplanationOfBenefit.billablePeriod.start",
    );
}

#[test]
fn professional_requires_its_type_diagnoses_and_items() {
    let p = c4bb("C4BB-ExplanationOfBenefit-Professional-NonClinician");
    assert_one(
        p,
        &edit(professional(), |v| v["type"] = type_of("institutional")),
        "value",
        "ExplanationOfBenefit.type",
    );
    assert_one(
        p,
        &edit(professional(), |v| remove(v, "diagnosis")),
        "required",
        "ExplanationOfBenefit.diagnosis",
    );
    let by_ref = edit(professional(), |v| {
        v["diagnosis"][0] =
            json!({"sequence": 1, "diagnosisReference": {"reference": "Condition/1"}});
    });
    assert_one(
        p,
        &by_ref,
        "structure",
        "ExplanationOfBenefit.diagnosis[0].diagnosis.ofType(Reference)",
    );
}

#[test]
fn pharmacy_requires_days_supply() {
    let p = c4bb("C4BB-ExplanationOfBenefit-Pharmacy");
    let other = edit(pharmacy(), |v| {
        v["supportingInfo"][0]["category"]["coding"][0]["code"] = json!("dawcode")
    });
    assert_one(
        p,
        &other,
        "required",
        "ExplanationOfBenefit.supportingInfo:dayssupply",
    );
    let text = edit(pharmacy(), |v| {
        remove(&mut v["supportingInfo"][0], "valueQuantity");
        v["supportingInfo"][0]["valueString"] = json!("thirty");
    });
    assert_one(
        p,
        &text,
        "structure",
        "ExplanationOfBenefit.supportingInfo[0].value.ofType(string)",
    );
}

#[test]
fn organization_allows_one_payer_id() {
    let p = c4bb("C4BB-Organization");
    let two = edit(organization(), |v| {
        let id = v["identifier"][0].clone();
        v["identifier"].as_array_mut().unwrap().push(id);
    });
    assert_one(p, &two, "structure", "Organization.identifier:payerid");
    assert_one(
        p,
        &edit(organization(), |v| remove(v, "active")),
        "required",
        "Organization.active",
    );
}
