//! Engine tests: pseudonyms and references, date shifting, ages and ZIP
//! codes, security tags, perturb, substitute, keep, meta, cryptoHash.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::date;
use time::Date;

use super::{Deidentifier, Profile};

pub(super) const KEY: [u8; 32] = [7; 32];
pub(super) const OTHER_KEY: [u8; 32] = [9; 32];

pub(super) fn today() -> Date {
    date!(2026 - 06 - 15)
}

/// A Deidentifier for a built-in profile.
pub(super) fn builtin(name: &str, key: [u8; 32], stable: bool) -> Deidentifier {
    let profile = Profile::builtin(name).expect("built-in profile");
    Deidentifier::new(Arc::new(profile), key, stable, today())
}

/// A Deidentifier for a profile given as TOML text.
pub(super) fn custom(toml: &str) -> Deidentifier {
    let profile = Profile::parse_toml(toml).unwrap_or_else(|e| panic!("{e}"));
    Deidentifier::new(Arc::new(profile), KEY, false, today())
}

pub(super) fn run(d: &Deidentifier, mut resource: Value, patient: Option<&str>) -> Value {
    d.apply(&mut resource, patient);
    resource
}

fn days_between(a: &str, b: &str) -> i64 {
    let parse = |s: &str| {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(s.get(..10).unwrap(), &fmt).unwrap()
    };
    (parse(b) - parse(a)).whole_days()
}

#[test]
fn pseudonyms_are_stable_per_key_and_differ_across_keys() {
    let a = builtin("safe-harbor", KEY, false);
    let b = builtin("safe-harbor-shifted", KEY, true);
    let c = builtin("safe-harbor", OTHER_KEY, false);
    assert_eq!(a.pseudonym("p1"), b.pseudonym("p1"));
    assert_ne!(a.pseudonym("p1"), c.pseudonym("p1"));
    assert_ne!(a.pseudonym("p1"), a.pseudonym("p2"));
    let p = a.pseudonym("p1");
    assert_eq!(p.len(), 64);
    assert!(p.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn resource_ids_and_references_agree() {
    let d = builtin("safe-harbor", KEY, false);
    let patient = run(
        &d,
        json!({"resourceType": "Patient", "id": "p1"}),
        Some("p1"),
    );
    let pid = patient["id"].as_str().unwrap().to_owned();
    assert_eq!(pid, d.pseudonym("p1"));
    let obs = run(
        &d,
        json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "subject": {"reference": "Patient/p1", "display": "Alice Example"},
            "performer": [
                {"reference": "https://ehr.example.org/fhir/Practitioner/pr9/_history/3"},
                {"reference": "urn:uuid:6f1d3a4e-0000-4000-8000-000000000001"},
                {"reference": "Patient?identifier=http://x|12345", "type": "Patient"}
            ]
        }),
        Some("p1"),
    );
    assert_eq!(obs["id"], json!(d.pseudonym("o1")));
    assert_eq!(
        obs["subject"],
        json!({"reference": format!("Patient/{pid}")})
    );
    assert_eq!(
        obs["performer"][0]["reference"],
        json!(format!("Practitioner/{}", d.pseudonym("pr9")))
    );
    let uuid = obs["performer"][1]["reference"].as_str().unwrap();
    assert!(uuid.starts_with("urn:uuid:") && uuid.len() == 45, "{uuid}");
    assert!(!uuid.contains("6f1d3a4e"));
    // A conditional reference carries search parameters: removed.
    assert_eq!(obs["performer"][2], json!({"type": "Patient"}));
    assert!(!obs.to_string().contains("12345"));
}

#[test]
fn contained_references_agree() {
    let d = builtin("safe-harbor", KEY, false);
    let out = run(
        &d,
        json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "contained": [{"resourceType": "Practitioner", "id": "pr1",
                           "name": [{"family": "Zebulonski"}],
                           "gender": "female"}],
            "performer": [{"reference": "#pr1"}]
        }),
        Some("p1"),
    );
    let contained_id = out["contained"][0]["id"].as_str().unwrap();
    assert_eq!(contained_id, d.pseudonym("pr1"));
    assert_eq!(
        out["performer"][0]["reference"],
        json!(format!("#{contained_id}"))
    );
    assert_eq!(out["contained"][0]["gender"], json!("female"));
    assert!(!out.to_string().contains("Zebulonski"));
}

