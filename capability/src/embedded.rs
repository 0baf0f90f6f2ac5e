//! The embedded store's own statement: every type of the search-parameter
//! table with the interactions the store implements, its parameters (plus
//! the parameters every type has), and the `_include`/`_revinclude` values
//! its include step resolves (any reference parameter of the matched type,
//! `Type:*`; any reference parameter pointing at the type, in reverse;
//! R4 search.html §3.1.1.5.4).
//!
//! `searchParam.definition` is given only where the canonical is known for
//! certain ([`definition`]): R4 shares many definitions between types
//! (`clinical-patient`, `individual-family`, …), so a `{Type}-{name}` URL
//! built by rule would often name a SearchParameter that does not exist.

use crate::{
    model::{Operation, Resource, Rest, SearchParam},
    ParamType, SearchParamDef,
};

/// Type interactions of the embedded store (no `patch`).
pub const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// System interactions of the embedded store.
pub const SYSTEM_INTERACTIONS: &[&str] =
    &["transaction", "batch", "search-system", "history-system"];

/// Reference parameters on a `canonical` element (a URL, not `Type/id`):
/// searchable by that URL, but the embedded store's `_include` and
/// `_revinclude` follow `Type/id` references only, so they are not declared
/// as include values.
const CANONICAL_REFERENCES: &[(&str, &str)] = &[("QuestionnaireResponse", "questionnaire")];

fn is_canonical(p: &SearchParamDef) -> bool {
    CANONICAL_REFERENCES.contains(&(p.resource, p.name))
}

/// R4's Patient compartment.
pub const PATIENT_COMPARTMENT: &str = "http://hl7.org/fhir/CompartmentDefinition/patient";

/// R4 `Patient/[id]/$everything`.
pub const PATIENT_EVERYTHING: &str = "http://hl7.org/fhir/OperationDefinition/Patient-everything";

/// Types whose `patient` parameter is R4's shared `clinical-patient`.
const CLINICAL_PATIENT: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "ClinicalImpression",
    "Composition",
    "Condition",
    "Consent",
    "DetectedIssue",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "Encounter",
    "EpisodeOfCare",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "ImagingStudy",
    "Immunization",
    "List",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "NutritionOrder",
    "Observation",
    "Procedure",
    "RiskAssessment",
    "ServiceRequest",
    "SupplyDelivery",
    "VisionPrescription",
];

/// Parameters defined by an IG rather than R4 core: (type, name, canonical).
const IG_DEFINED: &[(&str, &str, &str)] = &[
    ("CareTeam", "role", "http://hl7.org/fhir/us/core/SearchParameter/us-core-careteam-role"),
    ("Encounter", "discharge-disposition", "http://hl7.org/fhir/us/core/SearchParameter/us-core-encounter-discharge-disposition"),
    ("Goal", "description", "http://hl7.org/fhir/us/core/SearchParameter/us-core-goal-description"),
    ("ExplanationOfBenefit", "type", "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-type"),
    ("ExplanationOfBenefit", "service-date", "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-service-date"),
    ("ExplanationOfBenefit", "service-start-date", "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-service-start-date"),
    ("ExplanationOfBenefit", "billable-period-start", "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-billable-period-start"),
];

/// Types with their own R4 `{Type}-patient` definition.
const OWN_PATIENT: &[&str] = &[
    "AuditEvent",
    "Claim",
    "ClaimResponse",
    "Coverage",
    "Device",
    "ExplanationOfBenefit",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "Specimen",
    "Task",
];

/// The SearchParameter canonical of `rtype`'s `name`, where known for certain.
pub fn definition(rtype: &str, name: &str) -> Option<String> {
    const R4: &str = "http://hl7.org/fhir/SearchParameter";
    if let Some(common) = name.strip_prefix('_') {
        return matches!(
            common,
            "id" | "lastUpdated" | "tag" | "security" | "profile" | "source"
        )
        .then(|| format!("{R4}/Resource-{common}"));
    }
    if let Some((_, _, c)) = IG_DEFINED
        .iter()
        .find(|(t, n, _)| *t == rtype && *n == name)
    {
        return Some((*c).to_owned());
    }
    match name {
        "patient" if CLINICAL_PATIENT.contains(&rtype) => Some(format!("{R4}/clinical-patient")),
        "patient" if OWN_PATIENT.contains(&rtype) => Some(format!("{R4}/{rtype}-patient")),
        _ => None,
    }
}

fn param(rtype: &str, d: &SearchParamDef) -> SearchParam {
    SearchParam {
        name: d.name.to_owned(),
        definition: definition(rtype, d.name),
        kind: d.kind.code().to_owned(),
    }
}

/// The store's `rest`: one resource per type of `params`, each with its
/// parameters and then every `common` one it does not list itself.
pub fn rest(params: &[SearchParamDef], common: &[SearchParamDef]) -> Rest {
    let mut types: Vec<&str> = params.iter().map(|p| p.resource).collect();
    types.sort_unstable();
    types.dedup();
    let mut out = Rest {
        interactions: SYSTEM_INTERACTIONS
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        search: common.iter().map(|d| param("Resource", d)).collect(),
        // `Patient/[id]/[type]` searches (server `search::compartment`)
        compartments: vec![PATIENT_COMPARTMENT.to_owned()],
        ..Rest::default()
    };
    for t in types {
        let mut r = Resource::new(t);
        r.interactions = TYPE_INTERACTIONS.iter().map(|s| (*s).to_owned()).collect();
        for (k, v) in [
            ("versioning", serde_json::json!("versioned-update")),
            ("readHistory", serde_json::json!(true)),
            ("updateCreate", serde_json::json!(true)),
            ("conditionalCreate", serde_json::json!(true)),
            ("conditionalUpdate", serde_json::json!(true)),
            ("conditionalDelete", serde_json::json!("single")),
        ] {
            r.flags.insert(k.into(), v);
        }
        let own = params.iter().filter(|p| p.resource == t);
        for d in own.clone().chain(common.iter()) {
            if !r.search.iter().any(|s| s.name == d.name) {
                r.search.push(param(t, d));
            }
        }
        let refs: Vec<String> = own
            .filter(|p| p.kind == ParamType::Reference && !is_canonical(p))
            .map(|p| format!("{t}:{}", p.name))
            .collect();
        if !refs.is_empty() {
            r.includes = refs;
            r.includes.push(format!("{t}:*"));
        }
        r.revincludes = params
            .iter()
            .filter(|p| {
                p.kind == ParamType::Reference && !is_canonical(p) && p.targets.contains(&t)
            })
            .map(|p| format!("{}:{}", p.resource, p.name))
            .collect();
        if t == "Patient" {
            r.add_operation(Operation {
                name: "everything".into(),
                definition: PATIENT_EVERYTHING.into(),
            });
        }
        out.resources.push(r);
    }
    out
}
