//! US Core 6.1.0: a valid instance per profile, and invalid ones.

use super::*;

const B: &str = "http://hl7.org/fhir/us/core/StructureDefinition/";
const OBS_CAT: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const UCUM: &str = "http://unitsofmeasure.org";

fn us(id: &str) -> &'static Profile {
    profile(&format!("{B}{id}"))
}

fn cc(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn patient() -> Value {
    json!({"resourceType": "Patient",
        "extension": [{"url": format!("{B}us-core-race"), "extension": []}],
        "identifier": [{"system": "urn:mrn", "value": "12"}],
        "name": [{"family": "Shaw", "given": ["Amy"]}],
        "telecom": [{"system": "phone", "value": "555", "use": "home"}],
        "gender": "female", "birthDate": "1987-02-20"})
}

fn observation(category: &str, code: Value) -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "category": [cc(OBS_CAT, category)], "code": code,
        "subject": {"reference": "Patient/1"}, "effectiveDateTime": "2024-01-01"})
}

fn body_weight() -> Value {
    let mut v = observation("vital-signs", cc("http://loinc.org", "29463-7"));
    v["valueQuantity"] = json!({"value": 70, "unit": "kg", "system": UCUM, "code": "kg"});
    v
}

fn blood_pressure() -> Value {
    let part = |code: &str, value: u32| {
        json!({"code": cc("http://loinc.org", code),
            "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}})
    };
    let mut v = observation("vital-signs", cc("http://loinc.org", "85354-9"));
    v["component"] = json!([part("8480-6", 120), part("8462-4", 80)]);
    v
}

fn pulse_ox() -> Value {
    let mut v = observation(
        "vital-signs",
        json!({"coding": [
        {"system": "http://loinc.org", "code": "2708-6"},
        {"system": "http://loinc.org", "code": "59408-5"}]}),
    );
    v["valueQuantity"] = json!({"value": 97, "unit": "%", "system": UCUM, "code": "%"});
    v
}

fn condition(category: Value) -> Value {
    json!({"resourceType": "Condition",
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
        "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
        "category": [category], "code": {"text": "Hypertension"},
        "subject": {"reference": "Patient/1"}})
}

fn problem() -> Value {
    condition(cc(
        "http://terminology.hl7.org/CodeSystem/condition-category",
        "problem-list-item",
    ))
}

fn medication_request() -> Value {
    json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "Lisinopril"}, "subject": {"reference": "Patient/1"},
        "authoredOn": "2024-01-01", "requester": {"reference": "Practitioner/1"}})
}

fn lab_report() -> Value {
    json!({"resourceType": "DiagnosticReport", "status": "final",
        "category": [cc("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB")],
        "code": {"text": "CBC"}, "subject": {"reference": "Patient/1"},
        "effectiveDateTime": "2024-01-01"})
}

fn coverage() -> Value {
    json!({"resourceType": "Coverage", "status": "active",
        "identifier": [{"type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MB"), "value": "M1"}],
        "beneficiary": {"reference": "Patient/1"}, "relationship": {"text": "self"},
        "payor": [{"reference": "Organization/1"}],
        "class": [{"type": cc("http://terminology.hl7.org/CodeSystem/coverage-class", "group"), "value": "G1"}]})
}

