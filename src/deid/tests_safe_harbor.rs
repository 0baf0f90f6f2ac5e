//! The 18 HIPAA Safe Harbor identifiers (45 CFR §164.514(b)(2)(i)(A)-(R)):
//! resources carrying each of them go through the built-in profiles, and
//! the serialized output must hold no trace of the original values while
//! coded content stays.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use super::tests::{builtin, run, KEY};

/// One resource, the patient it is about, the identifying strings it
/// carries and coded strings that must survive.
struct Case {
    what: &'static str,
    resource: Value,
    patient: Option<&'static str>,
    secrets: &'static [&'static str],
    kept: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "Patient: (A) names incl. a relative's, (B) address, (C) birth and death dates, \
                   (D) phone, (E) fax, (F) email, (G) SSN, (H) MRN, (L) vehicle id in an extension, \
                   (N) URLs, (Q) photo, (R) narrative",
            resource: json!({
                "resourceType": "Patient", "id": "pat-7731",
                "meta": {"versionId": "3", "lastUpdated": "2024-01-02T03:04:05Z", "source": "#src-ehr-77",
                         "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
                "text": {"status": "generated",
                         "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Johnathan Doe-Smithers, MRN 55-12-998</div>"},
                "extension": [
                    {"url": "http://example.org/vehicle", "valueString": "VIN 1HGCM82633A004352"},
                    {"url": "http://example.org/homepage", "valueUrl": "https://johnathan-homepage.example.com"},
                    {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
                     "extension": [{"url": "ombCategory",
                                    "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2186-5",
                                                    "display": "Not Hispanic or Latino"}},
                                   {"url": "text", "valueString": "Ethnicity per Johnathan"}]}
                ],
                "identifier": [
                    {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789"},
                    {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                     "system": "urn:oid:1.2.3.4", "value": "MRN-00998877"}
                ],
                "name": [{"use": "official", "family": "Doe-Smithers", "given": ["Johnathan", "Quincy"]}],
                "telecom": [
                    {"system": "phone", "value": "617-555-0199", "use": "home"},
                    {"system": "fax", "value": "617-555-0142"},
                    {"system": "email", "value": "jqds@mailhost.example.org"},
                    {"system": "url", "value": "https://jqds.example.net/home"}
                ],
                "gender": "male",
                "birthDate": "1987-04-23",
                "deceasedDateTime": "2024-02-11T08:30:00-05:00",
                "address": [{"use": "home", "line": ["1234 Elmwood Avenue", "Apt 5B"], "city": "Cambridgeport",
                             "district": "Middlesex", "state": "MA", "postalCode": "02139", "country": "US",
                             "period": {"start": "2015-06-01"}}],
                "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}],
                                  "text": "Married to Janet Doe-Smithers"},
                "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
                             "name": {"family": "Doe-Smithers", "given": ["Janet"]},
                             "telecom": [{"system": "phone", "value": "617-555-0123"}],
                             "address": {"line": ["99 Relative Road"], "city": "Sommerton", "postalCode": "03601"}}],
                "photo": [{"contentType": "image/jpeg", "data": "RkFDRS1QSE9UTy1CWVRFUw==", "title": "face-of-johnathan.jpg"}],
                "managingOrganization": {"reference": "Organization/org-44", "display": "Cambridgeport Family Clinic"}
            }),
            patient: Some("pat-7731"),
            secrets: &[
                "pat-7731", "src-ehr-77", "2024-01-02", "Johnathan", "Quincy", "Doe-Smithers", "Janet",
                "55-12-998", "1HGCM82633A004352", "johnathan-homepage", "123-45-6789", "MRN-00998877",
                "617-555-0199", "617-555-0142", "617-555-0123", "jqds@mailhost", "jqds.example.net",
                "1987-04-23", "2024-02-11", "1234 Elmwood", "Apt 5B", "Cambridgeport", "Middlesex",
                "02139", "99 Relative Road", "Sommerton", "03601", "RkFDRS1QSE9UTy1CWVRFUw==",
                "face-of-johnathan", "org-44", "2015-06-01",
            ],
            kept: &["\"gender\":\"male\"", "\"state\":\"MA\"", "\"code\":\"M\"", "\"code\":\"2186-5\"",
                    "us-core-patient", "\"code\":\"N\""],
        },
        Case {
            what: "RelatedPerson: (A) relative's name, (B) address, (C) birth date, (D) phone, (F) email",
            resource: json!({
                "resourceType": "RelatedPerson", "id": "rp-1", "active": true,
                "patient": {"reference": "Patient/pat-7731", "display": "Johnathan Doe-Smithers"},
                "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "WIFE"}]}],
                "name": [{"text": "Janet Q. Doe-Smithers"}],
                "telecom": [{"system": "email", "value": "janet.ds@mailhost.example.org"},
                            {"system": "phone", "value": "+1 (617) 555-0177"}],
                "birthDate": "1989-12-30",
                "address": [{"text": "17 Garden Street, Cambridgeport MA 02139"}]
            }),
            patient: Some("pat-7731"),
            secrets: &["rp-1", "pat-7731", "Janet", "Doe-Smithers", "janet.ds", "555-0177", "1989-12-30",
                       "17 Garden Street", "02139"],
            kept: &["\"code\":\"WIFE\"", "\"birthDate\":\"1989\"", "\"active\":true"],
        },
        Case {
            what: "Patient aged 93: (C) birth date of someone over 89, restricted ZIP",
            resource: json!({
                "resourceType": "Patient", "id": "old-1", "gender": "female",
                "birthDate": "1933-03-01",
                "address": [{"postalCode": "05901", "state": "VT"}]
            }),
            patient: Some("old-1"),
            secrets: &["old-1", "1933", "05901"],
            kept: &["\"postalCode\":\"000\"", "\"gender\":\"female\""],
        },
        Case {
            what: "Observation: (C) age 93 as a quantity, contained resource name, note, Reference.display",
            resource: json!({
                "resourceType": "Observation", "id": "obs-age", "status": "final",
                "contained": [{"resourceType": "RelatedPerson", "id": "informant",
                               "name": [{"family": "Containedsky", "given": ["Wilhelmina"]}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "30525-0", "display": "Age"}], "text": "Age of Johnathan"},
                "subject": {"reference": "Patient/pat-7731", "display": "Johnathan Doe-Smithers"},
                "performer": [{"reference": "#informant", "display": "Wilhelmina Containedsky"}],
                "effectiveDateTime": "2023-03-20T08:00:00-05:00",
                "issued": "2023-03-20T09:12:13.456Z",
                "valueQuantity": {"value": 93, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"},
                "note": [{"authorString": "Dr. Zebulon Q", "text": "Patient drove in with plate MA-7GX-221"}]
            }),
            patient: Some("pat-7731"),
            secrets: &["obs-age", "informant", "Containedsky", "Wilhelmina", "Johnathan", "pat-7731",
                       "2023-03-20", "\"value\":93", "Zebulon", "MA-7GX-221"],
            kept: &["\"code\":\"30525-0\"", "\"status\":\"final\"", "\"value\":90", "\"comparator\":\">=\"",
                    "\"effectiveDateTime\":\"2023\""],
        },
        Case {
            what: "Encounter: (C) admission and discharge dates",
            resource: json!({
                "resourceType": "Encounter", "id": "enc-1", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": {"reference": "Patient/pat-7731"},
                "period": {"start": "2023-03-14T09:15:00Z", "end": "2023-03-19T17:40:00Z"},
                "hospitalization": {"dischargeDisposition": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "home"}]}}
            }),
            patient: Some("pat-7731"),
            secrets: &["enc-1", "2023-03-14", "2023-03-19"],
            kept: &["\"code\":\"IMP\"", "\"status\":\"finished\"", "\"code\":\"home\""],
        },
        Case {
            what: "Coverage: (I) health plan beneficiary number (subscriberId and identifier)",
            resource: json!({
                "resourceType": "Coverage", "id": "cov-1", "status": "active",
                "identifier": [{"system": "http://acmehealth.example.org/member", "value": "MBR-99887766"}],
                "subscriberId": "SUB-77-12345",
                "beneficiary": {"reference": "Patient/pat-7731"},
                "payor": [{"reference": "Organization/acme", "display": "Acme Health Plan of Cambridgeport"}],
                "class": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}]},
                           "value": "GRP-445566", "name": "Doe Family Group"}]
            }),
            patient: Some("pat-7731"),
            secrets: &["cov-1", "MBR-99887766", "SUB-77-12345", "Cambridgeport", "GRP-445566", "Doe Family"],
            kept: &["\"status\":\"active\"", "\"code\":\"group\""],
        },
        Case {
            what: "Account: (J) account number",
            resource: json!({
                "resourceType": "Account", "id": "acct-1", "status": "active",
                "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": "ACCT-5566778899"}],
                "name": "Doe-Smithers household",
                "subject": [{"reference": "Patient/pat-7731"}]
            }),
            patient: Some("pat-7731"),
            secrets: &["acct-1", "ACCT-5566778899", "Doe-Smithers"],
            kept: &["\"status\":\"active\""],
        },
        Case {
            what: "Practitioner: (K) license number, (A) name, (D) phone",
            resource: json!({
                "resourceType": "Practitioner", "id": "pr-1",
                "name": [{"family": "Okonkwo-Lindqvist", "prefix": ["Dr."]}],
                "telecom": [{"system": "phone", "value": "617-555-0100"}],
                "qualification": [{"identifier": [{"system": "http://example.org/ma-license", "value": "LIC-MA-778899"}],
                                   "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "MD"}]},
                                   "period": {"start": "2009-07-01"}}]
            }),
            patient: None,
            secrets: &["pr-1", "Okonkwo-Lindqvist", "617-555-0100", "LIC-MA-778899", "2009-07-01"],
            kept: &["\"code\":\"MD\""],
        },
        Case {
            what: "Device: (M) serial number, lot number, UDI carrier",
            resource: json!({
                "resourceType": "Device", "id": "dev-1", "status": "active",
                "udiCarrier": [{"deviceIdentifier": "00844588003288", "issuer": "http://hl7.org/fhir/NamingSystem/gs1-di",
                                "carrierHRF": "(01)00844588003288(17)141120(10)7654321D(21)10987654d321",
                                "entryType": "barcode"}],
                "serialNumber": "SN-XK9-334455",
                "lotNumber": "LOT-2024-7788",
                "manufactureDate": "2020-01-15",
                "type": {"coding": [{"system": "http://snomed.info/sct", "code": "14106009"}]},
                "patient": {"reference": "Patient/pat-7731"}
            }),
            patient: Some("pat-7731"),
            secrets: &["dev-1", "00844588003288", "10987654d321", "SN-XK9-334455", "LOT-2024-7788", "2020-01-15"],
            kept: &["\"code\":\"14106009\"", "\"status\":\"active\""],
        },
        Case {
            what: "Endpoint: (N) URL",
            resource: json!({
                "resourceType": "Endpoint", "id": "ep-1", "status": "active",
                "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "hl7-fhir-rest"},
                "name": "Johnathan's personal FHIR endpoint",
                "payloadType": [{"text": "any"}],
                "address": "https://fhir.johnathan-doe.example.com/r4"
            }),
            patient: None,
            secrets: &["ep-1", "johnathan-doe.example.com", "Johnathan"],
            kept: &["\"code\":\"hl7-fhir-rest\""],
        },
        Case {
            what: "AuditEvent: (O) IP address, in network.address and in free text",
            resource: json!({
                "resourceType": "AuditEvent", "id": "ae-1",
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
                "recorded": "2024-05-06T07:08:09Z",
                "agent": [{"who": {"reference": "Patient/pat-7731"}, "requestor": true,
                           "network": {"address": "192.168.44.201", "type": "2"}}],
                "source": {"observer": {"reference": "Device/dev-1"}},
                "entity": [{"what": {"reference": "Patient/pat-7731"}, "description": "lookup from 10.20.30.40"}]
            }),
            patient: Some("pat-7731"),
            secrets: &["ae-1", "192.168.44.201", "10.20.30.40", "2024-05-06", "pat-7731", "dev-1"],
            kept: &["\"code\":\"rest\"", "\"type\":\"2\""],
        },
        Case {
            what: "Location: (B) street address and geocode of a home-care location",
            resource: json!({
                "resourceType": "Location", "id": "loc-home", "status": "active",
                "name": "Doe-Smithers residence",
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "PTRES"}]}],
                "address": {"line": ["1234 Elmwood Avenue"], "city": "Cambridgeport", "state": "MA", "postalCode": "02139-4307"},
                "position": {"longitude": -71.104_331_7, "latitude": 42.362_789_1}
            }),
            patient: Some("pat-7731"),
            secrets: &["loc-home", "Doe-Smithers", "1234 Elmwood", "Cambridgeport", "02139", "-71.1043317", "42.3627891"],
            kept: &["\"code\":\"PTRES\"", "\"postalCode\":\"021\""],
        },
        Case {
            what: "Media: (P) biometric (fingerprint image data)",
            resource: json!({
                "resourceType": "Media", "id": "media-1", "status": "completed",
                "subject": {"reference": "Patient/pat-7731"},
                "modality": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "XC"}]},
                "content": {"contentType": "image/png", "data": "RklOR0VSUFJJTlQtREFUQS1YWVo=",
                            "url": "https://images.example.org/fingerprint-773.png", "title": "fingerprint of pat-7731"}
            }),
            patient: Some("pat-7731"),
            secrets: &["media-1", "RklOR0VSUFJJTlQtREFUQS1YWVo=", "fingerprint", "pat-7731"],
            kept: &["\"code\":\"XC\"", "\"status\":\"completed\""],
        },
        Case {
            what: "DocumentReference: (R) Attachment title/url, Reference.display",
            resource: json!({
                "resourceType": "DocumentReference", "id": "doc-1", "status": "current",
                "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
                "subject": {"reference": "Patient/pat-7731", "display": "Johnathan Doe-Smithers"},
                "date": "2023-03-19T18:00:00Z",
                "description": "Discharge summary, room 4411",
                "content": [{"attachment": {"contentType": "application/pdf", "title": "Discharge summary for Johnathan",
                                            "url": "https://docs.example.org/ds-8812.pdf", "size": 12345},
                             "format": {"system": "http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}}]
            }),
            patient: Some("pat-7731"),
            secrets: &["doc-1", "Johnathan", "ds-8812", "room 4411", "2023-03-19"],
            kept: &["\"code\":\"18842-5\"", "\"status\":\"current\""],
        },
        Case {
            what: "Condition: (R) unique number in an extension valueString and in text",
            resource: json!({
                "resourceType": "Condition", "id": "cond-1",
                "extension": [{"url": "http://example.org/trial", "valueString": "Trial subject ZQ-55-0042"}],
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}], "text": "Diabetes, badge 7765"},
                "subject": {"reference": "Patient/pat-7731"},
                "onsetAge": {"value": 91, "unit": "yr", "system": "http://unitsofmeasure.org", "code": "a"},
                "recordedDate": "2021-11-30"
            }),
            patient: Some("pat-7731"),
            secrets: &["cond-1", "ZQ-55-0042", "badge 7765", "2021-11-30", "\"value\":91"],
            kept: &["\"code\":\"44054006\"", "\"code\":\"active\"", "\"recordedDate\":\"2021\""],
        },
    ]
}

