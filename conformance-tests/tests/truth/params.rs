//! Where each declared search parameter looks in a resource, written from
//! the R4 specification (the `expression` of each SearchParameter, and of
//! US Core 6.1, CARIN BB 2.0 and the Da Vinci IGs where they define one),
//! independently of fhirgate's own table: paths are dot-separated element
//! names, choice types written out, `[field=value]` filters a segment, and
//! a reference parameter may be restricted to one target type
//! (`.where(resolve() is Patient)`).
//!
//! [`search_value`] derives, from a resource, the value a search for that
//! parameter must match it with (R4 search.html: token `system|code`,
//! reference `Type/id`, date `eq` the day, string a prefix, quantity
//! `number|system|code`, uri exact).

use serde_json::Value;

/// A parameter's element paths and, for references, the only target type.
pub struct Expr {
    pub paths: &'static [&'static str],
    pub target: Option<&'static str>,
}

const fn p(paths: &'static [&'static str]) -> Option<Expr> {
    Some(Expr {
        paths,
        target: None,
    })
}

const fn pt(paths: &'static [&'static str], target: &'static str) -> Option<Expr> {
    Some(Expr {
        paths,
        target: Some(target),
    })
}

/// The expression of `name` on `rtype`; None: not in the table.
pub fn expression(rtype: &str, name: &str) -> Option<Expr> {
    if let Some(e) = common(name) {
        return Some(e);
    }
    if let Some(e) = subject_params(rtype, name) {
        return Some(e);
    }
    by_type(rtype, name)
}

/// R4 "Parameters for all resources".
fn common(name: &str) -> Option<Expr> {
    match name {
        "_id" => p(&["id"]),
        "_lastUpdated" => p(&["meta.lastUpdated"]),
        "_tag" => p(&["meta.tag"]),
        "_security" => p(&["meta.security"]),
        "_profile" => p(&["meta.profile"]),
        "_source" => p(&["meta.source"]),
        _ => None,
    }
}

/// `patient` / `subject` / `encounter`, which most clinical types share.
fn subject_params(rtype: &str, name: &str) -> Option<Expr> {
    let patient_elem = matches!(
        rtype,
        "AllergyIntolerance"
            | "Immunization"
            | "Device"
            | "RelatedPerson"
            | "ExplanationOfBenefit"
            | "Claim"
            | "ClaimResponse"
            | "Consent"
    );
    match (rtype, name) {
        ("Task", "patient") => pt(&["for"], "Patient"),
        ("Task", "subject") => p(&["for"]),
        ("Coverage", "patient") => p(&["beneficiary"]),
        ("Provenance", "patient") => pt(&["target"], "Patient"),
        ("AuditEvent", "patient") => pt(&["agent.who", "entity.what"], "Patient"),
        (_, "patient") if patient_elem => p(&["patient"]),
        (_, "patient") => pt(&["subject"], "Patient"),
        (_, "subject") => p(&["subject"]),
        ("DocumentReference", "encounter") => p(&["context.encounter"]),
        ("Claim" | "ExplanationOfBenefit", "encounter") => p(&["item.encounter"]),
        (_, "encounter") => p(&["encounter"]),
        (_, "identifier") => p(&["identifier"]),
        (_, "status") => p(&["status"]),
        _ => None,
    }
}

fn by_type(rtype: &str, name: &str) -> Option<Expr> {
    clinical(rtype, name)
        .or_else(|| care(rtype, name))
        .or_else(|| administrative(rtype, name))
        .or_else(|| financial(rtype, name))
        .or_else(|| more_clinical(rtype, name))
        .or_else(|| more_administrative(rtype, name))
}

