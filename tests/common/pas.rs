//! A PAS Request Bundle for the prior-authorization suites, shaped like the
//! Da Vinci PAS IG's examples (`#[path]`-included by the suites that use it).

use serde_json::{json, Value};

/// CPT, the code system of the requested services.
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";

/// A PAS Request Bundle shaped like the IG's examples: the Claim first,
/// then the beneficiary, requestor, insurer, coverage and the requested
/// service.
pub fn request(claim_id: &str, code: &str, quantity: u32, priority: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "identifier": {"system": "http://example.org/SUBMITTER_TRANSACTION_IDENTIFIER", "value": format!("tx-{claim_id}")},
        "type": "collection",
        "timestamp": "2026-11-20T10:00:00Z",
        "entry": [
            {"fullUrl": "http://example.org/fhir/Claim/ReferralClaim", "resource": {
                "resourceType": "Claim", "id": "ReferralClaim",
                "identifier": [{"system": "urn:trnorg:9012345678", "value": claim_id}],
                "status": "active",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
                "use": "preauthorization",
                "patient": {"reference": "Patient/SubscriberExample"},
                "created": "2026-11-20T10:00:00Z",
                "insurer": {"reference": "Organization/InsurerExample"},
                "provider": {"reference": "Organization/UMOExample"},
                "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": priority}]},
                "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M17.11"}]}}],
                "insurance": [{"sequence": 1, "focal": true, "coverage": {"reference": "Coverage/InsuranceExample"}}],
                "item": [{
                    "extension": [{"url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-requestedService",
                                   "valueReference": {"reference": "ServiceRequest/ReferralRequest"}}],
                    "sequence": 1,
                    "category": {"coding": [{"system": "https://codesystem.x12.org/005010/1365", "code": "3"}]},
                    "productOrService": {"coding": [{"system": CPT, "code": code}]},
                    "quantity": {"value": quantity}
                }]
            }},
            {"fullUrl": "http://example.org/fhir/Patient/SubscriberExample", "resource": {
                "resourceType": "Patient", "id": "SubscriberExample",
                "identifier": [{"system": "http://example.org/MIN", "value": "12345678901"}],
                "name": [{"family": "SMITH", "given": ["JOE"]}],
                "gender": "male", "birthDate": "1970-01-01"
            }},
            {"fullUrl": "http://example.org/fhir/Organization/UMOExample", "resource": {
                "resourceType": "Organization", "id": "UMOExample",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "8189991234"}],
                "active": true, "name": "DR. JOE SMITH CORPORATION"
            }},
            {"fullUrl": "http://example.org/fhir/Organization/InsurerExample", "resource": {
                "resourceType": "Organization", "id": "InsurerExample",
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.642.40.24.0", "value": "789312"}],
                "active": true, "name": "MARYLAND CAPITAL INSURANCE COMPANY"
            }},
            {"fullUrl": "http://example.org/fhir/Coverage/InsuranceExample", "resource": {
                "resourceType": "Coverage", "id": "InsuranceExample",
                "status": "active", "subscriberId": "12345678901",
                "beneficiary": {"reference": "Patient/SubscriberExample"},
                "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self"}]},
                "payor": [{"reference": "Organization/InsurerExample"}]
            }},
            {"fullUrl": "http://example.org/fhir/ServiceRequest/ReferralRequest", "resource": {
                "resourceType": "ServiceRequest", "id": "ReferralRequest",
                "status": "active", "intent": "order",
                "code": {"coding": [{"system": CPT, "code": code}]},
                "subject": {"reference": "Patient/SubscriberExample"},
                "quantityQuantity": {"value": quantity}
            }}
        ]
    })
}
