//! Classification and tag-stripping tests.

use std::collections::BTreeSet;

use serde_json::json;

use super::classify::{ACT_CODE, CONFIDENTIALITY, INLINE_LABEL};
use super::codes::{ValueSets, ICD10CM, RXNORM, SNOMED};
use super::*;

fn set(items: &[Sensitivity]) -> BTreeSet<Sensitivity> {
    items.iter().copied().collect()
}

#[test]
fn labels_give_categories_and_high_water_confidentiality() {
    let r = json!({"resourceType": "Condition", "id": "1",
        "meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}, {"system": ACT_CODE, "code": "HIV"}]},
        "contained": [{"resourceType": "Observation", "meta": {"security": [
            {"system": CONFIDENTIALITY, "code": "V"}, {"system": ACT_CODE, "code": "GDIS"}]}}]});
    let c = classify(&r, &ValueSets::starter());
    assert_eq!(c.confidentiality, Confidentiality::V);
    assert_eq!(c.labelled, set(&[Sensitivity::Hiv, Sensitivity::Gdis]));
    assert!(c.inferred.is_empty());
    assert_eq!(c.self_ref.as_deref(), Some("Condition/1"));
}

#[test]
fn unlabelled_codes_are_classified_by_value_sets() {
    use Sensitivity::*;
    let sets = ValueSets::starter();
    for (system, code, expected) in [
        (ICD10CM, "F11.20", vec![Sud, Opioidud]),
        (ICD10CM, "F10.20", vec![Sud]),
        (ICD10CM, "F19", vec![Sud]),
        (ICD10CM, "F20.9", vec![Mh, Psy]),
        (ICD10CM, "F32.1", vec![Mh, Psy]),
        (ICD10CM, "F48.8", vec![Mh, Psy]),
        (ICD10CM, "F50.0", vec![Mh]),
        (ICD10CM, "F99", vec![Mh]),
        (ICD10CM, "B20", vec![Hiv]),
        (ICD10CM, "B24", vec![Hiv]),
        (ICD10CM, "Z21", vec![Hiv]),
        (ICD10CM, "A54.9", vec![Std]),
        (ICD10CM, "A65", vec![]),
        (ICD10CM, "F09", vec![]),
        (ICD10CM, "E11.9", vec![]),
        (SNOMED, "75544000", vec![Sud, Opioidud]),
        (RXNORM, "1010600", vec![Sud, Opioidud]),
        (SNOMED, "21897009", vec![Mh, Bh]),
        ("http://example.org/other", "F11.20", vec![]),
    ] {
        let r = json!({"resourceType": "Condition", "code": {"coding": [{"system": system, "code": code}]}});
        let c = classify(&r, &sets);
        assert_eq!(c.inferred, set(&expected), "{system} {code}");
        let conf = if expected.is_empty() {
            Confidentiality::N
        } else {
            Confidentiality::R
        };
        assert_eq!(c.confidentiality, conf, "{code}");
    }
}

#[test]
fn codes_in_contained_resources_count_and_meta_codes_do_not() {
    let r = json!({"resourceType": "MedicationRequest",
        "meta": {"tag": [{"system": ICD10CM, "code": "B20"}]},
        "contained": [{"resourceType": "Medication", "id": "m",
            "code": {"coding": [{"system": RXNORM, "code": "1010600"}]}}],
        "medicationReference": {"reference": "#m"}});
    let c = classify(&r, &ValueSets::starter());
    assert_eq!(c.inferred, set(&[Sensitivity::Sud, Sensitivity::Opioidud]));
    assert!(c.references.contains("#m"));
}

#[test]
fn inline_labels_and_authors_and_time() {
    let r = json!({"resourceType": "Observation", "effectivePeriod": {"start": "2024-05-01T10:00:00Z"},
        "performer": [{"reference": "Practitioner/9"}],
        "note": [{"text": "x", "extension": [{"url": INLINE_LABEL, "valueCoding": {"system": ACT_CODE, "code": "SDV"}}]}]});
    let c = classify(&r, &ValueSets::starter());
    assert_eq!(c.inline, set(&[Sensitivity::Sdv]));
    assert!(c.authors.contains("Practitioner/9"));
    assert_eq!(c.clinical_time, Some(1_714_557_600));
}

#[test]
fn stripping_keeps_confidentiality_obligations_and_cleared_categories() {
    let mut r = json!({"resourceType": "Condition", "meta": {"security": [
            {"system": CONFIDENTIALITY, "code": "R"}, {"system": ACT_CODE, "code": "HIV"},
            {"system": ACT_CODE, "code": "SUD"}, {"system": ACT_CODE, "code": "NORDSCLCD"}]},
        "contained": [{"resourceType": "Observation", "meta": {"security": [{"system": ACT_CODE, "code": "ETH"}]}}],
        "note": [{"text": "x", "extension": [{"url": INLINE_LABEL, "valueCoding": {"system": ACT_CODE, "code": "PSY"}}]}]});
    redact::strip_sensitivity_tags(&mut r, &set(&[Sensitivity::Sud]));
    let out = r.to_string();
    for gone in ["HIV", "ETH", "PSY", INLINE_LABEL] {
        assert!(!out.contains(gone), "{gone} in {out}");
    }
    for kept in ["\"R\"", "SUD", "NORDSCLCD", "\"x\""] {
        assert!(out.contains(kept), "{kept} missing from {out}");
    }
    redact::add_obligations(&mut r, &["NORDSCLCD".to_owned()]);
    assert_eq!(r.to_string().matches("NORDSCLCD").count(), 1);
}