/// Further R4 parameters (declared by Medplum, the HTTP upstream of the
/// suite's second run).
fn more_clinical(rtype: &str, name: &str) -> Option<Expr> {
    match (rtype, name) {
        ("AllergyIntolerance", "last-date") => p(&["lastOccurrence"]),
        ("AllergyIntolerance", "manifestation") => p(&["reaction.manifestation"]),
        ("AllergyIntolerance", "onset") => p(&["reaction.onset"]),
        ("AllergyIntolerance", "route") => p(&["reaction.exposureRoute"]),
        ("AllergyIntolerance", "severity") => p(&["reaction.severity"]),
        ("AllergyIntolerance", "type") => p(&["type"]),
        ("CarePlan", "activity-code") => p(&["activity.detail.code"]),
        ("CarePlan", "activity-date") => p(&[
            "activity.detail.scheduledTiming",
            "activity.detail.scheduledPeriod",
            "activity.detail.scheduledString",
        ]),
        ("CarePlan", "activity-reference") => p(&["activity.reference"]),
        ("CarePlan" | "Procedure" | "ServiceRequest", "instantiates-uri") => {
            p(&["instantiatesUri"])
        }
        ("CarePlan", "performer") => p(&["activity.detail.performer"]),
        ("CareTeam" | "Group", "name") => p(&["name"]),
        ("Condition", "body-site") => p(&["bodySite"]),
        ("Condition", "evidence") => p(&["evidence.code"]),
        ("Condition", "evidence-detail") => p(&["evidence.detail"]),
        ("Condition", "severity") => p(&["severity"]),
        ("Condition", "stage") => p(&["stage.summary"]),
        ("Device", "location") => p(&["location"]),
        ("Device", "organization") => p(&["owner"]),
        ("Device", "url") => p(&["url"]),
        ("Device", "udi-carrier") => p(&["udiCarrier.carrierHRF"]),
        ("Device", "udi-di") => p(&["udiCarrier.deviceIdentifier"]),
        ("DiagnosticReport", "conclusion") => p(&["conclusionCode"]),
        ("DiagnosticReport", "results-interpreter") => p(&["resultsInterpreter"]),
        ("DocumentReference", "authenticator") => p(&["authenticator"]),
        ("DocumentReference", "description") => p(&["description"]),
        ("DocumentReference", "event") => p(&["context.event"]),
        ("DocumentReference", "facility") => p(&["context.facilityType"]),
        ("DocumentReference", "format") => p(&["content.format"]),
        ("DocumentReference", "language") => p(&["content.attachment.language"]),
        ("DocumentReference", "location") => p(&["content.attachment.url"]),
        ("DocumentReference", "related") => p(&["context.related"]),
        ("DocumentReference", "security-label") => p(&["securityLabel"]),
        ("DocumentReference", "setting") => p(&["context.practiceSetting"]),
        ("Encounter", "location-period") => p(&["location.period"]),
        ("Encounter", "participant-type") => p(&["participant.type"]),
        ("Encounter", "special-arrangement") => p(&["hospitalization.specialArrangement"]),
        ("Immunization", "lot-number") => p(&["lotNumber"]),
        ("Immunization", "manufacturer") => p(&["manufacturer"]),
        ("Immunization", "reaction") => p(&["reaction.detail"]),
        ("Immunization", "reaction-date") => p(&["reaction.date"]),
        ("Immunization" | "Procedure" | "ServiceRequest", "reason-code") => p(&["reasonCode"]),
        ("Immunization" | "Procedure", "reason-reference") => p(&["reasonReference"]),
        ("Immunization", "series") => p(&["protocolApplied.series"]),
        ("Immunization", "status-reason") => p(&["statusReason"]),
        ("Immunization", "target-disease") => p(&["protocolApplied.targetDisease"]),
        ("Medication", "expiration-date") => p(&["batch.expirationDate"]),
        ("Medication", "form") => p(&["form"]),
        ("Medication", "ingredient-code") => p(&["ingredient.itemCodeableConcept"]),
        ("Medication", "lot-number") => p(&["batch.lotNumber"]),
        ("Medication", "manufacturer") => p(&["manufacturer"]),
        ("MedicationRequest", "date") => p(&["dosageInstruction.timing.event"]),
        ("MedicationRequest", "intended-dispenser") => p(&["dispenseRequest.performer"]),
        ("MedicationRequest", "intended-performer") => p(&["performer"]),
        ("MedicationRequest", "intended-performertype") => p(&["performerType"]),
        ("MedicationRequest" | "ServiceRequest" | "Task", "priority") => p(&["priority"]),
        ("Observation", "combo-data-absent-reason") => {
            p(&["dataAbsentReason", "component.dataAbsentReason"])
        }
        ("Observation", "combo-value-concept") => {
            p(&["valueCodeableConcept", "component.valueCodeableConcept"])
        }
        ("Observation", "component-data-absent-reason") => p(&["component.dataAbsentReason"]),
        ("Observation", "component-value-concept") => p(&["component.valueCodeableConcept"]),
        ("Observation", "data-absent-reason") => p(&["dataAbsentReason"]),
        ("Observation", "device") => p(&["device"]),
        ("Observation", "focus") => p(&["focus"]),
        ("Observation", "method") => p(&["method"]),
        ("Procedure", "location") => p(&["location"]),
        ("ServiceRequest", "body-site") => p(&["bodySite"]),
        ("ServiceRequest", "order-detail") => p(&["orderDetail"]),
        ("ServiceRequest", "performer-type") => p(&["performerType"]),
        ("ServiceRequest", "requisition") => p(&["requisition"]),
        ("ServiceRequest", "specimen") => p(&["specimen"]),
        ("Specimen", "bodysite") => p(&["collection.bodySite"]),
        ("Specimen", "collector") => p(&["collection.collector"]),
        ("Specimen", "container") => p(&["container.type"]),
        ("Specimen", "container-id") => p(&["container.identifier"]),
        _ => None,
    }
}

