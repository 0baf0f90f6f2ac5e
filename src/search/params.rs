//! The search parameter table: every parameter the embedded store indexes and
//! the CapabilityStatement advertises, per resource type (US Core 6.1 as the
//! Inferno US Core kit sends it, CARIN BB 2.0, Da Vinci PAS/HRex, plus the
//! parameters R4's Patient compartment needs).
//!
//! Paths are FHIRPath-like: dot-separated element names, choice types written
//! out (`effectiveDateTime`, `effectivePeriod`), and an optional `[field=value]`
//! filter on a segment (`telecom[system=email]`). Reference parameters list
//! their target types; a reference to any other type is not indexed under that
//! parameter (so `patient` only ever holds Patient references).
//!
//! `_id`, `_lastUpdated`, `_tag`, `_security`, `_profile` and `_source` apply to
//! every type and live in [`COMMON_PARAMS`]; where an IG names `_id` or
//! `_lastUpdated` for a type it is also listed here so the CapabilityStatement
//! shows it.

use capability::{ParamType, SearchParamDef};

const fn d(
    resource: &'static str,
    name: &'static str,
    kind: ParamType,
    paths: &'static [&'static str],
) -> SearchParamDef {
    SearchParamDef { resource, name, kind, paths, targets: &[] }
}
const fn tok(r: &'static str, n: &'static str, p: &'static [&'static str]) -> SearchParamDef {
    d(r, n, ParamType::Token, p)
}
const fn st(r: &'static str, n: &'static str, p: &'static [&'static str]) -> SearchParamDef {
    d(r, n, ParamType::String, p)
}
const fn dt(r: &'static str, n: &'static str, p: &'static [&'static str]) -> SearchParamDef {
    d(r, n, ParamType::Date, p)
}
const fn uri(r: &'static str, n: &'static str, p: &'static [&'static str]) -> SearchParamDef {
    d(r, n, ParamType::Uri, p)
}
const fn qty(r: &'static str, n: &'static str, p: &'static [&'static str]) -> SearchParamDef {
    d(r, n, ParamType::Quantity, p)
}
const fn rf(
    resource: &'static str,
    name: &'static str,
    paths: &'static [&'static str],
    targets: &'static [&'static str],
) -> SearchParamDef {
    SearchParamDef { resource, name, kind: ParamType::Reference, paths, targets }
}
/// `_id` listed for the CapabilityStatement (served from the resource table).
const fn id(r: &'static str) -> SearchParamDef {
    tok(r, "_id", &["id"])
}
/// `_lastUpdated` listed for the CapabilityStatement (served from the resource table).
const fn lu(r: &'static str) -> SearchParamDef {
    dt(r, "_lastUpdated", &["meta.lastUpdated"])
}

const PAT: &[&str] = &["Patient"];
const SUBJ: &[&str] = &["Patient", "Group", "Device", "Location"];
const ENC: &[&str] = &["Encounter"];
const ORG: &[&str] = &["Organization"];
const PRACT: &[&str] = &["Practitioner", "PractitionerRole"];
const PROVIDER: &[&str] = &["Practitioner", "PractitionerRole", "Organization"];
const PEOPLE: &[&str] =
    &["Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device"];
const ACTORS: &[&str] = &[
    "Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device",
    "CareTeam", "Group",
];
const REQUESTS: &[&str] = &[
    "CarePlan", "DeviceRequest", "ImmunizationRecommendation", "MedicationRequest",
    "NutritionOrder", "ServiceRequest",
];
/// Every type in this table: targets of `Provenance:target` and other "Any" references.
pub const ANY: &[&str] = &[
    "AllergyIntolerance", "AuditEvent", "CarePlan", "CareTeam", "Claim", "ClaimResponse",
    "Condition", "Consent", "Coverage", "Device", "DiagnosticReport", "DocumentReference",
    "Encounter", "ExplanationOfBenefit", "Goal", "Group", "Immunization", "Location",
    "Medication", "MedicationRequest", "Observation", "Organization", "Patient", "Practitioner",
    "PractitionerRole", "Procedure", "Provenance", "Questionnaire", "QuestionnaireResponse",
    "RelatedPerson", "ServiceRequest", "Specimen", "Subscription", "Task",
];