#[test]
fn date_shifts_preserve_intervals_within_a_patient_and_differ_between_patients() {
    let d = builtin("safe-harbor-shifted", KEY, true);
    let enc = json!({
        "resourceType": "Encounter", "id": "e1", "status": "finished",
        "period": {"start": "2023-03-14T09:15:00Z", "end": "2023-03-19T17:40:00Z"}
    });
    let obs = json!({
        "resourceType": "Observation", "id": "o1", "status": "final",
        "effectiveDateTime": "2023-03-20T08:00:00-05:00"
    });
    let e = run(&d, enc, Some("p1"));
    let o = run(&d, obs, Some("p1"));
    let start = e["period"]["start"].as_str().unwrap();
    let end = e["period"]["end"].as_str().unwrap();
    let eff = o["effectiveDateTime"].as_str().unwrap();
    assert_eq!(days_between(start, end), 5);
    assert_eq!(days_between(start, eff), 6);
    let shift = d.shift_days("p1");
    assert_ne!(shift, 0);
    assert!((-365..=365).contains(&shift));
    assert_eq!(days_between("2023-03-14", start), shift);
    // Time and zone are kept.
    assert!(start.ends_with("T09:15:00Z") && eff.ends_with("T08:00:00-05:00"));
    // Another patient, another offset (these ids are known to differ).
    assert_ne!(d.shift_days("p1"), d.shift_days("p2"));
    let o2 = run(
        &d,
        json!({"resourceType": "Observation", "id": "o2",
               "effectiveDateTime": "2023-03-20T08:00:00-05:00"}),
        Some("p2"),
    );
    assert_ne!(o2["effectiveDateTime"], o["effectiveDateTime"]);
    // Offsets stay within range and are never 0.
    for i in 0..200 {
        let s = d.shift_days(&format!("patient-{i}"));
        assert!(s != 0 && (-365..=365).contains(&s), "{s}");
    }
    // Under another key the same patient moves differently.
    let other = builtin("safe-harbor-shifted", OTHER_KEY, true);
    assert_ne!(other.shift_days("p1"), shift);
}

#[test]
fn shifted_partial_dates_keep_their_precision() {
    let d = custom(
        r#"
        name = "t"
        [[rule]]
        type = ["date", "dateTime"]
        method = "dateShift"
        range_days = 30
        "#,
    );
    let out = run(
        &d,
        json!({"resourceType": "Condition", "id": "c1",
               "onsetDateTime": "2019-03", "recordedDate": "2019-03-04",
               "abatementString": "2019"}),
        Some("p1"),
    );
    assert_eq!(out["onsetDateTime"].as_str().unwrap().len(), 7);
    assert_eq!(out["recordedDate"].as_str().unwrap().len(), 10);
    assert_ne!(out["recordedDate"], json!("2019-03-04"));
    // abatementString is text, not a date: no dateShift rule matches it.
    assert_eq!(out["abatementString"], json!("2019"));
}

#[test]
fn birth_dates_of_people_over_89_are_removed() {
    for profile in ["safe-harbor", "safe-harbor-shifted"] {
        let d = builtin(profile, KEY, false);
        let old = run(
            &d,
            json!({"resourceType": "Patient", "id": "old", "birthDate": "1933-03-01"}),
            Some("old"),
        );
        assert!(old.get("birthDate").is_none(), "{profile}: {old}");
        let young = run(
            &d,
            json!({"resourceType": "Patient", "id": "y", "birthDate": "1937-01-10"}),
            Some("y"),
        );
        let birth = young["birthDate"].as_str().unwrap();
        if profile == "safe-harbor" {
            assert_eq!(birth, "1937", "89 at today: kept as the year");
        } else {
            assert_ne!(birth, "1937-01-10");
        }
    }
}