fn more_administrative(rtype: &str, name: &str) -> Option<Expr> {
    let person = matches!(rtype, "Patient" | "Practitioner" | "RelatedPerson");
    match (rtype, name) {
        (_, "phonetic") if person || rtype == "Organization" => p(&["name"]),
        (_, "email") if person || rtype == "PractitionerRole" => p(&["telecom[system=email]"]),
        (_, "phone") if person || rtype == "PractitionerRole" => p(&["telecom[system=phone]"]),
        ("Practitioner", "communication") => p(&["communication"]),
        ("Practitioner", "qualification-code") => p(&["qualification.code"]),
        ("PractitionerRole", "date") => p(&["period"]),
        ("Location", "operational-status") => p(&["operationalStatus"]),
        ("Location", "physical-type") => p(&["physicalType"]),
        ("Provenance", "agent-role") => p(&["agent.role"]),
        ("Provenance", "location") => p(&["location"]),
        ("Provenance", "signature-type") => p(&["signature.type"]),
        ("Provenance", "when") => p(&["occurredDateTime", "occurredPeriod"]),
        ("Questionnaire", "context") => p(&["useContext.valueCodeableConcept"]),
        ("Questionnaire", "definition") => p(&["item.definition"]),
        ("Questionnaire", "description") => p(&["description"]),
        ("Questionnaire", "effective") => p(&["effectivePeriod"]),
        ("Questionnaire", "jurisdiction") => p(&["jurisdiction"]),
        ("Questionnaire", "publisher") => p(&["publisher"]),
        ("Questionnaire", "subject-type") => p(&["subjectType"]),
        ("QuestionnaireResponse", "source") => p(&["source"]),
        ("Consent", "source-reference") => p(&["sourceReference"]),
        ("Coverage", "class-type") => p(&["class.type"]),
        ("Coverage", "class-value") => p(&["class.value"]),
        ("Coverage", "dependent") => p(&["dependent"]),
        ("Claim" | "ExplanationOfBenefit", "facility") => p(&["facility"]),
        ("Claim", "care-team") => p(&["careTeam.provider"]),
        ("ExplanationOfBenefit", "disposition") => p(&["disposition"]),
        ("ExplanationOfBenefit", "enterer") => p(&["enterer"]),
        ("Task", "group-identifier") => p(&["groupIdentifier"]),
        ("Task", "modified") => p(&["lastModified"]),
        ("Task", "performer") => p(&["performerType"]),
        ("Task", "period") => p(&["executionPeriod"]),
        _ => None,
    }
}

