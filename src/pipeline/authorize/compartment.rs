//! Patient-compartment membership computed from a resource's JSON (R4
//! compartmentdefinition-patient.html), for `patient/` scopes and patient
//! users. A resource is in Patient P's compartment when it IS Patient P or
//! one of its Patient-compartment reference parameters
//! (`search::compartment`) holds the literal reference `Patient/P`;
//! references are compared as typed pairs, never as substrings, and absolute
//! or `urn:uuid` references never count (fail closed).

use serde_json::Value;

use crate::{
    fhir::Reference,
    search::{compartment::patient_compartment_params, extract::walk, find_param},
};

/// Resource types R4 puts in the Patient compartment (plus `Device`, which the
/// parameter table includes). Data of these types is patient data: `patient/`
/// scopes confine it to the launch patient.
const R4_PATIENT_COMPARTMENT: &[&str] = &[
    "Account",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "BodyStructure",
    "CarePlan",
    "CareTeam",
    "ChargeItem",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "Communication",
    "CommunicationRequest",
    "Composition",
    "Condition",
    "Consent",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "Encounter",
    "EnrollmentRequest",
    "EpisodeOfCare",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "Group",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "Invoice",
    "List",
    "MeasureReport",
    "Media",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "MolecularSequence",
    "NutritionOrder",
    "Observation",
    "Patient",
    "Person",
    "Procedure",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchSubject",
    "RiskAssessment",
    "Schedule",
    "ServiceRequest",
    "Specimen",
    "SupplyDelivery",
    "SupplyRequest",
    "VisionPrescription",
];

/// Whether resources of `rtype` are patient data (confined under `patient/`
/// scopes). Types outside the compartment (Organization, Practitioner,
/// Medication, Location, ...) are shared reference data: a `patient/` scope
/// for them is not confined (SMART 2.2 §"Scopes for requesting FHIR
/// Resources" leaves this to the server; US Core apps need them).
pub(crate) fn is_patient_data(rtype: &str) -> bool {
    R4_PATIENT_COMPARTMENT.contains(&rtype) || can_confine(rtype)
}

/// Whether fhirgate can compute and search compartment membership for `rtype`
/// (it is `Patient` or has compartment parameters in the search table).
pub(crate) fn can_confine(rtype: &str) -> bool {
    rtype == "Patient" || !patient_compartment_params(rtype).is_empty()
}

/// Whether `body` (a resource of type `rtype`) is in Patient `pid`'s compartment.
pub(crate) fn in_compartment(rtype: &str, body: &Value, pid: &str) -> bool {
    if body["resourceType"].as_str() != Some(rtype) {
        return false;
    }
    if rtype == "Patient" && body["id"].as_str() == Some(pid) {
        return true;
    }
    let want = Reference {
        resource_type: "Patient".into(),
        id: pid.into(),
    };
    patient_compartment_params(rtype)
        .iter()
        .filter_map(|p| find_param(rtype, p))
        .flat_map(|def| def.paths.iter())
        .flat_map(|path| walk(body, path))
        .filter_map(|v| v.as_str().or_else(|| v["reference"].as_str()))
        .any(|r| Reference::parse(r, None).as_ref() == Some(&want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn membership_is_by_typed_reference() {
        let obs = |r: &str| json!({"resourceType": "Observation", "subject": {"reference": r}});
        assert!(in_compartment("Observation", &obs("Patient/12"), "12"));
        assert!(!in_compartment("Observation", &obs("Patient/123"), "12"));
        assert!(!in_compartment("Observation", &obs("Group/12"), "12"));
        assert!(!in_compartment(
            "Observation",
            &obs("http://x/fhir/Patient/12"),
            "12"
        ));
        assert!(!in_compartment("Condition", &obs("Patient/12"), "12"));
        let perf = json!({"resourceType": "Observation", "subject": {"reference": "Patient/9"},
            "performer": [{"reference": "Practitioner/1"}, {"reference": "Patient/12"}]});
        assert!(in_compartment("Observation", &perf, "12"));
        let p = json!({"resourceType": "Patient", "id": "12"});
        assert!(in_compartment("Patient", &p, "12"));
        assert!(!in_compartment("Patient", &p, "1"));
        assert!(is_patient_data("Flag") && !can_confine("Flag"));
        assert!(!is_patient_data("Organization"));
    }
}
