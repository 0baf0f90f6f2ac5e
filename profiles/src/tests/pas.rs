//! Da Vinci PAS 2.0.1 (and the 2.2 Claim Update): a valid instance per
//! profile, and invalid Claim, ClaimResponse and Bundle instances.

use super::*;

const B: &str = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/";

fn claim() -> Value {
    json!({"resourceType": "Claim", "identifier": [{"value": "PA-1"}], "status": "active",
        "type": {"text": "professional"}, "use": "preauthorization",
        "patient": {"reference": "Patient/1"}, "created": "2024-01-01",
        "insurer": {"reference": "Organization/ins"}, "provider": {"reference": "Organization/req"},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": true, "coverage": {"reference": "Coverage/1"}}],
        "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"text": "M17.11"}}],
        "item": [{"sequence": 1, "productOrService": {"text": "27447"}}]})
}

fn claim_response() -> Value {
    json!({"resourceType": "ClaimResponse", "identifier": [{"value": "R1"}], "status": "active",
        "type": {"text": "professional"}, "use": "preauthorization",
        "patient": {"reference": "Patient/1"}, "created": "2024-01-01",
        "insurer": {"reference": "Organization/ins"}, "requestor": {"reference": "Organization/req"},
        "request": {"identifier": {"value": "PA-1"}}, "outcome": "complete",
        "item": [{"itemSequence": 1, "adjudication": [{"category": {"text": "submitted"}}]}]})
}

fn bundle(first: Value) -> Value {
    json!({"resourceType": "Bundle", "identifier": {"value": "B1"}, "type": "collection",
        "timestamp": "2024-01-01T00:00:00Z",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": first}]})
}

/// One valid instance per PAS profile.
pub(super) fn valid() -> Vec<(String, Value)> {
    let subject = json!({"reference": "Patient/1"});
    vec![
        ("profile-pas-request-bundle", bundle(claim())),
        ("profile-pas-response-bundle", bundle(claim_response())),
        ("profile-claim", claim()),
        ("profile-claim-update", edit(claim(), |v| {
            v["related"] = json!([{"claim": {"reference": "Claim/0"}, "relationship": {"text": "prior"}}]);
        })),
        ("profile-claim-inquiry", json!({"resourceType": "Claim", "identifier": [{"value": "PA-1"}],
            "use": "preauthorization", "patient": subject,
            "insurer": {"reference": "Organization/ins"}, "provider": {"reference": "Organization/req"}})),
        ("profile-claimresponse", claim_response()),
        ("profile-beneficiary", json!({"resourceType": "Patient",
            "identifier": [{"system": "urn:member", "value": "M1"}], "name": [{"family": "Shaw"}],
            "gender": "female"})),
        ("profile-coverage", json!({"resourceType": "Coverage", "status": "active",
            "beneficiary": subject, "payor": [{"reference": "Organization/ins"}]})),
        ("profile-insurer", json!({"resourceType": "Organization", "name": "Payer"})),
        ("profile-requestor", json!({"resourceType": "Organization", "name": "Clinic",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1"}]})),
        ("profile-practitionerrole", json!({"resourceType": "PractitionerRole",
            "practitioner": {"reference": "Practitioner/1"}})),
        ("profile-servicerequest", json!({"resourceType": "ServiceRequest", "status": "active",
            "intent": "order", "code": {"text": "MRI"}, "subject": subject})),
        ("profile-devicerequest", json!({"resourceType": "DeviceRequest", "intent": "order",
            "codeCodeableConcept": {"text": "walker"}, "subject": subject})),
        ("profile-medicationrequest", json!({"resourceType": "MedicationRequest", "status": "active",
            "intent": "order", "medicationCodeableConcept": {"text": "drug"}, "subject": subject})),
    ]
    .into_iter()
    .map(|(id, v)| (format!("{B}{id}"), v))
    .collect()
}

fn pas_profile(id: &str) -> &'static Profile {
    profile(&format!("{B}{id}"))
}

#[test]
fn claim_violations_name_the_element() {
    let p = pas_profile("profile-claim");
    assert_one(
        p,
        &edit(claim(), |v| v["use"] = json!("claim")),
        "value",
        "Claim.use",
    );
    assert_one(
        p,
        &edit(claim(), |v| remove(v, "insurer")),
        "required",
        "Claim.insurer",
    );
    let stat = edit(claim(), |v| {
        v["priority"]["coding"][0]["code"] = json!("asap")
    });
    assert_one(p, &stat, "code-invalid", "Claim.priority");
    let by_ref = edit(claim(), |v| {
        v["diagnosis"][0] =
            json!({"sequence": 1, "diagnosisReference": {"reference": "Condition/1"}});
    });
    assert_one(
        p,
        &by_ref,
        "structure",
        "Claim.diagnosis[0].diagnosis.ofType(Reference)",
    );
}

#[test]
fn claim_response_violations_name_the_element() {
    let p = pas_profile("profile-claimresponse");
    let v = edit(claim_response(), |v| v["outcome"] = json!("approved"));
    assert_one(p, &v, "code-invalid", "ClaimResponse.outcome");
    let v = edit(claim_response(), |v| v["use"] = json!("claim"));
    assert_one(p, &v, "value", "ClaimResponse.use");
    let v = edit(claim_response(), |v| remove(v, "request"));
    assert_one(p, &v, "required", "ClaimResponse.request");
    let v = edit(claim_response(), |v| {
        remove(&mut v["item"][0], "adjudication")
    });
    assert_one(p, &v, "required", "ClaimResponse.item[0].adjudication");
}

#[test]
fn bundles_are_collections_with_full_urls() {
    let p = pas_profile("profile-pas-request-bundle");
    let v = edit(bundle(claim()), |v| v["type"] = json!("transaction"));
    assert_one(p, &v, "value", "Bundle.type");
    let v = edit(bundle(claim()), |v| remove(&mut v["entry"][0], "fullUrl"));
    assert_one(p, &v, "required", "Bundle.entry[0].fullUrl");
    let r = pas_profile("profile-pas-response-bundle");
    assert_one(
        r,
        &edit(bundle(claim_response()), |v| remove(v, "timestamp")),
        "required",
        "Bundle.timestamp",
    );
}

#[test]
fn pas_2_2_claim_allows_two_identifiers() {
    let two = edit(claim(), |v| {
        v["identifier"] = json!([{"value": "a"}, {"value": "b"}])
    });
    let v2_2 = pas_2_2().get("PASClaim").unwrap();
    assert_eq!(errors(v2_2, &two), vec![]);
    assert_one(
        pas().get("PASClaim").unwrap(),
        &two,
        "structure",
        "Claim.identifier",
    );
}