fn clinical(rtype: &str, name: &str) -> Option<Expr> {
    match (rtype, name) {
        ("AllergyIntolerance", "clinical-status") => p(&["clinicalStatus"]),
        ("AllergyIntolerance", "verification-status") => p(&["verificationStatus"]),
        ("AllergyIntolerance", "category") => p(&["category"]),
        ("AllergyIntolerance", "code") => p(&["code", "reaction.substance"]),
        ("AllergyIntolerance", "criticality") => p(&["criticality"]),
        ("AllergyIntolerance", "date") => p(&["recordedDate"]),
        ("AllergyIntolerance", "recorder") => p(&["recorder"]),
        ("AllergyIntolerance", "asserter") => p(&["asserter"]),
        ("Condition", "category") => p(&["category"]),
        ("Condition", "clinical-status") => p(&["clinicalStatus"]),
        ("Condition", "verification-status") => p(&["verificationStatus"]),
        ("Condition", "code") => p(&["code"]),
        ("Condition", "onset-date") => p(&["onsetDateTime", "onsetPeriod"]),
        ("Condition", "recorded-date") => p(&["recordedDate"]),
        ("Condition", "abatement-date") => p(&["abatementDateTime", "abatementPeriod"]),
        ("Condition", "asserter") => p(&["asserter"]),
        ("Observation", "category") => p(&["category"]),
        ("Observation", "code") => p(&["code"]),
        ("Observation", "combo-code") => p(&["code", "component.code"]),
        ("Observation", "component-code") => p(&["component.code"]),
        ("Observation", "date") => p(&["effectiveDateTime", "effectivePeriod", "effectiveInstant"]),
        ("Observation", "value-quantity") => p(&["valueQuantity"]),
        ("Observation", "value-concept") => p(&["valueCodeableConcept"]),
        ("Observation", "value-date") => p(&["valueDateTime", "valuePeriod"]),
        ("Observation", "value-string") => p(&["valueString"]),
        ("Observation", "based-on") => p(&["basedOn"]),
        ("Observation", "performer") => p(&["performer"]),
        ("Observation", "has-member") => p(&["hasMember"]),
        ("Observation", "derived-from") => p(&["derivedFrom"]),
        ("Observation", "specimen") => p(&["specimen"]),
        ("DiagnosticReport", "category") => p(&["category"]),
        ("DiagnosticReport", "code") => p(&["code"]),
        ("DiagnosticReport", "date") => p(&["effectiveDateTime", "effectivePeriod"]),
        ("DiagnosticReport", "issued") => p(&["issued"]),
        ("DiagnosticReport", "result") => p(&["result"]),
        ("DiagnosticReport", "based-on") => p(&["basedOn"]),
        ("DiagnosticReport", "performer") => p(&["performer"]),
        ("DiagnosticReport", "specimen") => p(&["specimen"]),
        ("Immunization", "date") => p(&["occurrenceDateTime"]),
        ("Immunization", "vaccine-code") => p(&["vaccineCode"]),
        ("Immunization", "performer") => p(&["performer.actor"]),
        ("Immunization", "location") => p(&["location"]),
        ("Procedure", "date") => p(&["performedDateTime", "performedPeriod"]),
        ("Procedure", "code") => p(&["code"]),
        ("Procedure", "category") => p(&["category"]),
        ("Procedure", "performer") => p(&["performer.actor"]),
        ("Procedure", "based-on") => p(&["basedOn"]),
        ("MedicationRequest", "intent") => p(&["intent"]),
        ("MedicationRequest", "category") => p(&["category"]),
        ("MedicationRequest", "code") => p(&["medicationCodeableConcept"]),
        ("MedicationRequest", "authoredon") => p(&["authoredOn"]),
        ("MedicationRequest", "medication") => p(&["medicationReference"]),
        ("MedicationRequest", "requester") => p(&["requester"]),
        ("Medication", "code") => p(&["code"]),
        ("Specimen", "type") => p(&["type"]),
        ("Specimen", "accession") => p(&["accessionIdentifier"]),
        ("Specimen", "collected") => {
            p(&["collection.collectedDateTime", "collection.collectedPeriod"])
        }
        ("ServiceRequest", "category") => p(&["category"]),
        ("ServiceRequest", "code") => p(&["code"]),
        ("ServiceRequest", "intent") => p(&["intent"]),
        ("ServiceRequest", "authored") => p(&["authoredOn"]),
        ("ServiceRequest", "occurrence") => p(&[
            "occurrenceDateTime",
            "occurrencePeriod",
            "occurrenceTiming.event",
        ]),
        ("ServiceRequest", "requester") => p(&["requester"]),
        ("ServiceRequest", "performer") => p(&["performer"]),
        ("Device", "type") => p(&["type"]),
        ("Device", "device-name") => p(&["deviceName.name", "type.coding.display", "type.text"]),
        ("Device", "manufacturer") => p(&["manufacturer"]),
        ("Device", "model") => p(&["modelNumber"]),
        _ => None,
    }
}

