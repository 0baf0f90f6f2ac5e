//! Resource type names, logical ids, typed references and instants (FHIR R4 §2.24, §3.1.0.1).

use std::fmt;

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// Every resource type of FHIR R4 (4.0.1), sorted for binary search.
pub const RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// Whether `name` is an R4 resource type (case-sensitive).
pub fn is_resource_type(name: &str) -> bool {
    RESOURCE_TYPES.binary_search(&name).is_ok()
}

/// Whether `id` is a legal logical id: `[A-Za-z0-9\-\.]{1,64}` (R4 datatypes §2.24.0.1 id).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The current time as a FHIR `instant` (RFC 3339, UTC, millisecond precision).
pub fn now_instant() -> String {
    format_instant(OffsetDateTime::now_utc())
}

/// Formats a time as a FHIR `instant` in UTC with millisecond precision.
pub fn format_instant(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses an RFC 3339 instant.
pub fn parse_instant(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// A typed literal reference `Type/id` (optionally `/_history/vid`). Compared
/// as a pair, never as a substring, so `Patient/12` never matches `Patient/123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Resource type.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
}

impl Reference {
    /// Parses `Type/id`, `Type/id/_history/v`, or an absolute URL ending in those,
    /// when `base` (if given) is its prefix. Returns `None` for anything else.
    pub fn parse(reference: &str, base: Option<&str>) -> Option<Self> {
        let mut rest = reference;
        if rest.contains("://") {
            let b = base?;
            rest = rest
                .strip_prefix(b.trim_end_matches('/'))?
                .strip_prefix('/')?;
        }
        let mut parts = rest.split('/');
        let t = parts.next()?;
        let id = parts.next()?;
        match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => {}
            (Some("_history"), Some(_), None) => {}
            _ => return None,
        }
        if !is_resource_type(t) || !is_valid_id(id) {
            return None;
        }
        Some(Self {
            resource_type: t.to_owned(),
            id: id.to_owned(),
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.resource_type, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_type_table_is_sorted_and_complete_enough() {
        let mut sorted = RESOURCE_TYPES.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, RESOURCE_TYPES);
        assert!(RESOURCE_TYPES.len() > 140);
        assert!(is_resource_type("Patient"));
        assert!(!is_resource_type("patient"));
        assert!(!is_resource_type("Foo"));
    }

    #[test]
    fn ids_follow_the_r4_grammar() {
        assert!(is_valid_id("abc-1.2"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id("a_b"));
        assert!(!is_valid_id(&"x".repeat(65)));
    }

    #[test]
    fn references_compare_as_pairs() {
        let a = Reference::parse("Patient/12", None).unwrap();
        let b = Reference::parse("Patient/123", None).unwrap();
        assert_ne!(a, b);
        let c =
            Reference::parse("http://h/fhir/Patient/12/_history/3", Some("http://h/fhir")).unwrap();
        assert_eq!(a, c);
        assert!(Reference::parse("http://other/fhir/Patient/12", Some("http://h/fhir")).is_none());
        assert!(Reference::parse("Patient", None).is_none());
        assert!(Reference::parse("Nope/1", None).is_none());
    }

    #[test]
    fn instants_have_millisecond_precision() {
        let s = now_instant();
        assert!(s.ends_with('Z'));
        assert_eq!(s.len(), "2026-01-01T00:00:00.000Z".len(), "{s}");
    }
}