/// Parameters every resource type has (R4 search.html §3.1.1.1 "Parameters for all resources").
pub const COMMON_PARAMS: &[SearchParamDef] = &[
    id("Resource"),
    lu("Resource"),
    tok("Resource", "_tag", &["meta.tag"]),
    tok("Resource", "_security", &["meta.security"]),
    uri("Resource", "_profile", &["meta.profile"]),
    uri("Resource", "_source", &["meta.source"]),
];

/// Every resource-specific search parameter the embedded store supports.
pub const SEARCH_PARAMS: &[SearchParamDef] = &[
    // Patient (US Core 6.1)
    id("Patient"),
    lu("Patient"),
    tok("Patient", "identifier", &["identifier"]),
    st("Patient", "name", &["name"]),
    st("Patient", "family", &["name.family"]),
    st("Patient", "given", &["name.given"]),
    dt("Patient", "birthdate", &["birthDate"]),
    tok("Patient", "gender", &["gender"]),
    dt("Patient", "death-date", &["deceasedDateTime"]),
    st("Patient", "address", &["address"]),
    st("Patient", "address-city", &["address.city"]),
    st("Patient", "address-state", &["address.state"]),
    st("Patient", "address-postalcode", &["address.postalCode"]),
    st("Patient", "address-country", &["address.country"]),
    tok("Patient", "address-use", &["address.use"]),
    tok("Patient", "telecom", &["telecom"]),
    tok("Patient", "email", &["telecom[system=email]"]),
    tok("Patient", "phone", &["telecom[system=phone]"]),
    tok("Patient", "active", &["active"]),
    tok("Patient", "language", &["communication.language"]),
    rf("Patient", "organization", &["managingOrganization"], ORG),
    rf("Patient", "general-practitioner", &["generalPractitioner"], PROVIDER),
    rf("Patient", "link", &["link.other"], &["Patient", "RelatedPerson"]),
    // Observation
    rf("Observation", "patient", &["subject"], PAT),
    rf("Observation", "subject", &["subject"], SUBJ),
    tok("Observation", "category", &["category"]),
    tok("Observation", "code", &["code"]),
    tok("Observation", "combo-code", &["code", "component.code"]),
    tok("Observation", "component-code", &["component.code"]),
    dt("Observation", "date", &["effectiveDateTime", "effectivePeriod", "effectiveInstant"]),
    tok("Observation", "status", &["status"]),
    tok("Observation", "identifier", &["identifier"]),
    qty("Observation", "value-quantity", &["valueQuantity"]),
    tok("Observation", "value-concept", &["valueCodeableConcept"]),
    dt("Observation", "value-date", &["valueDateTime", "valuePeriod"]),
    st("Observation", "value-string", &["valueString"]),
    rf("Observation", "encounter", &["encounter"], ENC),
    rf("Observation", "based-on", &["basedOn"], REQUESTS),
    rf("Observation", "performer", &["performer"], ACTORS),
    rf("Observation", "has-member", &["hasMember"], &["Observation", "QuestionnaireResponse"]),
    rf("Observation", "derived-from", &["derivedFrom"], &["Observation", "DocumentReference"]),
    rf("Observation", "specimen", &["specimen"], &["Specimen"]),
    // Condition
    rf("Condition", "patient", &["subject"], PAT),
    rf("Condition", "subject", &["subject"], &["Patient", "Group"]),
    tok("Condition", "category", &["category"]),
    tok("Condition", "clinical-status", &["clinicalStatus"]),
    tok("Condition", "verification-status", &["verificationStatus"]),
    tok("Condition", "code", &["code"]),
    tok("Condition", "identifier", &["identifier"]),
    dt("Condition", "onset-date", &["onsetDateTime", "onsetPeriod"]),
    dt("Condition", "recorded-date", &["recordedDate"]),
    dt("Condition", "abatement-date", &["abatementDateTime", "abatementPeriod"]),
    rf("Condition", "encounter", &["encounter"], ENC),
    rf("Condition", "asserter", &["asserter"], PEOPLE),
    lu("Condition"),
    // Encounter
    rf("Encounter", "patient", &["subject"], PAT),
    rf("Encounter", "subject", &["subject"], &["Patient", "Group"]),
    dt("Encounter", "date", &["period"]),
    dt("Encounter", "period", &["period"]),
    tok("Encounter", "type", &["type"]),
    tok("Encounter", "class", &["class"]),
    tok("Encounter", "status", &["status"]),
    tok("Encounter", "identifier", &["identifier"]),
    tok("Encounter", "discharge-disposition", &["hospitalization.dischargeDisposition"]),
    tok("Encounter", "reason-code", &["reasonCode"]),
    rf("Encounter", "location", &["location.location"], &["Location"]),
    rf("Encounter", "participant", &["participant.individual"], &["Practitioner", "PractitionerRole", "RelatedPerson"]),
    rf("Encounter", "practitioner", &["participant.individual"], &["Practitioner"]),
    rf("Encounter", "service-provider", &["serviceProvider"], ORG),
    rf("Encounter", "reason-reference", &["reasonReference"], &["Condition", "Procedure", "Observation"]),
    // MedicationRequest
    rf("MedicationRequest", "patient", &["subject"], PAT),
    rf("MedicationRequest", "subject", &["subject"], &["Patient", "Group"]),
    tok("MedicationRequest", "intent", &["intent"]),
    tok("MedicationRequest", "status", &["status"]),
    tok("MedicationRequest", "category", &["category"]),
    tok("MedicationRequest", "identifier", &["identifier"]),
    tok("MedicationRequest", "code", &["medicationCodeableConcept"]),
    dt("MedicationRequest", "authoredon", &["authoredOn"]),
    rf("MedicationRequest", "encounter", &["encounter"], ENC),
    rf("MedicationRequest", "medication", &["medicationReference"], &["Medication"]),
    rf("MedicationRequest", "requester", &["requester"], PEOPLE),
    // Medication (target of MedicationRequest:medication)
    tok("Medication", "code", &["code"]),
    tok("Medication", "identifier", &["identifier"]),
    tok("Medication", "status", &["status"]),
    // AllergyIntolerance
    rf("AllergyIntolerance", "patient", &["patient"], PAT),
    tok("AllergyIntolerance", "clinical-status", &["clinicalStatus"]),
    tok("AllergyIntolerance", "verification-status", &["verificationStatus"]),
    tok("AllergyIntolerance", "category", &["category"]),
    tok("AllergyIntolerance", "code", &["code", "reaction.substance"]),
    tok("AllergyIntolerance", "criticality", &["criticality"]),
    tok("AllergyIntolerance", "identifier", &["identifier"]),
    dt("AllergyIntolerance", "date", &["recordedDate"]),
    rf("AllergyIntolerance", "recorder", &["recorder"], PEOPLE),
    rf("AllergyIntolerance", "asserter", &["asserter"], PEOPLE),
    // Immunization
    rf("Immunization", "patient", &["patient"], PAT),
    dt("Immunization", "date", &["occurrenceDateTime"]),
    tok("Immunization", "status", &["status"]),
    tok("Immunization", "vaccine-code", &["vaccineCode"]),
    tok("Immunization", "identifier", &["identifier"]),
    rf("Immunization", "performer", &["performer.actor"], PROVIDER),
    rf("Immunization", "location", &["location"], &["Location"]),
    // Procedure
    rf("Procedure", "patient", &["subject"], PAT),
    rf("Procedure", "subject", &["subject"], &["Patient", "Group"]),
    dt("Procedure", "date", &["performedDateTime", "performedPeriod"]),
    tok("Procedure", "code", &["code"]),
    tok("Procedure", "status", &["status"]),
    tok("Procedure", "category", &["category"]),
    tok("Procedure", "identifier", &["identifier"]),
    rf("Procedure", "encounter", &["encounter"], ENC),
    rf("Procedure", "performer", &["performer.actor"], PEOPLE),
    rf("Procedure", "based-on", &["basedOn"], REQUESTS),
    // DiagnosticReport
    rf("DiagnosticReport", "patient", &["subject"], PAT),
    rf("DiagnosticReport", "subject", &["subject"], SUBJ),
    tok("DiagnosticReport", "category", &["category"]),
    tok("DiagnosticReport", "code", &["code"]),
    tok("DiagnosticReport", "status", &["status"]),
    tok("DiagnosticReport", "identifier", &["identifier"]),
    dt("DiagnosticReport", "date", &["effectiveDateTime", "effectivePeriod"]),
    dt("DiagnosticReport", "issued", &["issued"]),
    rf("DiagnosticReport", "result", &["result"], &["Observation"]),
    rf("DiagnosticReport", "encounter", &["encounter"], ENC),
    rf("DiagnosticReport", "based-on", &["basedOn"], REQUESTS),
    rf("DiagnosticReport", "performer", &["performer"], &["Practitioner", "PractitionerRole", "Organization", "CareTeam"]),
    rf("DiagnosticReport", "specimen", &["specimen"], &["Specimen"]),
    // DocumentReference
    id("DocumentReference"),
    rf("DocumentReference", "patient", &["subject"], PAT),
    rf("DocumentReference", "subject", &["subject"], &["Patient", "Group", "Device", "Practitioner"]),
    tok("DocumentReference", "category", &["category"]),
    tok("DocumentReference", "type", &["type"]),
    tok("DocumentReference", "status", &["status"]),
    tok("DocumentReference", "identifier", &["identifier"]),
    tok("DocumentReference", "contenttype", &["content.attachment.contentType"]),
    dt("DocumentReference", "date", &["date"]),
    dt("DocumentReference", "period", &["context.period"]),
    rf("DocumentReference", "encounter", &["context.encounter"], &["Encounter", "EpisodeOfCare"]),
    rf("DocumentReference", "author", &["author"], PEOPLE),
    rf("DocumentReference", "custodian", &["custodian"], ORG),
    // CarePlan
    rf("CarePlan", "patient", &["subject"], PAT),
    rf("CarePlan", "subject", &["subject"], &["Patient", "Group"]),
    tok("CarePlan", "category", &["category"]),
    tok("CarePlan", "status", &["status"]),
    tok("CarePlan", "intent", &["intent"]),
    tok("CarePlan", "identifier", &["identifier"]),
    dt("CarePlan", "date", &["period"]),
    rf("CarePlan", "encounter", &["encounter"], ENC),
    rf("CarePlan", "care-team", &["careTeam"], &["CareTeam"]),
    // CareTeam
    rf("CareTeam", "patient", &["subject"], PAT),
    rf("CareTeam", "subject", &["subject"], &["Patient", "Group"]),
    tok("CareTeam", "status", &["status"]),
    tok("CareTeam", "category", &["category"]),
    tok("CareTeam", "identifier", &["identifier"]),
    tok("CareTeam", "role", &["participant.role"]),
    dt("CareTeam", "date", &["period"]),
    rf("CareTeam", "participant", &["participant.member"], ACTORS),
    rf("CareTeam", "encounter", &["encounter"], ENC),
    // Goal
    rf("Goal", "patient", &["subject"], PAT),
    rf("Goal", "subject", &["subject"], &["Patient", "Group", "Organization"]),
    tok("Goal", "lifecycle-status", &["lifecycleStatus"]),
    tok("Goal", "achievement-status", &["achievementStatus"]),
    tok("Goal", "category", &["category"]),
    tok("Goal", "description", &["description"]),
    tok("Goal", "identifier", &["identifier"]),
    dt("Goal", "target-date", &["target.dueDate"]),
    dt("Goal", "start-date", &["startDate"]),
    // Device
    rf("Device", "patient", &["patient"], PAT),
    tok("Device", "type", &["type"]),
    tok("Device", "status", &["status"]),
    tok("Device", "identifier", &["identifier"]),
    st("Device", "device-name", &["deviceName.name"]),
    st("Device", "manufacturer", &["manufacturer"]),
    st("Device", "model", &["modelNumber"]),
    // Location
    st("Location", "name", &["name", "alias"]),
    st("Location", "address", &["address"]),
    st("Location", "address-city", &["address.city"]),
    st("Location", "address-state", &["address.state"]),
    st("Location", "address-postalcode", &["address.postalCode"]),
    tok("Location", "identifier", &["identifier"]),
    tok("Location", "type", &["type"]),
    tok("Location", "status", &["status"]),
    rf("Location", "organization", &["managingOrganization"], ORG),
    rf("Location", "partof", &["partOf"], &["Location"]),
    // Organization
    st("Organization", "name", &["name", "alias"]),
    st("Organization", "address", &["address"]),
    st("Organization", "address-city", &["address.city"]),
    st("Organization", "address-state", &["address.state"]),
    st("Organization", "address-postalcode", &["address.postalCode"]),
    tok("Organization", "identifier", &["identifier"]),
    tok("Organization", "type", &["type"]),
    tok("Organization", "active", &["active"]),
    rf("Organization", "partof", &["partOf"], ORG),
    // Practitioner
    st("Practitioner", "name", &["name"]),
    st("Practitioner", "family", &["name.family"]),
    st("Practitioner", "given", &["name.given"]),
    st("Practitioner", "address", &["address"]),
    tok("Practitioner", "identifier", &["identifier"]),
    tok("Practitioner", "active", &["active"]),
    tok("Practitioner", "telecom", &["telecom"]),
    // PractitionerRole
    rf("PractitionerRole", "practitioner", &["practitioner"], &["Practitioner"]),
    rf("PractitionerRole", "organization", &["organization"], ORG),
    rf("PractitionerRole", "location", &["location"], &["Location"]),
    tok("PractitionerRole", "specialty", &["specialty"]),
    tok("PractitionerRole", "role", &["code"]),
    tok("PractitionerRole", "identifier", &["identifier"]),
    tok("PractitionerRole", "active", &["active"]),
    // Provenance
    rf("Provenance", "target", &["target"], ANY),
    rf("Provenance", "patient", &["target"], PAT),
    rf("Provenance", "agent", &["agent.who"], PEOPLE),
    rf("Provenance", "entity", &["entity.what"], ANY),
    tok("Provenance", "agent-type", &["agent.type"]),
    dt("Provenance", "recorded", &["recorded"]),
    // QuestionnaireResponse
    rf("QuestionnaireResponse", "patient", &["subject"], PAT),
    rf("QuestionnaireResponse", "subject", &["subject"], ANY),
    rf("QuestionnaireResponse", "questionnaire", &["questionnaire"], &["Questionnaire"]),
    tok("QuestionnaireResponse", "status", &["status"]),
    tok("QuestionnaireResponse", "identifier", &["identifier"]),
    dt("QuestionnaireResponse", "authored", &["authored"]),
    rf("QuestionnaireResponse", "author", &["author"], PEOPLE),
    rf("QuestionnaireResponse", "encounter", &["encounter"], ENC),
    rf("QuestionnaireResponse", "based-on", &["basedOn"], &["CarePlan", "ServiceRequest"]),
    // ServiceRequest
    rf("ServiceRequest", "patient", &["subject"], PAT),
    rf("ServiceRequest", "subject", &["subject"], SUBJ),
    tok("ServiceRequest", "category", &["category"]),
    tok("ServiceRequest", "code", &["code"]),
    tok("ServiceRequest", "status", &["status"]),
    tok("ServiceRequest", "intent", &["intent"]),
    tok("ServiceRequest", "identifier", &["identifier"]),
    dt("ServiceRequest", "authored", &["authoredOn"]),
    dt("ServiceRequest", "occurrence", &["occurrenceDateTime", "occurrencePeriod"]),
    rf("ServiceRequest", "encounter", &["encounter"], ENC),
    rf("ServiceRequest", "requester", &["requester"], PEOPLE),
    rf("ServiceRequest", "performer", &["performer"], ACTORS),
    // Specimen
    rf("Specimen", "patient", &["subject"], PAT),
    rf("Specimen", "subject", &["subject"], SUBJ),
    tok("Specimen", "type", &["type"]),
    tok("Specimen", "status", &["status"]),
    tok("Specimen", "identifier", &["identifier"]),
    tok("Specimen", "accession", &["accessionIdentifier"]),
    dt("Specimen", "collected", &["collection.collectedDateTime", "collection.collectedPeriod"]),
    // RelatedPerson
    rf("RelatedPerson", "patient", &["patient"], PAT),
    st("RelatedPerson", "name", &["name"]),
    st("RelatedPerson", "address", &["address"]),
    tok("RelatedPerson", "identifier", &["identifier"]),
    tok("RelatedPerson", "relationship", &["relationship"]),
    tok("RelatedPerson", "gender", &["gender"]),
    tok("RelatedPerson", "telecom", &["telecom"]),
    tok("RelatedPerson", "active", &["active"]),
    dt("RelatedPerson", "birthdate", &["birthDate"]),
    // ExplanationOfBenefit (CARIN BB 2.0)
    id("ExplanationOfBenefit"),
    lu("ExplanationOfBenefit"),
    rf("ExplanationOfBenefit", "patient", &["patient"], PAT),
    tok("ExplanationOfBenefit", "identifier", &["identifier"]),
    tok("ExplanationOfBenefit", "type", &["type"]),
    tok("ExplanationOfBenefit", "status", &["status"]),
    dt("ExplanationOfBenefit", "service-date", &["billablePeriod", "item.servicedDate", "item.servicedPeriod"]),
    dt("ExplanationOfBenefit", "billable-period-start", &["billablePeriod.start"]),
    dt("ExplanationOfBenefit", "created", &["created"]),
    rf("ExplanationOfBenefit", "provider", &["provider"], PROVIDER),
    rf("ExplanationOfBenefit", "care-team", &["careTeam.provider"], PROVIDER),
    rf("ExplanationOfBenefit", "coverage", &["insurance.coverage"], &["Coverage"]),
    rf("ExplanationOfBenefit", "claim", &["claim"], &["Claim"]),
    rf("ExplanationOfBenefit", "encounter", &["item.encounter"], ENC),
    rf("ExplanationOfBenefit", "payee", &["payee.party"], PEOPLE),
    rf("ExplanationOfBenefit", "insurer", &["insurer"], ORG),
    // Coverage (CARIN BB 2.0, PDex)
    id("Coverage"),
    rf("Coverage", "patient", &["beneficiary"], PAT),
    rf("Coverage", "beneficiary", &["beneficiary"], PAT),
    rf("Coverage", "subscriber", &["subscriber"], &["Patient", "RelatedPerson"]),
    rf("Coverage", "policy-holder", &["policyHolder"], &["Patient", "RelatedPerson", "Organization"]),
    rf("Coverage", "payor", &["payor"], &["Organization", "Patient", "RelatedPerson"]),
    tok("Coverage", "identifier", &["identifier"]),
    tok("Coverage", "status", &["status"]),
    tok("Coverage", "type", &["type"]),
    // Claim (Da Vinci PAS)
    rf("Claim", "patient", &["patient"], PAT),
    tok("Claim", "identifier", &["identifier"]),
    tok("Claim", "status", &["status"]),
    tok("Claim", "use", &["use"]),
    tok("Claim", "priority", &["priority"]),
    dt("Claim", "created", &["created"]),
    rf("Claim", "provider", &["provider"], PROVIDER),
    rf("Claim", "insurer", &["insurer"], ORG),
    rf("Claim", "enterer", &["enterer"], PRACT),
    rf("Claim", "encounter", &["item.encounter"], ENC),
    rf("Claim", "payee", &["payee.party"], PEOPLE),
    // ClaimResponse (Da Vinci PAS)
    rf("ClaimResponse", "patient", &["patient"], PAT),
    tok("ClaimResponse", "identifier", &["identifier"]),
    tok("ClaimResponse", "status", &["status"]),
    tok("ClaimResponse", "use", &["use"]),
    tok("ClaimResponse", "outcome", &["outcome"]),
    st("ClaimResponse", "disposition", &["disposition"]),
    dt("ClaimResponse", "created", &["created"]),
    dt("ClaimResponse", "payment-date", &["payment.date"]),
    rf("ClaimResponse", "request", &["request"], &["Claim"]),
    rf("ClaimResponse", "insurer", &["insurer"], ORG),
    rf("ClaimResponse", "requestor", &["requestor"], PROVIDER),
    // Consent
    rf("Consent", "patient", &["patient"], PAT),
    tok("Consent", "status", &["status"]),
    tok("Consent", "category", &["category"]),
    tok("Consent", "scope", &["scope"]),
    tok("Consent", "identifier", &["identifier"]),
    tok("Consent", "action", &["provision.action"]),
    tok("Consent", "purpose", &["provision.purpose"]),
    tok("Consent", "security-label", &["provision.securityLabel"]),
    dt("Consent", "date", &["dateTime"]),
    dt("Consent", "period", &["provision.period"]),
    rf("Consent", "actor", &["provision.actor.reference"], ACTORS),
    rf("Consent", "organization", &["organization"], ORG),
    rf("Consent", "consentor", &["performer"], PEOPLE),
    rf("Consent", "data", &["provision.data.reference"], ANY),
    // Group
    tok("Group", "identifier", &["identifier"]),
    tok("Group", "type", &["type"]),
    tok("Group", "code", &["code"]),
    tok("Group", "characteristic", &["characteristic.code"]),
    tok("Group", "actual", &["actual"]),
    rf("Group", "member", &["member.entity"], &["Patient", "Practitioner", "PractitionerRole", "Device", "Medication", "Group"]),
    rf("Group", "managing-entity", &["managingEntity"], &["Organization", "RelatedPerson", "Practitioner", "PractitionerRole"]),
    // AuditEvent
    rf("AuditEvent", "patient", &["agent.who", "entity.what"], PAT),
    dt("AuditEvent", "date", &["recorded"]),
    rf("AuditEvent", "agent", &["agent.who"], PEOPLE),
    rf("AuditEvent", "entity", &["entity.what"], ANY),
    rf("AuditEvent", "source", &["source.observer"], PEOPLE),
    tok("AuditEvent", "entity-type", &["entity.type"]),
    tok("AuditEvent", "entity-role", &["entity.role"]),
    tok("AuditEvent", "action", &["action"]),
    tok("AuditEvent", "outcome", &["outcome"]),
    tok("AuditEvent", "type", &["type"]),
    tok("AuditEvent", "subtype", &["subtype"]),
    tok("AuditEvent", "site", &["source.site"]),
    tok("AuditEvent", "altid", &["agent.altId"]),
    st("AuditEvent", "agent-name", &["agent.name"]),
    st("AuditEvent", "address", &["agent.network.address"]),
    uri("AuditEvent", "policy", &["agent.policy"]),
    // Subscription
    tok("Subscription", "status", &["status"]),
    tok("Subscription", "type", &["channel.type"]),
    st("Subscription", "criteria", &["criteria"]),
    uri("Subscription", "url", &["channel.endpoint"]),
    // Questionnaire (DTR)
    uri("Questionnaire", "url", &["url"]),
    st("Questionnaire", "name", &["name"]),
    st("Questionnaire", "title", &["title"]),
    tok("Questionnaire", "status", &["status"]),
    tok("Questionnaire", "version", &["version"]),
    tok("Questionnaire", "identifier", &["identifier"]),
    tok("Questionnaire", "code", &["item.code"]),
    tok("Questionnaire", "context-type", &["useContext.code"]),
    dt("Questionnaire", "date", &["date"]),
    // Task (HRex/CDex)
    rf("Task", "patient", &["for"], PAT),
    rf("Task", "subject", &["for"], ANY),
    rf("Task", "focus", &["focus"], ANY),
    rf("Task", "owner", &["owner"], ACTORS),
    rf("Task", "requester", &["requester"], PEOPLE),
    rf("Task", "based-on", &["basedOn"], ANY),
    tok("Task", "identifier", &["identifier"]),
    tok("Task", "status", &["status"]),
    tok("Task", "business-status", &["businessStatus"]),
    tok("Task", "intent", &["intent"]),
    tok("Task", "code", &["code"]),
    dt("Task", "authored-on", &["authoredOn"]),
];

/// The same table, as the CapabilityStatement reads it.
pub const SEARCH_PARAMS_FOR_CAPABILITY: &[SearchParamDef] = SEARCH_PARAMS;
