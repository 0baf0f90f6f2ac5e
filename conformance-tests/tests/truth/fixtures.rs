//! The resources the truth test writes: for every resource type one rich
//! instance that sets an element for each search parameter fhirgate
//! declares (so a type with no seeded data can still be exercised), plus
//! the bodies of the operations (a PAS request Bundle shaped like the Da
//! Vinci PAS IG's examples, HRex `$member-match` Parameters, DTR package
//! requests).
//!
//! References are written `"@Type"` and resolved to an existing resource
//! of that type by [`resolve`] just before the resource is created.

use serde_json::{json, Value};

/// CPT, the code system of requested services.
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
/// A DTR questionnaire fhirgate ships (`$questionnaire-package`).
pub const KNEE: &str = "http://example.org/fhir/Questionnaire/imaging-knee|1.0";
/// The adaptive DTR questionnaire (`$next-question`).
pub const ADAPTIVE: &str = "http://example.org/fhir/Questionnaire/knee-arthroplasty-adaptive|1.0";
/// HRex Consent policy "regular" (`$member-match`).
pub const POLICY_REGULAR: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#regular";
/// The canonical URL of the Questionnaire fixture.
pub const QUESTIONNAIRE_URL: &str = "http://example.org/truth/Questionnaire/truth-form";

const LOINC: &str = "http://loinc.org";
const SCT: &str = "http://snomed.info/sct";

/// `meta` every fixture carries (the `_tag`, `_security`, `_profile` and
/// `_source` parameters need values).
fn meta(rtype: &str) -> Value {
    json!({
        "tag": [{"system": "urn:truth:tag", "code": "truth"}],
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "HTEST"}],
        "profile": [format!("http://hl7.org/fhir/StructureDefinition/{rtype}")],
        "source": "urn:truth:fixtures"
    })
}