fn check(profile: &str, skip_year_only_checks: bool) {
    let d = builtin(profile, KEY, false);
    for case in cases() {
        let out = run(&d, case.resource.clone(), case.patient);
        let text = serde_json::to_string(&out).unwrap();
        for secret in case.secrets {
            assert!(
                !text.contains(secret),
                "{profile}: {}: `{secret}` survived in\n{text}",
                case.what
            );
        }
        for kept in case.kept {
            if skip_year_only_checks
                && (kept.contains("Date") || kept.contains("\"20") || kept.contains(":\"19"))
            {
                continue;
            }
            assert!(
                text.contains(kept),
                "{profile}: {}: `{kept}` lost in\n{text}",
                case.what
            );
        }
        assert!(text.contains("\"code\":\"ANONYED\""), "{text}");
    }
}

#[test]
fn safe_harbor_removes_all_18_identifiers_and_keeps_codes() {
    check("safe-harbor", false);
}

#[test]
fn safe_harbor_shifted_removes_all_18_identifiers_and_keeps_codes() {
    check("safe-harbor-shifted", true);
}

#[test]
fn safe_harbor_generalizes_dates_to_the_year() {
    let d = builtin("safe-harbor", KEY, false);
    let out = run(&d, cases().swap_remove(0).resource, Some("pat-7731"));
    assert_eq!(out["birthDate"], json!("1987"));
    assert_eq!(out["deceasedDateTime"], json!("2024"));
    assert_eq!(
        out["address"],
        json!([{"use": "home", "state": "MA", "postalCode": "021", "country": "US", "period": {"start": "2015"}}])
    );
    assert_eq!(out["contact"][0]["address"], json!({"postalCode": "000"}));
    assert!(
        out.get("name").is_none() && out.get("telecom").is_none() && out.get("photo").is_none()
    );
    assert!(out.get("text").is_none() && out.get("identifier").is_none());
    assert_eq!(
        out["managingOrganization"],
        json!({"reference": format!("Organization/{}", d.pseudonym("org-44"))})
    );
}

#[test]
fn safe_harbor_shifted_hashes_identifiers_and_shifts_dates() {
    let d = builtin("safe-harbor-shifted", KEY, true);
    let out = run(&d, cases().swap_remove(0).resource, Some("pat-7731"));
    assert_eq!(
        out["identifier"][1]["value"],
        json!(d.pseudonym("MRN-00998877"))
    );
    assert_eq!(out["identifier"][1]["system"], json!("urn:oid:1.2.3.4"));
    let birth = out["birthDate"].as_str().unwrap();
    assert_eq!(birth.len(), 10);
    assert_ne!(birth, "1987-04-23");
    assert!(out["meta"]["security"].to_string().contains("PSEUDED"));
}