/// The pipeline releases a search's resources without comparing a copy:
/// whether the bytes changed is what stripping and obligations report.
#[test]
fn stripping_and_obligations_report_exactly_whether_bytes_changed() {
    let cases = [
        json!({"resourceType": "Condition"}),
        json!({"resourceType": "Condition", "meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}}),
        json!({"resourceType": "Condition", "meta": {"security": [{"system": ACT_CODE, "code": "HIV"}]}}),
        json!({"resourceType": "Condition", "meta": {"security": [{"system": ACT_CODE, "code": "SUD"}, {"system": ACT_CODE, "code": "HIV"}]}}),
        json!({"resourceType": "Condition", "meta": {"security": []}}),
        json!({"resourceType": "Condition", "contained": [{"resourceType": "Observation", "meta": {"security": [{"system": ACT_CODE, "code": "ETH"}]}}]}),
        json!({"resourceType": "Condition", "note": [{"text": "x", "extension": [{"url": INLINE_LABEL, "valueCoding": {"system": ACT_CODE, "code": "PSY"}}]}]}),
        json!({"resourceType": "Condition", "note": [{"text": "x", "extension": [{"url": INLINE_LABEL, "valueCoding": {"system": ACT_CODE, "code": "SUD"}}]}]}),
        json!({"resourceType": "Condition", "note": [{"text": "x", "extension": []}]}),
        json!({"resourceType": "Condition", "meta": {"security": [{"system": ACT_CODE, "code": "NORDSCLCD"}]}}),
    ];
    for obligations in [vec![], vec!["NORDSCLCD".to_owned()]] {
        for r in &cases {
            let mut out = r.clone();
            let stripped = redact::strip_sensitivity_tags(&mut out, &set(&[Sensitivity::Sud]));
            let obliged = redact::add_obligations(&mut out, &obligations);
            assert_eq!(
                stripped || obliged,
                &out != r,
                "{r} with {obligations:?} gave {out}"
            );
        }
    }
}

#[test]
fn seeded_style_labels_are_read() {
    // The seed labels PSY+MH, MH+BH, SUD+ETH, GDIS and confidentiality R.
    let r = json!({"resourceType": "Condition", "meta": {"security": [
        {"system": ACT_CODE, "code": "SUD"}, {"system": ACT_CODE, "code": "ETH"},
        {"system": CONFIDENTIALITY, "code": "R"}]}});
    let c = classify(&r, &ValueSets::starter());
    assert_eq!(c.categories(), set(&[Sensitivity::Eth, Sensitivity::Sud]));
    assert_eq!(c.confidentiality, Confidentiality::R);
}

#[test]
fn label_lowering_and_redacted_copies_are_detected() {
    let sets = ValueSets::starter();
    let hiv_r = json!({"resourceType": "Condition", "meta": {"security": [
        {"system": CONFIDENTIALITY, "code": "R"}, {"system": ACT_CODE, "code": "HIV"}]}});
    let hiv_n = json!({"resourceType": "Condition", "meta": {"security": [
        {"system": CONFIDENTIALITY, "code": "N"}, {"system": ACT_CODE, "code": "HIV"}]}});
    let bare = json!({"resourceType": "Condition"});
    let (a, b, c) = (
        classify(&hiv_r, &sets),
        classify(&hiv_n, &sets),
        classify(&bare, &sets),
    );
    assert!(classify::lowers_label(&a, &b));
    assert!(classify::lowers_label(&a, &c));
    assert!(!classify::lowers_label(&b, &a));
    assert!(!classify::lowers_label(&a, &a));
    let mut red = hiv_r.clone();
    redact::redact(&mut red, &BTreeSet::new());
    assert!(classify::is_redacted(&red) && !classify::is_redacted(&hiv_r));
}

#[test]
fn patient_state_prefers_home_address() {
    let p = json!({"resourceType": "Patient", "address": [
        {"use": "work", "state": "NY"}, {"use": "home", "state": "tx"}]});
    assert_eq!(policy::patient_state(&p).as_deref(), Some("TX"));
    let p = json!({"resourceType": "Patient", "address": [{"city": "X"}, {"state": "CA"}]});
    assert_eq!(policy::patient_state(&p).as_deref(), Some("CA"));
    assert_eq!(
        policy::patient_state(&json!({"resourceType": "Patient"})),
        None
    );
}