fn care(rtype: &str, name: &str) -> Option<Expr> {
    match (rtype, name) {
        ("CarePlan", "category") => p(&["category"]),
        ("CarePlan", "intent") => p(&["intent"]),
        ("CarePlan", "date") => p(&["period"]),
        ("CarePlan", "care-team") => p(&["careTeam"]),
        ("CareTeam", "category") => p(&["category"]),
        ("CareTeam", "role") => p(&["participant.role"]),
        ("CareTeam", "date") => p(&["period"]),
        ("CareTeam", "participant") => p(&["participant.member"]),
        ("Goal", "lifecycle-status") => p(&["lifecycleStatus"]),
        ("Goal", "achievement-status") => p(&["achievementStatus"]),
        ("Goal", "category") => p(&["category"]),
        ("Goal", "description") => p(&["description"]),
        ("Goal", "target-date") => p(&["target.dueDate"]),
        ("Goal", "start-date") => p(&["startDate"]),
        ("DocumentReference", "category") => p(&["category"]),
        ("DocumentReference", "type") => p(&["type"]),
        ("DocumentReference", "contenttype") => p(&["content.attachment.contentType"]),
        ("DocumentReference", "date") => p(&["date"]),
        ("DocumentReference", "period") => p(&["context.period"]),
        ("DocumentReference", "author") => p(&["author"]),
        ("DocumentReference", "custodian") => p(&["custodian"]),
        ("Encounter", "date") => p(&["period"]),
        ("Encounter", "period") => p(&["period"]),
        ("Encounter", "type") => p(&["type"]),
        ("Encounter", "class") => p(&["class"]),
        ("Encounter", "discharge-disposition") => p(&["hospitalization.dischargeDisposition"]),
        ("Encounter", "reason-code") => p(&["reasonCode"]),
        ("Encounter", "location") => p(&["location.location"]),
        ("Encounter", "participant") => p(&["participant.individual"]),
        ("Encounter", "practitioner") => pt(&["participant.individual"], "Practitioner"),
        ("Encounter", "service-provider") => p(&["serviceProvider"]),
        ("Encounter", "reason-reference") => p(&["reasonReference"]),
        ("Provenance", "target") => p(&["target"]),
        ("Provenance", "agent") => p(&["agent.who"]),
        ("Provenance", "entity") => p(&["entity.what"]),
        ("Provenance", "agent-type") => p(&["agent.type"]),
        ("Provenance", "recorded") => p(&["recorded"]),
        ("Questionnaire", "url") => p(&["url"]),
        ("Questionnaire", "name") => p(&["name"]),
        ("Questionnaire", "title") => p(&["title"]),
        ("Questionnaire", "version") => p(&["version"]),
        ("Questionnaire", "code") => p(&["item.code"]),
        ("Questionnaire", "context-type") => p(&["useContext.code"]),
        ("Questionnaire", "date") => p(&["date"]),
        ("QuestionnaireResponse", "questionnaire") => p(&["questionnaire"]),
        ("QuestionnaireResponse", "authored") => p(&["authored"]),
        ("QuestionnaireResponse", "author") => p(&["author"]),
        ("QuestionnaireResponse", "based-on") => p(&["basedOn"]),
        ("Task", "focus") => p(&["focus"]),
        ("Task", "owner") => p(&["owner"]),
        ("Task", "requester") => p(&["requester"]),
        ("Task", "based-on") => p(&["basedOn"]),
        ("Task", "business-status") => p(&["businessStatus"]),
        ("Task", "intent") => p(&["intent"]),
        ("Task", "code") => p(&["code"]),
        ("Task", "authored-on") => p(&["authoredOn"]),
        ("AuditEvent", "date") => p(&["recorded"]),
        ("AuditEvent", "agent") => p(&["agent.who"]),
        ("AuditEvent", "entity-type") => p(&["entity.type"]),
        ("AuditEvent", "action") => p(&["action"]),
        ("AuditEvent", "outcome") => p(&["outcome"]),
        _ => None,
    }
}

