//! The Patient compartment (R4 compartmentdefinition-patient.html): for each
//! resource type, the reference parameters that make a resource belong to a
//! patient's compartment. Used by compartment search (`Patient/1/Observation`)
//! and available to `$everything` and patient-scope checks. Only parameters in
//! the table are listed; `Device` is included through `Device.patient` (R4 puts
//! it in the Device compartment only, but a patient's devices are theirs).

/// `(resource type, parameters)` of the Patient compartment.
pub const PATIENT_COMPARTMENT: &[(&str, &[&str])] = &[
    ("AllergyIntolerance", &["patient", "recorder", "asserter"]),
    ("AuditEvent", &["patient"]),
    ("CarePlan", &["patient"]),
    ("CareTeam", &["patient", "participant"]),
    ("Claim", &["patient", "payee"]),
    ("ClaimResponse", &["patient"]),
    ("Condition", &["patient", "asserter"]),
    ("Consent", &["patient"]),
    (
        "Coverage",
        &["policy-holder", "subscriber", "beneficiary", "payor"],
    ),
    ("Device", &["patient"]),
    ("DiagnosticReport", &["subject"]),
    ("DocumentReference", &["subject", "author"]),
    ("Encounter", &["patient"]),
    ("ExplanationOfBenefit", &["patient", "payee"]),
    ("Goal", &["patient"]),
    ("Group", &["member"]),
    ("Immunization", &["patient"]),
    ("MedicationRequest", &["subject"]),
    ("Observation", &["subject", "performer"]),
    ("Patient", &["link"]),
    ("Procedure", &["patient", "performer"]),
    ("Provenance", &["patient"]),
    ("QuestionnaireResponse", &["subject", "author"]),
    ("RelatedPerson", &["patient"]),
    ("ServiceRequest", &["subject", "performer"]),
    ("Specimen", &["subject"]),
];

/// The Patient-compartment parameters of `rtype` (empty when it is not in the compartment).
pub fn patient_compartment_params(rtype: &str) -> &'static [&'static str] {
    PATIENT_COMPARTMENT
        .iter()
        .find(|(t, _)| *t == rtype)
        .map_or(&[], |(_, p)| p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::search::find_param;
    use capability::ParamType;

    #[test]
    fn compartment_params_are_patient_references_in_the_table() {
        for (t, params) in PATIENT_COMPARTMENT {
            for p in *params {
                let def = find_param(t, p).unwrap_or_else(|| panic!("{t}:{p} not in the table"));
                assert_eq!(def.kind, ParamType::Reference, "{t}:{p}");
                assert!(
                    def.targets.contains(&"Patient"),
                    "{t}:{p} cannot point at a Patient"
                );
            }
        }
        assert_eq!(
            patient_compartment_params("Observation"),
            &["subject", "performer"]
        );
        assert!(patient_compartment_params("Organization").is_empty());
    }
}