#[test]
fn ages_over_89_become_90_or_more() {
    let d = builtin("safe-harbor", KEY, false);
    let out = run(
        &d,
        json!({"resourceType": "Condition", "id": "c1",
               "onsetAge": {"value": 93, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"},
               "abatementAge": {"value": 45, "unit": "yr"}}),
        Some("p1"),
    );
    assert_eq!(out["onsetAge"]["value"], json!(90));
    assert_eq!(out["onsetAge"]["comparator"], json!(">="));
    assert_eq!(out["onsetAge"]["code"], json!("a"));
    assert_eq!(out["abatementAge"]["value"], json!(45));
}

#[test]
fn zip_codes_are_cut_to_three_digits_or_000_when_restricted() {
    let d = builtin("safe-harbor", KEY, false);
    let zip = |code: &str| {
        let out = run(
            &d,
            json!({"resourceType": "Patient", "id": "p",
                   "address": [{"city": "Somewhere", "state": "MA", "postalCode": code}]}),
            Some("p"),
        );
        out["address"][0].get("postalCode").cloned()
    };
    assert_eq!(zip("02139"), Some(json!("021")));
    assert_eq!(zip("03601"), Some(json!("000")));
    assert_eq!(zip("89012-3456"), Some(json!("000")));
    assert_eq!(zip("K1A 0B1"), None);
    let path_rule = custom(
        r#"
        name = "zip"
        [[rule]]
        path = "Patient.address.postalCode"
        method = "generalize"
        "#,
    );
    let out = run(
        &path_rule,
        json!({"resourceType": "Patient", "id": "p", "address": [{"postalCode": "02139", "city": "X"}]}),
        Some("p"),
    );
    assert_eq!(out["address"][0], json!({"postalCode": "021", "city": "X"}));
}

#[test]
fn security_code_depends_on_key_stability() {
    assert_eq!(
        builtin("safe-harbor", KEY, false).security_code(),
        "ANONYED"
    );
    // ids and references are pseudonyms linkable under a reused key
    assert_eq!(builtin("safe-harbor", KEY, true).security_code(), "PSEUDED");
    assert_eq!(
        builtin("safe-harbor-shifted", KEY, false).security_code(),
        "ANONYED"
    );
    assert_eq!(
        builtin("safe-harbor-shifted", KEY, true).security_code(),
        "PSEUDED"
    );
    let d = builtin("safe-harbor-shifted", KEY, true);
    let tag = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "PSEUDED"});
    let once = run(&d, json!({"resourceType": "Patient", "id": "p"}), Some("p"));
    assert_eq!(once["meta"]["security"], json!([tag.clone()]));
    let twice = run(&d, once, Some("p"));
    assert_eq!(twice["meta"]["security"], json!([tag]));
}

#[test]
fn meta_keeps_profile_security_tag_only() {
    let resource = json!({
        "resourceType": "Observation", "id": "o1",
        "meta": {"versionId": "7", "lastUpdated": "2024-01-02T03:04:05Z", "source": "#ehr-a",
                 "profile": ["http://example.org/p"],
                 "tag": [{"system": "http://example.org/t", "code": "x"}]}
    });
    let d = builtin("safe-harbor", KEY, false);
    let out = run(&d, resource.clone(), None);
    let meta = out["meta"].as_object().unwrap();
    let keys: Vec<&str> = meta.keys().map(String::as_str).collect();
    assert_eq!(keys, ["profile", "tag", "security"]);
    let keeps = custom(
        r#"
        name = "t"
        [[rule]]
        path = "*.meta.lastUpdated"
        method = "keep"
        "#,
    );
    let out = run(&keeps, resource, None);
    assert_eq!(out["meta"]["lastUpdated"], json!("2024-01-02T03:04:05Z"));
    assert!(out["meta"].get("versionId").is_none());
}

#[test]
fn perturb_is_deterministic_and_within_span() {
    let toml = r#"
        name = "t"
        [[rule]]
        path = "Observation.valueQuantity.value"
        method = "perturb"
        span = 0.05
        round_to = 3
        [[rule]]
        path = "Observation.component.valueInteger"
        method = "perturb"
        span = 3
        absolute = true
    "#;
    let d = custom(toml);
    let obs = |id: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "valueQuantity": {"value": 120.0, "unit": "mm[Hg]"},
               "component": [{"valueInteger": 80}, {"valueInteger": 80}]})
    };
    let a = run(&d, obs("o1"), None);
    let b = run(&d, obs("o1"), None);
    assert_eq!(a, b, "same key, same resource: same noise");
    let mut moved = false;
    for i in 0..30 {
        let out = run(&d, obs(&format!("o{i}")), None);
        let v = out["valueQuantity"]["value"].as_f64().unwrap();
        assert!((v - 120.0).abs() <= 6.0 + 0.0005, "{v}");
        moved |= v != 120.0;
        for c in out["component"].as_array().unwrap() {
            let n = &c["valueInteger"];
            assert!(n.is_i64(), "integers stay integers: {n}");
            assert!((n.as_i64().unwrap() - 80).abs() <= 3);
        }
    }
    assert!(moved);
}