fn administrative(rtype: &str, name: &str) -> Option<Expr> {
    let person = matches!(rtype, "Patient" | "Practitioner" | "RelatedPerson");
    let place = matches!(rtype, "Organization" | "Location");
    match (rtype, name) {
        (_, "name") if person => p(&["name"]),
        (_, "name") if place => p(&["name", "alias"]),
        (_, "family") if person => p(&["name.family"]),
        (_, "given") if person => p(&["name.given"]),
        (_, "address") if person || place => p(&["address"]),
        (_, "address-city") => p(&["address.city"]),
        (_, "address-state") => p(&["address.state"]),
        (_, "address-postalcode") => p(&["address.postalCode"]),
        (_, "address-country") => p(&["address.country"]),
        (_, "address-use") => p(&["address.use"]),
        (_, "telecom") => p(&["telecom"]),
        (_, "active") => p(&["active"]),
        (_, "gender") => p(&["gender"]),
        (_, "birthdate") => p(&["birthDate"]),
        ("Patient", "death-date") => p(&["deceasedDateTime"]),
        ("Patient", "email") => p(&["telecom[system=email]"]),
        ("Patient", "phone") => p(&["telecom[system=phone]"]),
        ("Patient", "language") => p(&["communication.language"]),
        ("Patient", "organization") => p(&["managingOrganization"]),
        ("Patient", "general-practitioner") => p(&["generalPractitioner"]),
        ("Patient", "link") => p(&["link.other"]),
        ("RelatedPerson", "relationship") => p(&["relationship"]),
        ("Location", "type") => p(&["type"]),
        ("Location", "organization") => p(&["managingOrganization"]),
        ("Location", "partof") => p(&["partOf"]),
        ("Organization", "type") => p(&["type"]),
        ("Organization", "partof") => p(&["partOf"]),
        ("PractitionerRole", "practitioner") => p(&["practitioner"]),
        ("PractitionerRole", "organization") => p(&["organization"]),
        ("PractitionerRole", "location") => p(&["location"]),
        ("PractitionerRole", "specialty") => p(&["specialty"]),
        ("PractitionerRole", "role") => p(&["code"]),
        ("Group", "type") => p(&["type"]),
        ("Group", "code") => p(&["code"]),
        ("Group", "characteristic") => p(&["characteristic.code"]),
        ("Group", "actual") => p(&["actual"]),
        ("Group", "member") => p(&["member.entity"]),
        ("Group", "managing-entity") => p(&["managingEntity"]),
        ("Consent", "category") => p(&["category"]),
        ("Consent", "scope") => p(&["scope"]),
        ("Consent", "action") => p(&["provision.action"]),
        ("Consent", "purpose") => p(&["provision.purpose"]),
        ("Consent", "security-label") => p(&["provision.securityLabel"]),
        ("Consent", "date") => p(&["dateTime"]),
        ("Consent", "period") => p(&["provision.period"]),
        ("Consent", "actor") => p(&["provision.actor.reference"]),
        ("Consent", "organization") => p(&["organization"]),
        ("Consent", "consentor") => p(&["performer"]),
        ("Consent", "data") => p(&["provision.data.reference"]),
        _ => None,
    }
}

fn financial(rtype: &str, name: &str) -> Option<Expr> {
    match (rtype, name) {
        ("Coverage", "beneficiary") => p(&["beneficiary"]),
        ("Coverage", "subscriber") => p(&["subscriber"]),
        ("Coverage", "policy-holder") => p(&["policyHolder"]),
        ("Coverage", "payor") => p(&["payor"]),
        ("Coverage", "type") => p(&["type"]),
        ("Claim" | "ClaimResponse", "use") => p(&["use"]),
        ("Claim" | "ClaimResponse" | "ExplanationOfBenefit", "created") => p(&["created"]),
        ("Claim" | "ClaimResponse" | "ExplanationOfBenefit", "insurer") => p(&["insurer"]),
        ("Claim" | "ExplanationOfBenefit", "provider") => p(&["provider"]),
        ("Claim" | "ExplanationOfBenefit", "payee") => p(&["payee.party"]),
        ("Claim", "priority") => p(&["priority"]),
        ("Claim", "enterer") => p(&["enterer"]),
        ("ClaimResponse", "outcome") => p(&["outcome"]),
        ("ClaimResponse", "disposition") => p(&["disposition"]),
        ("ClaimResponse", "payment-date") => p(&["payment.date"]),
        ("ClaimResponse", "request") => p(&["request"]),
        ("ClaimResponse", "requestor") => p(&["requestor"]),
        ("ExplanationOfBenefit", "type") => p(&["type"]),
        ("ExplanationOfBenefit", "service-date") => {
            p(&["billablePeriod", "item.servicedDate", "item.servicedPeriod"])
        }
        ("ExplanationOfBenefit", "billable-period-start") => p(&["billablePeriod.start"]),
        ("ExplanationOfBenefit", "care-team") => p(&["careTeam.provider"]),
        ("ExplanationOfBenefit", "coverage") => p(&["insurance.coverage"]),
        ("ExplanationOfBenefit", "claim") => p(&["claim"]),
        _ => None,
    }
}

