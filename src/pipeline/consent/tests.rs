//! Unit tests of the consent stage's pure parts (the stage end to end is in
//! tests/consent.rs and the leak matrix in conformance-tests).
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::judge::{inherited_targets, normalize, patients_of};

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