#[test]
fn substitute_replaces_the_node() {
    let d = custom(
        r#"
        name = "t"
        [[rule]]
        path = "Patient.maritalStatus.text"
        method = "substitute"
        value = "withheld"
        [[rule]]
        path = "Patient.communication"
        method = "substitute"
        value = { language = { text = "n/a" } }
        "#,
    );
    let out = run(
        &d,
        json!({"resourceType": "Patient", "id": "p",
               "maritalStatus": {"text": "Married to Jane"},
               "communication": [{"language": {"text": "Klingon"}}]}),
        Some("p"),
    );
    assert_eq!(out["maritalStatus"]["text"], json!("withheld"));
    assert_eq!(out["communication"], json!([{"language": {"text": "n/a"}}]));
}

#[test]
fn keep_on_a_path_stops_a_later_type_rule() {
    let d = custom(
        r#"
        name = "t"
        [[rule]]
        path = "Observation.valueString"
        method = "keep"
        [[rule]]
        type = "string"
        method = "redact"
        "#,
    );
    let out = run(
        &d,
        json!({"resourceType": "Observation", "id": "o", "status": "final",
               "code": {"text": "free text", "coding": [{"system": "http://loinc.org", "code": "1-8"}]},
               "valueString": "positive"}),
        None,
    );
    assert_eq!(out["valueString"], json!("positive"));
    assert_eq!(
        out["code"],
        json!({"coding": [{"system": "http://loinc.org", "code": "1-8"}]})
    );
    assert_eq!(out["status"], json!("final"));
}

#[test]
fn keep_cannot_keep_real_references() {
    let d = custom(
        r#"
        name = "t"
        [[rule]]
        path = "Observation.subject"
        method = "keep"
        "#,
    );
    let out = run(
        &d,
        json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p1", "display": "kept"}}),
        Some("p1"),
    );
    assert_eq!(
        out["subject"]["reference"],
        json!(format!("Patient/{}", d.pseudonym("p1")))
    );
    assert_eq!(out["subject"]["display"], json!("kept"));
}

#[test]
fn crypto_hash_pseudonymizes_identifiers_and_references() {
    let d = builtin("safe-harbor-shifted", KEY, true);
    let out = run(
        &d,
        json!({"resourceType": "Patient", "id": "p",
               "identifier": [{"use": "official", "system": "urn:oid:1.2.3", "value": "MRN-4455",
                               "period": {"start": "2001-01-01"},
                               "assigner": {"reference": "Organization/o1", "display": "General Hospital"}}]}),
        Some("p"),
    );
    assert_eq!(
        out["identifier"][0],
        json!({"use": "official", "system": "urn:oid:1.2.3", "value": d.pseudonym("MRN-4455"),
               "assigner": {"reference": format!("Organization/{}", d.pseudonym("o1"))}})
    );
    let hashed_ref = custom(
        r#"
        name = "t"
        [[rule]]
        type = "Reference"
        method = "cryptoHash"
        "#,
    );
    let out = run(
        &hashed_ref,
        json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p1", "display": "Alice"}}),
        Some("p1"),
    );
    assert_eq!(
        out["subject"],
        json!({"reference": format!("Patient/{}", d.pseudonym("p1"))})
    );
}

#[test]
fn emptied_objects_and_arrays_are_removed() {
    let d = custom(
        r#"
        name = "t"
        [[rule]]
        type = "string"
        method = "redact"
        "#,
    );
    let out = run(
        &d,
        json!({"resourceType": "Observation", "id": "o",
               "category": [{"text": "only text"}],
               "code": {"text": "only text", "coding": [{"code": "x"}]}}),
        None,
    );
    assert!(out.get("category").is_none(), "{out}");
    assert_eq!(out["code"], json!({"coding": [{"code": "x"}]}));
}

#[test]
fn non_objects_are_left_alone() {
    let d = builtin("safe-harbor", KEY, false);
    let out = run(&d, json!(["not", "a", "resource"]), None);
    assert_eq!(out, json!(["not", "a", "resource"]));
}

#[test]
fn extensions_left_without_a_value_are_removed() {
    let d = builtin("safe-harbor", KEY, false);
    let out = run(
        &d,
        json!({"resourceType": "Patient", "id": "p",
        "extension": [
            {"url": "http://example.org/nickname", "valueString": "Jojo"},
            {"url": "http://example.org/race", "extension": [
                {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}},
                {"url": "text", "valueString": "White"}]},
            {"url": "http://example.org/notes", "extension": [{"url": "text", "valueString": "x"}]}
        ]}),
        Some("p"),
    );
    assert_eq!(
        out["extension"],
        json!([{"url": "http://example.org/race", "extension": [
            {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}}]}])
    );
}