/// The values at `path` (`a.b[field=value].c`), arrays flattened.
pub fn values_at<'a>(resource: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![resource];
    for seg in path.split('.') {
        let (field, filter) = match seg.split_once('[') {
            Some((f, rest)) => (f, rest.trim_end_matches(']').split_once('=')),
            None => (seg, None),
        };
        let mut next = Vec::new();
        for v in current {
            match &v[field] {
                Value::Array(items) => next.extend(items.iter()),
                Value::Null => {}
                other => next.push(other),
            }
        }
        if let Some((k, want)) = filter {
            next.retain(|v| v[k].as_str() == Some(want));
        }
        current = next;
    }
    current
}

/// The search value matching `resource` on a parameter of `kind` with
/// expression `expr`; None when the resource has no usable value.
pub fn search_value(resource: &Value, kind: &str, expr: &Expr) -> Option<String> {
    expr.paths.iter().find_map(|path| {
        let telecom = path.starts_with("telecom");
        values_at(resource, path)
            .into_iter()
            .find_map(|v| match kind {
                "token" => token(v, telecom),
                "reference" => reference(v, expr.target),
                "date" => date(v),
                "string" => string(v),
                "quantity" => quantity(v),
                "uri" | "number" => scalar(v),
                _ => None,
            })
    })
}

fn token(v: &Value, telecom: bool) -> Option<String> {
    let sys_code = |sys: Option<&str>, code: &str| match sys {
        Some(s) => format!("{s}|{code}"),
        None => code.to_owned(),
    };
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => {
            if let Some(coding) = o.get("coding").and_then(|c| c.as_array()) {
                let c = coding.iter().find(|c| c["code"].is_string())?;
                return Some(sys_code(c["system"].as_str(), c["code"].as_str()?));
            }
            if let Some(code) = o.get("code").and_then(Value::as_str) {
                return Some(sys_code(o.get("system").and_then(Value::as_str), code));
            }
            let value = o.get("value").and_then(Value::as_str)?;
            if telecom {
                return Some(value.to_owned());
            }
            Some(sys_code(o.get("system").and_then(Value::as_str), value))
        }
        _ => None,
    }
}

fn reference(v: &Value, target: Option<&str>) -> Option<String> {
    let r = match v {
        // a canonical (QuestionnaireResponse.questionnaire)
        Value::String(s) => return Some(s.clone()),
        _ => v["reference"].as_str()?,
    };
    let (t, id) = r.split_once('/')?;
    if id.contains('/') || r.starts_with('#') || target.is_some_and(|want| want != t) {
        return None;
    }
    Some(r.to_owned())
}

/// `eq` the day of a date or dateTime (UTC for times with an offset); for a
/// Period longer than a day, `ge` its start (its range overlaps the range
/// above the start), or `le` its end.
fn date(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(format!("eq{}", day(s))),
        Value::Object(o) => {
            let start = o.get("start").and_then(Value::as_str).map(day);
            let end = o.get("end").and_then(Value::as_str).map(day);
            match (start, end) {
                (Some(s), Some(e)) if s == e => Some(format!("eq{s}")),
                (Some(s), _) => Some(format!("ge{s}")),
                (None, Some(e)) => Some(format!("le{e}")),
                (None, None) => None,
            }
        }
        _ => None,
    }
}

fn day(s: &str) -> String {
    if s.len() > 10 {
        if let Ok(t) =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        {
            let t = t.to_offset(time::UtcOffset::UTC);
            return format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day());
        }
    }
    s.chars().take(10).collect()
}

/// A prefix of the first string part of a string, HumanName or Address.
fn string(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => ["family", "city", "text", "state", "postalCode"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .or_else(|| o.get("given").and_then(|g| g[0].as_str()))
            .or_else(|| o.get("line").and_then(|g| g[0].as_str()))?,
        _ => return None,
    };
    Some(s.chars().take(4).collect())
}

fn quantity(v: &Value) -> Option<String> {
    v["value"].as_f64()?;
    let n = v["value"].to_string();
    match (v["system"].as_str(), v["code"].as_str()) {
        (Some(s), Some(c)) => Some(format!("{n}|{s}|{c}")),
        _ => Some(n),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