/// One valid instance per US Core profile.
pub(super) fn valid() -> Vec<(String, Value)> {
    let subject = json!({"reference": "Patient/1"});
    let with_value = |mut v: Value, q: Value| {
        v["valueQuantity"] = q;
        v
    };
    vec![
        ("us-core-patient", patient()),
        ("us-core-practitioner", json!({"resourceType": "Practitioner",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
            "name": [{"family": "Wu"}]})),
        ("us-core-practitionerrole", json!({"resourceType": "PractitionerRole",
            "practitioner": {"reference": "Practitioner/1"},
            "telecom": [{"system": "phone", "value": "555"}]})),
        ("us-core-organization", json!({"resourceType": "Organization", "active": true, "name": "Acme",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1"}]})),
        ("us-core-location", json!({"resourceType": "Location", "status": "active", "name": "Ward 1"})),
        ("us-core-encounter", json!({"resourceType": "Encounter", "status": "finished",
            "class": {"code": "AMB"}, "type": [{"text": "visit"}], "subject": subject,
            "location": [{"location": {"reference": "Location/1"}}]})),
        ("us-core-condition-problems-health-concerns", problem()),
        ("us-core-condition-encounter-diagnosis", condition(cc(
            "http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis"))),
        ("us-core-observation-lab", with_value(
            observation("laboratory", cc("http://loinc.org", "2345-7")),
            json!({"value": 5.4, "unit": "mmol/L"}))),
        ("us-core-vital-signs", with_value(
            observation("vital-signs", cc("http://loinc.org", "8867-4")), json!({"value": 70}))),
        ("us-core-blood-pressure", blood_pressure()),
        ("us-core-body-weight", body_weight()),
        ("us-core-bmi", with_value(observation("vital-signs", cc("http://loinc.org", "39156-5")),
            json!({"value": 22.1, "unit": "kg/m2", "system": UCUM, "code": "kg/m2"}))),
        ("us-core-body-height", with_value(observation("vital-signs", cc("http://loinc.org", "8302-2")),
            json!({"value": 170, "unit": "cm", "system": UCUM, "code": "cm"}))),
        ("us-core-body-temperature", with_value(observation("vital-signs", cc("http://loinc.org", "8310-5")),
            json!({"value": 37, "unit": "C", "system": UCUM, "code": "Cel"}))),
        ("us-core-heart-rate", with_value(observation("vital-signs", cc("http://loinc.org", "8867-4")),
            json!({"value": 60, "unit": "beats/minute", "system": UCUM, "code": "/min"}))),
        ("us-core-respiratory-rate", with_value(observation("vital-signs", cc("http://loinc.org", "9279-1")),
            json!({"value": 16, "unit": "breaths/minute", "system": UCUM, "code": "/min"}))),
        ("us-core-pulse-oximetry", pulse_ox()),
        ("us-core-smokingstatus", edit(observation("social-history", cc("http://loinc.org", "72166-2")), |v| {
            v["valueCodeableConcept"] = cc("http://snomed.info/sct", "449868002");
        })),
        ("us-core-medication", json!({"resourceType": "Medication", "code": {"text": "lisinopril"}})),
        ("us-core-allergyintolerance", json!({"resourceType": "AllergyIntolerance",
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
            "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed"),
            "code": {"text": "Penicillin"}, "patient": subject,
            "reaction": [{"manifestation": [{"text": "hives"}]}]})),
        ("us-core-medicationrequest", medication_request()),
        ("us-core-immunization", json!({"resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"text": "flu"}, "patient": subject, "occurrenceDateTime": "2024-01-01"})),
        ("us-core-procedure", json!({"resourceType": "Procedure", "status": "completed",
            "code": {"text": "appendectomy"}, "subject": subject, "performedDateTime": "2024-01-01"})),
        ("us-core-diagnosticreport-lab", lab_report()),
        ("us-core-diagnosticreport-note", json!({"resourceType": "DiagnosticReport", "status": "final",
            "category": [cc("http://loinc.org", "LP29684-5")], "code": {"text": "CT"},
            "subject": subject, "effectivePeriod": {"start": "2024-01-01"}})),
        ("us-core-documentreference", json!({"resourceType": "DocumentReference", "status": "current",
            "type": {"text": "note"},
            "category": [cc("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note")],
            "subject": subject, "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}]})),
        ("us-core-coverage", coverage()),
        ("us-core-provenance", json!({"resourceType": "Provenance", "target": [{"reference": "Patient/1"}],
            "recorded": "2024-01-01T00:00:00Z",
            "agent": [{"type": cc("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author"),
                "who": {"reference": "Organization/1"}}]})),
    ]
    .into_iter()
    .map(|(id, v)| (format!("{B}{id}"), v))
    .collect()
}

#[test]
fn patient_requires_identifier_and_a_gender_code() {
    let p = us("us-core-patient");
    assert_one(
        p,
        &edit(patient(), |v| remove(v, "identifier")),
        "required",
        "Patient.identifier",
    );
    assert_one(
        p,
        &edit(patient(), |v| v["gender"] = json!("f")),
        "code-invalid",
        "Patient.gender",
    );
    assert_one(
        p,
        &edit(patient(), |v| remove(v, "gender")),
        "required",
        "Patient.gender",
    );
    assert_one(
        p,
        &edit(patient(), |v| v["telecom"][0]["system"] = json!("beeper")),
        "code-invalid",
        "Patient.telecom[0].system",
    );
    assert_one(
        p,
        &edit(patient(), |v| v["deceasedString"] = json!("yes")),
        "structure",
        "Patient.deceased.ofType(string)",
    );
}

#[test]
fn patient_extension_slices_are_counted_by_url() {
    let twice = edit(patient(), |v| {
        let race = v["extension"][0].clone();
        v["extension"].as_array_mut().unwrap().push(race);
    });
    assert_one(
        us("us-core-patient"),
        &twice,
        "structure",
        "Patient.extension:race",
    );
}

#[test]
fn observation_category_slices_are_required() {
    let lab = us("us-core-observation-lab");
    let wrong = observation("vital-signs", json!({"text": "glucose"}));
    assert_one(lab, &wrong, "required", "Observation.category:Laboratory");
    let vitals = us("us-core-body-weight");
    let wrong = edit(body_weight(), |v| {
        v["category"] = json!([cc(OBS_CAT, "laboratory")])
    });
    assert_one(vitals, &wrong, "required", "Observation.category:VSCat");
    let no_status = edit(body_weight(), |v| v["status"] = json!("done"));
    assert_one(vitals, &no_status, "code-invalid", "Observation.status");
}

#[test]
fn body_weight_fixes_code_and_units_and_the_value_type() {
    let p = us("us-core-body-weight");
    let height = edit(body_weight(), |v| {
        v["code"] = cc("http://loinc.org", "8302-2")
    });
    assert_one(p, &height, "value", "Observation.code");
    let stone = edit(body_weight(), |v| {
        v["valueQuantity"]["code"] = json!("[st_av]")
    });
    assert_one(p, &stone, "code-invalid", "Observation.valueQuantity.code");
    let text = edit(body_weight(), |v| {
        remove(v, "valueQuantity");
        v["valueString"] = json!("heavy");
    });
    assert_one(p, &text, "structure", "Observation.value.ofType(string)");
    let timing = edit(body_weight(), |v| {
        remove(v, "effectiveDateTime");
        v["effectiveInstant"] = json!("2024-01-01T00:00:00Z");
    });
    assert_one(
        p,
        &timing,
        "structure",
        "Observation.effective.ofType(instant)",
    );
    let undated = edit(body_weight(), |v| remove(v, "effectiveDateTime"));
    assert_one(p, &undated, "required", "Observation.effective");
}

#[test]
fn blood_pressure_needs_both_components_in_mm_hg() {
    let p = us("us-core-blood-pressure");
    let one = edit(blood_pressure(), |v| {
        v["component"].as_array_mut().unwrap().pop();
    });
    let found = errors(p, &one);
    assert_eq!(
        found,
        vec![
            ("required", "Observation.component".to_owned()),
            ("required", "Observation.component:diastolic".to_owned())
        ]
    );
    let kpa = edit(blood_pressure(), |v| {
        v["component"][0]["valueQuantity"]["code"] = json!("kPa")
    });
    assert_one(
        p,
        &kpa,
        "value",
        "Observation.component[0].valueQuantity.code",
    );
}

#[test]
fn condition_category_and_status_bindings() {
    let p = us("us-core-condition-problems-health-concerns");
    let health_concern = edit(problem(), |v| {
        v["category"] = json!([cc(
            "http://hl7.org/fhir/us/core/CodeSystem/condition-category",
            "health-concern"
        )]);
    });
    assert_eq!(errors(p, &health_concern), vec![]);
    let diagnosis = edit(problem(), |v| {
        v["category"] = json!([cc(
            "http://terminology.hl7.org/CodeSystem/condition-category",
            "encounter-diagnosis"
        )]);
    });
    assert_one(p, &diagnosis, "required", "Condition.category:us-core");
    assert_one(
        us("us-core-condition-encounter-diagnosis"),
        &problem(),
        "required",
        "Condition.category:us-core",
    );
    let bogus = edit(problem(), |v| {
        v["clinicalStatus"] = cc(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "cured",
        )
    });
    assert_one(p, &bogus, "code-invalid", "Condition.clinicalStatus");
}

#[test]
fn medication_request_intent_binding_and_choice_types() {
    let p = us("us-core-medicationrequest");
    let wish = edit(medication_request(), |v| v["intent"] = json!("wish"));
    assert_one(p, &wish, "code-invalid", "MedicationRequest.intent");
    let none = edit(medication_request(), |v| {
        remove(v, "medicationCodeableConcept")
    });
    assert_one(p, &none, "required", "MedicationRequest.medication");
    let unsigned = edit(medication_request(), |v| remove(v, "requester"));
    assert_one(p, &unsigned, "required", "MedicationRequest.requester");
}

#[test]
fn diagnostic_report_lab_category_slice() {
    let p = us("us-core-diagnosticreport-lab");
    let rad = edit(lab_report(), |v| {
        v["category"] = json!([cc("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD")])
    });
    assert_one(
        p,
        &rad,
        "required",
        "DiagnosticReport.category:LaboratorySlice",
    );
    let status = edit(lab_report(), |v| v["status"] = json!("done"));
    assert_one(p, &status, "code-invalid", "DiagnosticReport.status");
}

#[test]
fn coverage_slices_and_required_elements() {
    let p = us("us-core-coverage");
    let two_groups = edit(coverage(), |v| {
        let g = v["class"][0].clone();
        v["class"].as_array_mut().unwrap().push(g);
    });
    assert_one(p, &two_groups, "structure", "Coverage.class:group");
    assert_one(
        p,
        &edit(coverage(), |v| remove(v, "relationship")),
        "required",
        "Coverage.relationship",
    );
    assert_one(
        p,
        &edit(coverage(), |v| v["status"] = json!("expired")),
        "code-invalid",
        "Coverage.status",
    );
}

#[test]
fn every_us_core_status_binding_rejects_an_unknown_code() {
    for (url, v) in valid() {
        let p = profile(&url);
        if !p
            .elements
            .iter()
            .any(|e| e.path == "status" && e.binding.is_some())
        {
            continue;
        }
        let bad = edit(v, |v| v["status"] = json!("bogus"));
        assert_one(
            p,
            &bad,
            "code-invalid",
            &format!("{}.status", p.resource_type),
        );
    }
}

#[test]
fn pulse_oximetry_needs_both_codings() {
    let p = us("us-core-pulse-oximetry");
    let one = edit(pulse_ox(), |v| {
        v["code"]["coding"].as_array_mut().unwrap().remove(1);
    });
    assert_one(p, &one, "required", "Observation.code.coding:PulseOx");
    let flow = edit(pulse_ox(), |v| {
        v["component"] = json!([{"code": cc("http://loinc.org", "3151-8"),
            "valueQuantity": {"value": 2, "unit": "L/min", "system": UCUM, "code": "L/h"}}]);
    });
    assert_one(
        p,
        &flow,
        "value",
        "Observation.component[0].valueQuantity.code",
    );
}

#[test]
fn smoking_status_restricts_status_and_value_type() {
    let p = us("us-core-smokingstatus");
    let (_, valid) = valid()
        .into_iter()
        .find(|(u, _)| u.ends_with("us-core-smokingstatus"))
        .unwrap();
    let prelim = edit(valid.clone(), |v| v["status"] = json!("preliminary"));
    assert_one(p, &prelim, "code-invalid", "Observation.status");
    let text = edit(valid, |v| {
        remove(v, "valueCodeableConcept");
        v["valueString"] = json!("smoker");
    });
    assert_one(p, &text, "structure", "Observation.value.ofType(string)");
}