#[test]
fn bundle_entries_are_walked_as_resources() {
    let d = builtin("safe-harbor", KEY, false);
    let out = run(
        &d,
        json!({"resourceType": "Bundle", "id": "b", "type": "collection",
               "entry": [{"fullUrl": "https://ehr.example.org/Patient/p1",
                          "resource": {"resourceType": "Patient", "id": "p1", "name": [{"family": "Entryson"}],
                                       "gender": "other"}}]}),
        None,
    );
    assert_eq!(out["entry"][0]["resource"]["id"], json!(d.pseudonym("p1")));
    assert_eq!(out["entry"][0]["resource"]["gender"], json!("other"));
    let text = out.to_string();
    assert!(
        !text.contains("Entryson") && !text.contains("ehr.example.org"),
        "{text}"
    );
}

#[test]
fn leaf_methods_on_complex_nodes_reach_the_leaves_inside() {
    let d = custom(
        r#"
        name = "t"
        [[rule]]
        path = "Encounter.period"
        method = "dateShift"
        range_days = 10
        [[rule]]
        type = "Quantity"
        method = "perturb"
        span = 0.2
        [[rule]]
        type = "decimal"
        method = "generalize"
        round_to = 0
        "#,
    );
    let enc = run(
        &d,
        json!({"resourceType": "Encounter", "id": "e",
               "period": {"start": "2023-03-14", "end": "2023-03-19", "extension": [{"url": "u", "valueString": "s"}]}}),
        Some("p1"),
    );
    let shift = d.shift_days("p1");
    assert!(shift != 0 && (-10..=10).contains(&shift));
    assert_eq!(
        days_between("2023-03-14", enc["period"]["start"].as_str().unwrap()),
        shift
    );
    assert_eq!(
        days_between("2023-03-19", enc["period"]["end"].as_str().unwrap()),
        shift
    );
    assert_eq!(
        enc["period"]["extension"],
        json!([{"url": "u", "valueString": "s"}])
    );
    let obs = run(
        &d,
        json!({"resourceType": "Observation", "id": "o",
               "valueQuantity": {"value": 50.0, "unit": "kg"},
               "component": [{"valueDecimal": 36.6}]}),
        None,
    );
    let v = obs["valueQuantity"]["value"].as_f64().unwrap();
    assert!((v - 50.0).abs() <= 10.05 && v != 50.0, "{v}");
    assert_eq!(obs["valueQuantity"]["unit"], json!("kg"));
    assert_eq!(obs["component"][0]["valueDecimal"], json!(37));
}

#[test]
fn crypto_hash_on_a_string_and_fail_closed_on_a_mismatch() {
    let d = custom(
        r#"
        name = "t"
        [[rule]]
        path = "Observation.valueString"
        method = "cryptoHash"
        [[rule]]
        path = "Observation.code.text"
        method = "dateShift"
        range_days = 5
        "#,
    );
    let out = run(
        &d,
        json!({"resourceType": "Observation", "id": "o", "valueString": "token-1",
               "code": {"text": "not a date", "coding": [{"code": "c"}]},
               "performer": [{"reference": "Practitioner?name=Smith"}, {"reference": "Practitioner/x"}]}),
        None,
    );
    assert_eq!(out["valueString"], json!(d.pseudonym("token-1")));
    assert_eq!(out["code"], json!({"coding": [{"code": "c"}]}));
    assert_eq!(
        out["performer"],
        json!([{"reference": format!("Practitioner/{}", d.pseudonym("x"))}])
    );
}

#[test]
fn questionnaire_responses_keep_their_structure() {
    let d = builtin("safe-harbor", KEY, false);
    let out = run(
        &d,
        json!({"resourceType": "QuestionnaireResponse", "id": "qr", "status": "completed",
               "questionnaire": "http://example.org/Questionnaire/phq-9",
               "item": [{"linkId": "q1", "text": "Your name?", "answer": [{"valueString": "Horatio"}]},
                        {"linkId": "q2", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6568-5"}},
                                                    {"valueInteger": 3}]}]}),
        Some("p"),
    );
    assert_eq!(
        out["item"],
        json!([{"linkId": "q1"},
               {"linkId": "q2", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6568-5"}},
                                           {"valueInteger": 3}]}])
    );
    assert_eq!(
        out["questionnaire"],
        json!("http://example.org/Questionnaire/phq-9")
    );
}
