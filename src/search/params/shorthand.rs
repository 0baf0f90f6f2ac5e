//! Shorthands for writing the parameter table one entry a line, and the
//! groups of reference targets it shares.

use capability::{ParamType, SearchParamDef};

const fn d(
    resource: &'static str,
    name: &'static str,
    kind: ParamType,
    paths: &'static [&'static str],
) -> SearchParamDef {
    SearchParamDef {
        resource,
        name,
        kind,
        paths,
        targets: &[],
    }
}
/// A token parameter.
pub(super) const fn tok(
    r: &'static str,
    n: &'static str,
    p: &'static [&'static str],
) -> SearchParamDef {
    d(r, n, ParamType::Token, p)
}
/// A string parameter.
pub(super) const fn st(
    r: &'static str,
    n: &'static str,
    p: &'static [&'static str],
) -> SearchParamDef {
    d(r, n, ParamType::String, p)
}
/// A date parameter.
pub(super) const fn dt(
    r: &'static str,
    n: &'static str,
    p: &'static [&'static str],
) -> SearchParamDef {
    d(r, n, ParamType::Date, p)
}
/// A uri parameter.
pub(super) const fn uri(
    r: &'static str,
    n: &'static str,
    p: &'static [&'static str],
) -> SearchParamDef {
    d(r, n, ParamType::Uri, p)
}
/// A quantity parameter.
pub(super) const fn qty(
    r: &'static str,
    n: &'static str,
    p: &'static [&'static str],
) -> SearchParamDef {
    d(r, n, ParamType::Quantity, p)
}
/// A reference parameter with its target types.
pub(super) const fn rf(
    resource: &'static str,
    name: &'static str,
    paths: &'static [&'static str],
    targets: &'static [&'static str],
) -> SearchParamDef {
    SearchParamDef {
        resource,
        name,
        kind: ParamType::Reference,
        paths,
        targets,
    }
}
/// `_id` listed for the CapabilityStatement (served from the resource table).
pub(super) const fn id(r: &'static str) -> SearchParamDef {
    tok(r, "_id", &["id"])
}
/// `_lastUpdated` listed for the CapabilityStatement (served from the resource table).
pub(super) const fn lu(r: &'static str) -> SearchParamDef {
    dt(r, "_lastUpdated", &["meta.lastUpdated"])
}

/// Patient only.
pub(super) const PAT: &[&str] = &["Patient"];
/// Observation/DiagnosticReport-style subjects.
pub(super) const SUBJ: &[&str] = &["Patient", "Group", "Device", "Location"];
/// Encounter only.
pub(super) const ENC: &[&str] = &["Encounter"];
/// Organization only.
pub(super) const ORG: &[&str] = &["Organization"];
/// Practitioners.
pub(super) const PRACT: &[&str] = &["Practitioner", "PractitionerRole"];
/// Care providers.
pub(super) const PROVIDER: &[&str] = &["Practitioner", "PractitionerRole", "Organization"];
/// Anyone who can author or assert.
#[rustfmt::skip]
pub(super) const PEOPLE: &[&str] =
    &["Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device"];
/// Performers and participants.
#[rustfmt::skip]
pub(super) const ACTORS: &[&str] = &[
    "Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device",
    "CareTeam", "Group",
];
/// Request resources (`basedOn`).
#[rustfmt::skip]
pub(super) const REQUESTS: &[&str] = &[
    "CarePlan", "DeviceRequest", "ImmunizationRecommendation", "MedicationRequest",
    "NutritionOrder", "ServiceRequest",
];
/// Every type in the table: targets of `Provenance:target` and other "Any" references.
#[rustfmt::skip]
pub const ANY: &[&str] = &[
    "AllergyIntolerance", "AuditEvent", "CarePlan", "CareTeam", "Claim", "ClaimResponse",
    "Condition", "Consent", "Coverage", "Device", "DiagnosticReport", "DocumentReference",
    "Encounter", "ExplanationOfBenefit", "Goal", "Group", "Immunization", "Location",
    "Medication", "MedicationRequest", "Observation", "Organization", "Patient", "Practitioner",
    "PractitionerRole", "Procedure", "Provenance", "Questionnaire", "QuestionnaireResponse",
    "RelatedPerson", "ServiceRequest", "Specimen", "Subscription", "Task",
];
