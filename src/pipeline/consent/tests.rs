//! Unit tests of the consent stage's pure parts (the stage end to end is in
//! tests/consent.rs and the leak matrix in conformance-tests).
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::{
    judge::{inherited_targets, normalize, patients_of},
    pages::latest_of,
};

const BASE: &str = "http://fg.test/fhir";

#[test]
fn patients_of_follows_compartment_references() {
    let obs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/1"},
        "performer": [{"reference": "Patient/2"}, {"reference": "Practitioner/9"}]});
    assert_eq!(patients_of(&obs, BASE), vec!["Patient/1", "Patient/2"]);
    let abs = json!({"resourceType": "Condition", "subject": {"reference": "http://fg.test/fhir/Patient/3"}});
    assert_eq!(patients_of(&abs, BASE), vec!["Patient/3"]);
    let foreign = json!({"resourceType": "Condition", "subject": {"reference": "http://elsewhere/Patient/3"}});
    assert!(patients_of(&foreign, BASE).is_empty());
    let p = json!({"resourceType": "Patient", "id": "4"});
    assert_eq!(patients_of(&p, BASE), vec!["Patient/4"]);
    let flag = json!({"resourceType": "Flag", "subject": {"reference": "Patient/5"}});
    assert_eq!(patients_of(&flag, BASE), vec!["Patient/5"]);
    let org = json!({"resourceType": "Organization", "id": "o"});
    assert!(patients_of(&org, BASE).is_empty());
}

#[test]
fn inheritance_targets_and_reference_normalisation() {
    let prov = json!({"resourceType": "Provenance", "target": [{"reference": "Observation/1/_history/2"}]});
    assert_eq!(inherited_targets(&prov, BASE), vec!["Observation/1"]);
    let bin =
        json!({"resourceType": "Binary", "securityContext": {"reference": "DocumentReference/d"}});
    assert_eq!(inherited_targets(&bin, BASE), vec!["DocumentReference/d"]);
    assert_eq!(normalize("urn:uuid:x", BASE), None);
    assert_eq!(normalize("Patient/1", BASE).as_deref(), Some("Patient/1"));
}

/// Two versions stored in the same millisecond: the newer one is the latest
/// (its labels are today's), never the older, unlabelled one.
#[test]
fn the_latest_version_of_a_tie_in_time_is_the_newer_one() {
    let at = "2026-11-24T13:23:17.537Z";
    let v = |n: &str, labelled: bool| {
        let mut meta = json!({"versionId": n, "lastUpdated": at});
        if labelled {
            meta["security"] = json!([{"code": "PSY"}]);
        }
        json!({"resource": {"resourceType": "Condition", "id": "c", "meta": meta}})
    };
    let latest = |entries: Vec<serde_json::Value>| {
        latest_of(&json!({"resourceType": "Bundle", "type": "history", "entry": entries})).unwrap()
            ["meta"]["versionId"]
            .clone()
    };
    // newest first, as FHIR lists a history
    assert_eq!(latest(vec![v("2", true), v("1", false)]), "2");
    // oldest first: the numeric versionId decides
    assert_eq!(latest(vec![v("1", false), v("2", true)]), "2");
    // opaque versionIds: the history's order (newest first) decides
    assert_eq!(latest(vec![v("b", true), v("a", false)]), "b");
    // a later instant wins over any version number
    let mut later = v("1", false);
    later["resource"]["meta"]["lastUpdated"] = json!("2026-11-24T13:23:17.538Z");
    assert_eq!(latest(vec![v("2", true), later]), "1");
}