fn cc(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn ident(tag: &str) -> Value {
    json!([{"system": "urn:truth:id", "value": format!("truth-{tag}")}])
}

fn r(placeholder: &str) -> Value {
    json!({"reference": placeholder})
}

/// The fixtures of `rtype` (the first is "the" fixture; more cover
/// choice-type elements one instance cannot hold). Empty: none written.
pub fn fixtures(rtype: &str) -> Vec<Value> {
    let mut list = clinical(rtype);
    if list.is_empty() {
        list = administrative(rtype);
    }
    if list.is_empty() {
        list = financial(rtype);
    }
    for (i, f) in list.iter_mut().enumerate() {
        f["resourceType"] = json!(rtype);
        f["meta"] = meta(rtype);
        if f.get("identifier").is_none() && !matches!(rtype, "Subscription" | "AuditEvent") {
            let tag = format!("{}-{i}", rtype.to_ascii_lowercase());
            f["identifier"] = if matches!(rtype, "QuestionnaireResponse") {
                ident(&tag)[0].clone()
            } else {
                ident(&tag)
            };
        }
    }
    list
}

fn clinical(rtype: &str) -> Vec<Value> {
    match rtype {
        "Observation" => {
            let base = json!({
                "status": "final",
                "category": [cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")],
                "code": cc(LOINC, "2345-7"),
                "component": [
                    {"code": cc(LOINC, "8480-6"), "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                    {"code": cc(LOINC, "8462-4"), "valueCodeableConcept": cc(SCT, "260385009")},
                    {"code": cc(LOINC, "8867-4"), "dataAbsentReason": cc("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown")}
                ],
                "device": r("@Device"), "focus": [r("@Patient")], "method": cc(SCT, "272394005"),
                "subject": r("@Patient"), "encounter": r("@Encounter"),
                "effectiveDateTime": "2024-03-05T10:00:00Z",
                "basedOn": [r("@ServiceRequest")], "performer": [r("@Practitioner")],
                "hasMember": [r("@Observation")], "derivedFrom": [r("@DocumentReference")],
                "specimen": r("@Specimen"),
                "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
            });
            let with = |k: &str, v: Value| {
                let mut o = base.clone();
                if let Some(m) = o.as_object_mut() {
                    m.remove("valueQuantity");
                    m.insert(k.to_owned(), v);
                }
                o
            };
            vec![
                base.clone(),
                with("valueCodeableConcept", cc(SCT, "260385009")),
                with("valueString", json!("truthful reading")),
                with(
                    "dataAbsentReason",
                    cc(
                        "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                        "not-performed",
                    ),
                ),
                with("valueDateTime", json!("2024-03-06")),
                period_variant(
                    with(
                        "valuePeriod",
                        json!({"start": "2024-03-01", "end": "2024-03-04"}),
                    ),
                    "effectiveDateTime",
                    "effectivePeriod",
                ),
            ]
        }
        "Condition" => {
            let base = json!({
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
            "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
            "category": [cc("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")],
            "code": cc(SCT, "44054006"), "subject": r("@Patient"), "encounter": r("@Encounter"),
            "onsetDateTime": "2020-02-03", "abatementDateTime": "2023-04-05",
            "recordedDate": "2020-02-04", "asserter": r("@Practitioner"),
            "bodySite": [cc(SCT, "368209003")], "severity": cc(SCT, "24484000"),
            "stage": [{"summary": cc(SCT, "258215001")}],
            "evidence": [{"code": [cc(SCT, "386661006")], "detail": [r("@Observation")]}]
            });
            let periods = period_variant(
                period_variant(base.clone(), "onsetDateTime", "onsetPeriod"),
                "abatementDateTime",
                "abatementPeriod",
            );
            vec![base, periods]
        }
        "Encounter" => vec![json!({
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [cc(SCT, "185349003")], "subject": r("@Patient"),
            "participant": [{"individual": r("@Practitioner"), "type": [cc("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF")]}],
            "period": {"start": "2024-02-01T09:00:00Z", "end": "2024-02-01T09:30:00Z"},
            "reasonCode": [cc(SCT, "44054006")], "reasonReference": [r("@Condition")],
            "hospitalization": {"dischargeDisposition": cc("http://terminology.hl7.org/CodeSystem/discharge-disposition", "home"),
                                "specialArrangement": [cc("http://terminology.hl7.org/CodeSystem/encounter-special-arrangements", "wheel")]},
            "location": [{"location": r("@Location"), "period": {"start": "2024-02-01T09:00:00Z", "end": "2024-02-01T09:30:00Z"}}],
            "serviceProvider": r("@Organization")
        })],
        "AllergyIntolerance" => vec![
            json!({
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
            "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed"),
            "category": ["medication"], "criticality": "high", "code": cc(SCT, "91936005"),
            "patient": r("@Patient"), "recordedDate": "2022-06-07",
            "recorder": r("@Practitioner"), "asserter": r("@Patient"),
            "type": "allergy", "lastOccurrence": "2023-01-02"
            }),
            // the code only as a reaction's substance
            json!({
                "patient": r("@Patient"), "reaction": [{"substance": cc(SCT, "256349002"),
                    "manifestation": [cc(SCT, "39579001")], "onset": "2022-06-01",
                    "severity": "severe", "exposureRoute": cc(SCT, "26643006")}]
            }),
        ],
        "Immunization" => vec![json!({
            "status": "completed", "vaccineCode": cc("http://hl7.org/fhir/sid/cvx", "140"),
            "patient": r("@Patient"), "occurrenceDateTime": "2023-10-11",
            "performer": [{"actor": r("@Practitioner")}], "location": r("@Location"),
            "lotNumber": "LOT-7", "manufacturer": r("@Organization"),
            "statusReason": cc("http://terminology.hl7.org/CodeSystem/v3-ActReason", "MEDPREC"),
            "reasonCode": [cc(SCT, "281657000")], "reasonReference": [r("@Condition")],
            "reaction": [{"date": "2023-10-12", "detail": r("@Observation")}],
            "protocolApplied": [{"series": "Truth series", "targetDisease": [cc(SCT, "840539006")], "doseNumberPositiveInt": 1}]
        })],
        "Procedure" => {
            let base = json!({
            "status": "completed", "category": cc(SCT, "387713003"), "code": cc(SCT, "80146002"),
            "subject": r("@Patient"), "encounter": r("@Encounter"),
            "performedDateTime": "2022-01-02", "performer": [{"actor": r("@Practitioner")}],
            "basedOn": [r("@ServiceRequest")], "location": r("@Location"),
            "instantiatesUri": ["http://example.org/truth/procedure-protocol"],
            "reasonCode": [cc(SCT, "44054006")], "reasonReference": [r("@Condition")]
            });
            vec![
                base.clone(),
                period_variant(base, "performedDateTime", "performedPeriod"),
            ]
        }
        "DiagnosticReport" => {
            let base = json!({
            "status": "final", "category": [cc("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB")],
            "code": cc(LOINC, "24323-8"), "subject": r("@Patient"), "encounter": r("@Encounter"),
            "effectiveDateTime": "2024-03-05", "issued": "2024-03-05T12:00:00Z",
            "result": [r("@Observation")], "basedOn": [r("@ServiceRequest")],
            "performer": [r("@Practitioner")], "specimen": [r("@Specimen")],
            "resultsInterpreter": [r("@Practitioner")], "conclusionCode": [cc(SCT, "281900007")]
            });
            vec![
                base.clone(),
                period_variant(base, "effectiveDateTime", "effectivePeriod"),
            ]
        }
        "DocumentReference" => vec![json!({
            "status": "current", "type": cc(LOINC, "34133-9"),
            "category": [cc("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note")],
            "subject": r("@Patient"), "date": "2024-03-05T12:00:00Z",
            "author": [r("@Practitioner")], "custodian": r("@Organization"),
            "authenticator": r("@Organization"), "description": "Truthful note",
            "securityLabel": [cc("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N")],
            "content": [{"attachment": {"contentType": "text/plain", "data": "dHJ1dGg=", "language": "en-US",
                                        "url": "http://example.org/truth/note.txt"},
                         "format": {"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}}],
            "context": {"encounter": [r("@Encounter")], "period": {"start": "2024-03-05", "end": "2024-03-05"},
                        "event": [cc(SCT, "73761001")], "facilityType": cc(SCT, "225732001"),
                        "practiceSetting": cc(SCT, "394802001"), "related": [r("@Patient")]}
        })],
        "MedicationRequest" => vec![
            json!({
                "status": "active", "intent": "order",
                "category": [cc("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "outpatient")],
                "medicationCodeableConcept": cc("http://www.nlm.nih.gov/research/umls/rxnorm", "197361"),
                "subject": r("@Patient"), "encounter": r("@Encounter"),
                "authoredOn": "2024-01-15", "requester": r("@Practitioner"),
                "priority": "routine", "performer": r("@Practitioner"), "performerType": cc(SCT, "46255001"),
                "dispenseRequest": {"performer": r("@Organization")},
                "dosageInstruction": [{"timing": {"event": ["2024-01-20"]}}]
            }),
            json!({
                "status": "active", "intent": "order", "medicationReference": r("@Medication"),
                "subject": r("@Patient"), "authoredOn": "2024-01-16", "requester": r("@Practitioner")
            }),
        ],
        "Medication" => vec![json!({
            "status": "active", "code": cc("http://www.nlm.nih.gov/research/umls/rxnorm", "197361"),
            "form": cc(SCT, "385055001"), "manufacturer": r("@Organization"),
            "ingredient": [{"itemCodeableConcept": cc("http://www.nlm.nih.gov/research/umls/rxnorm", "1191")}],
            "batch": {"lotNumber": "B-1", "expirationDate": "2026-01-01"}
        })],
        "CarePlan" => vec![json!({
            "status": "active", "intent": "plan",
            "category": [cc("http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "assess-plan")],
            "subject": r("@Patient"), "encounter": r("@Encounter"),
            "period": {"start": "2024-01-01", "end": "2024-01-01"}, "careTeam": [r("@CareTeam")],
            "instantiatesUri": ["http://example.org/truth/care-protocol"],
            "activity": [
                {"detail": {"status": "scheduled", "code": cc(SCT, "229065009"),
                            "scheduledPeriod": {"start": "2024-01-05", "end": "2024-01-05"},
                            "performer": [r("@Practitioner")]}},
                {"reference": r("@ServiceRequest")}
            ]
        })],
        "CareTeam" => vec![json!({
            "status": "active", "name": "Truth team", "category": [cc(LOINC, "LA27976-2")], "subject": r("@Patient"),
            "encounter": r("@Encounter"), "period": {"start": "2024-01-01", "end": "2024-01-01"},
            "participant": [{"role": [cc(SCT, "223366009")], "member": r("@Practitioner")}]
        })],
        "Goal" => vec![json!({
            "lifecycleStatus": "active",
            "achievementStatus": cc("http://terminology.hl7.org/CodeSystem/goal-achievement", "improving"),
            "category": [cc("http://terminology.hl7.org/CodeSystem/goal-category", "dietary")],
            "description": cc(SCT, "289169006"), "subject": r("@Patient"),
            "startDate": "2024-01-02", "target": [{"dueDate": "2024-12-31"}]
        })],
        "Device" => vec![
            json!({
                "status": "active", "type": cc(SCT, "14106009"), "patient": r("@Patient"),
                "deviceName": [{"name": "Truthmeter", "type": "user-friendly-name"}],
                "manufacturer": "Veritas Devices", "modelNumber": "VX-1",
                "owner": r("@Organization"), "location": r("@Location"),
                "url": "http://example.org/truth/device",
                "udiCarrier": [{"deviceIdentifier": "00844588003288", "carrierHRF": "(01)00844588003288"}]
            }),
            // named only by its type's text
            json!({"status": "active", "type": {"text": "Veritas sensor"}, "patient": r("@Patient")}),
        ],
        "Specimen" => {
            let base = json!({
            "status": "available", "type": cc("http://terminology.hl7.org/CodeSystem/v2-0487", "BLD"),
            "subject": r("@Patient"),
            "accessionIdentifier": {"system": "urn:truth:accession", "value": "ACC-1"},
            "collection": {"collectedDateTime": "2024-03-05T08:00:00Z", "collector": r("@Practitioner"),
                           "bodySite": cc(SCT, "368208006")},
            "container": [{"identifier": [{"system": "urn:truth:container", "value": "C-1"}], "type": cc(SCT, "702281005")}]
            });
            let mut period = base.clone();
            period["collection"] =
                json!({"collectedPeriod": {"start": "2024-03-05", "end": "2024-03-07"}});
            vec![base, period]
        }
        "ServiceRequest" => {
            let base = json!({
            "status": "active", "intent": "order", "category": [cc(SCT, "387713003")],
            "code": cc(CPT, "73721"), "subject": r("@Patient"), "encounter": r("@Encounter"),
            "authoredOn": "2024-02-02", "occurrenceDateTime": "2024-02-20",
            "requester": r("@Practitioner"), "performer": [r("@Organization")],
            "bodySite": [cc(SCT, "368209003")], "orderDetail": [cc(SCT, "373066001")],
            "performerType": cc(SCT, "46255001"), "priority": "routine",
            "reasonCode": [cc(SCT, "44054006")], "specimen": [r("@Specimen")],
            "requisition": {"system": "urn:truth:requisition", "value": "REQ-1"},
            "instantiatesUri": ["http://example.org/truth/order-protocol"]
            });
            vec![
                base.clone(),
                period_variant(base, "occurrenceDateTime", "occurrencePeriod"),
            ]
        }
        _ => Vec::new(),
    }
}

fn administrative(rtype: &str) -> Vec<Value> {
    let address = json!([{"use": "home", "line": ["1 Veritas Way"], "city": "Truthton", "state": "MA", "postalCode": "02139", "country": "US"}]);
    match rtype {
        "Patient" => vec![json!({
            "active": true, "name": [{"family": "Veracity", "given": ["Tru"]}],
            "gender": "female", "birthDate": "1980-05-06", "deceasedDateTime": "2024-01-01",
            "address": address,
            "telecom": [{"system": "phone", "value": "555-0100"}, {"system": "email", "value": "tru@example.org"}],
            "communication": [{"language": cc("urn:ietf:bcp:47", "en-US")}],
            "managingOrganization": r("@Organization"),
            "generalPractitioner": [r("@Practitioner")],
            "link": [{"other": r("@Patient"), "type": "seealso"}]
        })],
        "Practitioner" => vec![json!({
            "active": true, "name": [{"family": "Veritas", "given": ["Vera"]}], "address": address,
            "telecom": [{"system": "phone", "value": "555-0101"}, {"system": "email", "value": "vera@example.org"}],
            "communication": [cc("urn:ietf:bcp:47", "en")],
            "qualification": [{"code": cc("http://terminology.hl7.org/CodeSystem/v2-0360", "MD")}]
        })],
        "PractitionerRole" => vec![json!({
            "active": true, "practitioner": r("@Practitioner"), "organization": r("@Organization"),
            "location": [r("@Location")], "code": [cc("http://nucc.org/provider-taxonomy", "208D00000X")],
            "specialty": [cc("http://nucc.org/provider-taxonomy", "208D00000X")],
            "period": {"start": "2024-01-01", "end": "2024-01-01"},
            "telecom": [{"system": "phone", "value": "555-0103"}, {"system": "email", "value": "role@example.org"}]
        })],
        "Organization" => vec![json!({
            "active": true, "name": "Truth Clinic", "address": address,
            "type": [cc("http://terminology.hl7.org/CodeSystem/organization-type", "prov")],
            "partOf": r("@Organization")
        })],
        "Location" => vec![json!({
            "status": "active", "name": "Truth Wing", "address": address[0],
            "type": [cc("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "HOSP")],
            "operationalStatus": {"system": "http://terminology.hl7.org/CodeSystem/v2-0116", "code": "O"},
            "physicalType": cc("http://terminology.hl7.org/CodeSystem/location-physical-type", "wi"),
            "managingOrganization": r("@Organization"), "partOf": r("@Location")
        })],
        "RelatedPerson" => vec![json!({
            "active": true, "patient": r("@Patient"),
            "relationship": [cc("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "MTH")],
            "name": [{"family": "Veracity", "given": ["Ma"]}], "gender": "female",
            "birthDate": "1950-01-02", "address": address,
            "telecom": [{"system": "phone", "value": "555-0102"}, {"system": "email", "value": "ma@example.org"}]
        })],
        "Group" => vec![json!({
            "type": "person", "actual": true, "name": "Truth cohort", "code": cc("urn:truth:group", "cohort"),
            "characteristic": [{"code": cc(SCT, "263495000"), "valueBoolean": true, "exclude": false}],
            "member": [{"entity": r("@Patient")}], "managingEntity": r("@Organization")
        })],
        "Provenance" => vec![json!({
            "target": [r("@Patient")], "recorded": "2024-03-05T12:00:00Z",
            "occurredDateTime": "2024-03-05T11:00:00Z", "location": r("@Location"),
            "agent": [{"type": cc("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author"),
                       "role": [cc("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "AUT")],
                       "who": r("@Practitioner")}],
            "signature": [{"type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}],
                           "when": "2024-03-05T12:00:00Z", "who": r("@Practitioner")}],
            "entity": [{"role": "source", "what": r("@DocumentReference")}]
        })],
        "Questionnaire" => vec![json!({
            "url": QUESTIONNAIRE_URL, "version": "1.0", "name": "TruthForm", "title": "Truth form",
            "status": "active", "date": "2024-01-01",
            "description": "Truthful questions", "publisher": "Truth Inc",
            "jurisdiction": [cc("urn:iso:std:iso:3166", "US")], "subjectType": ["Patient"],
            "effectivePeriod": {"start": "2024-01-01", "end": "2024-01-01"},
            "useContext": [{"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus"},
                            "valueCodeableConcept": cc(SCT, "44054006")}],
            "item": [{"linkId": "q1", "text": "True?", "type": "boolean", "code": [{"system": LOINC, "code": "LA33-6"}],
                      "definition": "http://example.org/truth/StructureDefinition/truth#Observation.value"}]
        })],
        "QuestionnaireResponse" => vec![json!({
            "questionnaire": QUESTIONNAIRE_URL, "status": "completed",
            "subject": r("@Patient"), "encounter": r("@Encounter"),
            "authored": "2024-03-05T12:00:00Z", "author": r("@Practitioner"),
            "basedOn": [r("@ServiceRequest")], "source": r("@Patient"),
            "item": [{"linkId": "q1", "answer": [{"valueBoolean": true}]}]
        })],
        "Consent" => vec![json!({
            "status": "active",
            "scope": cc("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
            "category": [cc(LOINC, "59284-0")], "patient": r("@Patient"),
            "dateTime": "2024-01-01T00:00:00Z", "performer": [r("@Patient")],
            "organization": [r("@Organization")], "sourceReference": r("@DocumentReference"),
            "policyRule": cc("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN"),
            "provision": {
                "type": "permit", "period": {"start": "2024-01-01", "end": "2024-01-01"},
                "actor": [{"role": cc("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"), "reference": r("@Organization")}],
                "action": [cc("http://terminology.hl7.org/CodeSystem/consentaction", "access")],
                "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
                "data": [{"meaning": "related", "reference": r("@Observation")}]
            }
        })],
        "Task" => vec![json!({
            "status": "requested", "intent": "order",
            "businessStatus": {"text": "waiting", "coding": [{"system": "urn:truth:business-status", "code": "waiting"}]},
            "code": cc("http://hl7.org/fhir/CodeSystem/task-code", "fulfill"),
            "for": r("@Patient"), "focus": r("@ServiceRequest"), "basedOn": [r("@ServiceRequest")],
            "owner": r("@Practitioner"), "requester": r("@Practitioner"),
            "authoredOn": "2024-03-05T12:00:00Z", "lastModified": "2024-03-06T12:00:00Z",
            "encounter": r("@Encounter"), "priority": "routine",
            "groupIdentifier": {"system": "urn:truth:task-group", "value": "G-1"},
            "performerType": [cc("http://hl7.org/fhir/task-performer-type", "performer")],
            "executionPeriod": {"start": "2024-03-05", "end": "2024-03-07"}
        })],
        "Subscription" => vec![subscription()],
        _ => Vec::new(),
    }
}

fn financial(rtype: &str) -> Vec<Value> {
    match rtype {
        "Coverage" => vec![json!({
            "status": "active", "type": cc("http://terminology.hl7.org/CodeSystem/v3-ActCode", "HIP"),
            "subscriberId": "TRUTH-1", "beneficiary": r("@Patient"), "subscriber": r("@Patient"),
            "policyHolder": r("@Patient"), "payor": [r("@Organization")], "dependent": "01",
            "class": [{"type": cc("http://terminology.hl7.org/CodeSystem/coverage-class", "group"), "value": "GRP-1"}]
        })],
        "Claim" => vec![json!({
            "status": "active", "use": "preauthorization",
            "type": cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
            "patient": r("@Patient"), "created": "2024-03-05T12:00:00Z",
            "provider": r("@Organization"), "insurer": r("@Organization"), "enterer": r("@Practitioner"),
            "facility": r("@Location"), "careTeam": [{"sequence": 1, "provider": r("@Practitioner")}],
            "priority": cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
            "payee": {"type": cc("http://terminology.hl7.org/CodeSystem/payeetype", "provider"), "party": r("@Organization")},
            "insurance": [{"sequence": 1, "focal": true, "coverage": r("@Coverage")}],
            "item": [{"sequence": 1, "productOrService": cc(CPT, "73721"), "encounter": [r("@Encounter")]}]
        })],
        "ClaimResponse" => vec![json!({
            "status": "active", "use": "preauthorization", "outcome": "complete",
            "type": cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
            "patient": r("@Patient"), "created": "2024-03-05T12:00:00Z",
            "insurer": r("@Organization"), "requestor": r("@Organization"), "request": r("@Claim"),
            "disposition": "Truthfully approved",
            "payment": {"date": "2024-03-10", "amount": {"value": 10, "currency": "USD"}}
        })],
        "ExplanationOfBenefit" => vec![json!({
            "status": "active", "use": "claim", "outcome": "complete",
            "type": cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
            "patient": r("@Patient"), "created": "2024-03-05T12:00:00Z",
            "billablePeriod": {"start": "2024-03-01", "end": "2024-03-01"},
            "insurer": r("@Organization"), "provider": r("@Organization"), "claim": r("@Claim"),
            "disposition": "Truthfully paid", "enterer": r("@Practitioner"), "facility": r("@Location"),
            "payee": {"type": cc("http://terminology.hl7.org/CodeSystem/payeetype", "provider"), "party": r("@Organization")},
            "careTeam": [{"sequence": 1, "provider": r("@Practitioner")}],
            "insurance": [{"focal": true, "coverage": r("@Coverage")}],
            "item": [{"sequence": 1, "productOrService": cc(CPT, "73721"), "servicedDate": "2024-03-01", "encounter": [r("@Encounter")]}]
        })],
        _ => Vec::new(),
    }
}

/// `res` with its dateTime element `from` replaced by a three-day Period
/// `to` (so a date search must compare ranges, R4 search.html#date).
fn period_variant(mut res: Value, from: &str, to: &str) -> Value {
    if let Some(o) = res.as_object_mut() {
        o.remove(from);
        o.insert(
            to.to_owned(),
            json!({"start": "2023-07-01T08:00:00Z", "end": "2023-07-03T17:00:00Z"}),
        );
    }
    res
}

/// A PAS-style rest-hook Subscription to a loopback endpoint nothing serves.
fn subscription() -> Value {
    json!({
        "status": "requested", "reason": "truth test",
        "criteria": "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic",
        "_criteria": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
                                     "valueString": "orgIdentifier=http://hl7.org/fhir/sid/us-npi|8189991234"}]},
        "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/truth-hook",
                    "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
                                                "valueCode": "id-only"}]}}
    })
}

/// Replaces every `"@Type"` string by `Type/<id>` from `world` (the type's
/// known resource); an unknown type is an error naming it.
pub fn resolve(v: &mut Value, world: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    match v {
        Value::String(s) if s.starts_with('@') => {
            let t = &s[1..];
            let id = world(t).ok_or_else(|| format!("no {t} exists to reference"))?;
            *s = format!("{t}/{id}");
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| resolve(x, world)),
        Value::Object(o) => o.values_mut().try_for_each(|x| resolve(x, world)),
        _ => Ok(()),
    }
}

/// A PAS Request Bundle (Da Vinci PAS 2.0.1, shaped like the IG's
/// examples): the Claim first, then its beneficiary, requestor, insurer,
/// coverage and requested service. `inquiry` marks the Claim as a PAS
/// inquiry.
pub fn pas_request(claim_id: &str, inquiry: bool) -> Value {
    let mut claim = json!({
        "resourceType": "Claim", "id": "ReferralClaim",
        "identifier": [{"system": "urn:trnorg:9012345678", "value": claim_id}],
        "status": "active",
        "type": cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
        "use": "preauthorization", "patient": r("Patient/SubscriberExample"),
        "created": "2026-11-20T10:00:00Z", "insurer": r("Organization/InsurerExample"),
        "provider": r("Organization/UMOExample"),
        "priority": cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
        "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": cc("http://hl7.org/fhir/sid/icd-10-cm", "M17.11")}],
        "insurance": [{"sequence": 1, "focal": true, "coverage": r("Coverage/InsuranceExample")}],
        "item": [{
            "extension": [{"url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-requestedService",
                           "valueReference": r("ServiceRequest/ReferralRequest")}],
            "sequence": 1, "category": cc("https://codesystem.x12.org/005010/1365", "3"),
            "productOrService": cc(CPT, "97110"), "quantity": {"value": 6}
        }]
    });
    if inquiry {
        claim["meta"] = json!({"profile": ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim-inquiry"]});
    }
    let entry = |rtype: &str, id: &str, res: Value| json!({"fullUrl": format!("http://example.org/fhir/{rtype}/{id}"), "resource": res});
    json!({
        "resourceType": "Bundle", "type": "collection", "timestamp": "2026-11-20T10:00:00Z",
        "identifier": {"system": "http://example.org/SUBMITTER_TRANSACTION_IDENTIFIER", "value": format!("tx-{claim_id}")},
        "entry": [
            entry("Claim", "ReferralClaim", claim),
            entry("Patient", "SubscriberExample", json!({"resourceType": "Patient", "id": "SubscriberExample",
                "identifier": [{"system": "http://example.org/MIN", "value": "12345678901"}],
                "name": [{"family": "SMITH", "given": ["JOE"]}], "gender": "male", "birthDate": "1970-01-01"})),
            entry("Organization", "UMOExample", json!({"resourceType": "Organization", "id": "UMOExample",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "8189991234"}],
                "active": true, "name": "DR. JOE SMITH CORPORATION"})),
            entry("Organization", "InsurerExample", json!({"resourceType": "Organization", "id": "InsurerExample",
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.642.40.24.0", "value": "789312"}],
                "active": true, "name": "MARYLAND CAPITAL INSURANCE COMPANY"})),
            entry("Coverage", "InsuranceExample", json!({"resourceType": "Coverage", "id": "InsuranceExample",
                "status": "active", "subscriberId": "12345678901",
                "beneficiary": r("Patient/SubscriberExample"),
                "relationship": cc("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self"),
                "payor": [r("Organization/InsurerExample")]})),
            entry("ServiceRequest", "ReferralRequest", json!({"resourceType": "ServiceRequest", "id": "ReferralRequest",
                "status": "active", "intent": "order", "code": cc(CPT, "97110"),
                "subject": r("Patient/SubscriberExample"), "quantityQuantity": {"value": 6}}))
        ]
    })
}

/// HRex `$member-match` parts for a seeded `patient` covered under `member_id`.
pub fn member_match_parts(patient: &Value, member_id: &str) -> Vec<Value> {
    let described = json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://new-payer.example.org/member", "value": "NP-1"}],
        "name": patient["name"], "gender": patient["gender"], "birthDate": patient["birthDate"]
    });
    let coverage = json!({
        "resourceType": "Coverage", "id": "9876B1", "status": "active", "subscriberId": member_id,
        "identifier": [{"type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MB"), "value": member_id}],
        "beneficiary": r("Patient/1"),
        "payor": [{"identifier": {"system": "urn:oid:2.16.840.1.113883.6.300", "value": "99901"}, "display": "Acme Health Plan"}]
    });
    let consent = json!({
        "resourceType": "Consent", "status": "active",
        "scope": cc("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
        "category": [cc("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IDSCL")],
        "patient": r("Patient/1"), "policy": [{"uri": POLICY_REGULAR}],
        "provision": {"type": "permit", "period": {"start": "2024-01-01", "end": "2035-12-31"},
                      "action": [cc("http://terminology.hl7.org/CodeSystem/consentaction", "disclose")]}
    });
    vec![
        json!({"name": "MemberPatient", "resource": described}),
        json!({"name": "CoverageToMatch", "resource": coverage}),
        json!({"name": "CoverageToLink", "resource": {"resourceType": "Coverage", "status": "active", "subscriberId": "NP-1",
            "beneficiary": r("Patient/1"), "payor": [{"display": "New Plan"}]}}),
        json!({"name": "Consent", "resource": consent}),
    ]
}

/// A DTR `$questionnaire-package` request for `patient`'s coverage.
pub fn package_request(patient: &str, questionnaire: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "coverage", "resource": {"resourceType": "Coverage", "id": "cov1", "status": "active",
            "beneficiary": r(&format!("Patient/{patient}")), "payor": [r("Organization/payer1")]}},
        {"name": "questionnaire", "valueCanonical": questionnaire}
    ]})
}

/// `Parameters` of `parts`.
pub fn parameters(parts: Vec<Value>) -> Value {
    json!({"resourceType": "Parameters", "parameter": parts})
}
