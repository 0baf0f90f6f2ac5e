//! Tests of the checker and of every embedded profile: each profile has a
//! valid instance that passes with no error, and invalid instances that
//! fail with an exact issue `code` and `path`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backport;
mod carin_bb;
mod checker;
mod hrex;
mod pas;
mod us_core;

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::catalog::{BACKPORT_SOURCES, CARIN_BB_SOURCES, HREX_SOURCES, US_CORE_SOURCES};
use crate::*;

/// The catalog profile with canonical `url`.
fn profile(url: &str) -> &'static Profile {
    catalog()
        .by_url(url)
        .unwrap_or_else(|| panic!("no profile {url}"))
}

/// The error issues of `v` against `p`, as (code, path).
fn errors(p: &Profile, v: &Value) -> Vec<(&'static str, String)> {
    let root = v["resourceType"].as_str().unwrap_or("Resource");
    p.check(v, root)
        .into_iter()
        .filter(Issue::is_error)
        .map(|i| (i.code, i.path))
        .collect()
}

/// Asserts `v` fails `p` with exactly one issue, `code` at `path`.
#[track_caller]
fn assert_one(p: &Profile, v: &Value, code: &str, path: &str) {
    let found = errors(p, v);
    assert_eq!(
        found,
        vec![(code, path.to_owned())],
        "{}: expected exactly {code} at {path}",
        p.name
    );
}

/// `v` changed by `f` (to derive invalid instances from valid ones).
fn edit(mut v: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut v);
    v
}

/// Removes `key` from the object `v`.
fn remove(v: &mut Value, key: &str) {
    v.as_object_mut().unwrap().remove(key);
}

/// One valid instance per profile, by canonical URL.
fn valid_instances() -> Vec<(String, Value)> {
    let mut all = pas::valid();
    all.extend(us_core::valid());
    all.extend(carin_bb::valid());
    all.extend(hrex::valid());
    all.extend(backport::valid());
    all
}

#[test]
fn every_embedded_profile_parses_and_has_a_unique_url() {
    let sources = US_CORE_SOURCES.len()
        + CARIN_BB_SOURCES.len()
        + HREX_SOURCES.len()
        + BACKPORT_SOURCES.len();
    for text in US_CORE_SOURCES
        .iter()
        .chain(CARIN_BB_SOURCES)
        .chain(HREX_SOURCES)
        .chain(BACKPORT_SOURCES)
    {
        let p = Profile::from_json(text).unwrap();
        assert!(p.ig.is_some(), "{} names its IG", p.url);
    }
    for text in PAS_SOURCES.iter().chain(PAS_2_2_SOURCES) {
        Profile::from_json(text).unwrap();
    }
    let all = catalog().all();
    assert_eq!(
        all.len(),
        PAS_SOURCES.len() + 1 + sources,
        "PAS, Claim Update, the rest"
    );
    let urls: HashSet<&str> = all.iter().map(|p| p.url.as_str()).collect();
    assert_eq!(urls.len(), all.len(), "canonical URLs are unique");
    let names: HashSet<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), all.len(), "names are unique");
    assert!(all.iter().all(|p| p.ig.is_some()));
}

#[test]
fn every_profile_has_a_valid_instance_that_passes() {
    let instances = valid_instances();
    for p in catalog().all().iter().chain(pas_2_2().all()) {
        let (_, v) = instances
            .iter()
            .find(|(url, _)| *url == p.url)
            .unwrap_or_else(|| panic!("no valid instance for {}", p.url));
        assert_eq!(errors(p, v), vec![], "{} ({})", p.name, p.url);
    }
}

#[test]
fn catalog_looks_up_by_url_type_and_ig() {
    let c = catalog();
    let patient = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient";
    assert_eq!(c.by_url(patient).unwrap().resource_type, "Patient");
    assert_eq!(c.by_url(&format!("{patient}|6.1.0")).unwrap().url, patient);
    assert!(c.by_url("http://example.org/nope").is_none());
    let coverages: Vec<&str> = c.for_type("Coverage").map(|p| p.name.as_str()).collect();
    assert_eq!(
        coverages,
        ["PASCoverage", "USCoreCoverageProfile", "C4BBCoverage"]
    );
    assert_eq!(
        c.for_ig("hl7.fhir.us.core#6.1.0").count(),
        US_CORE_SOURCES.len()
    );
    assert_eq!(c.for_ig("hl7.fhir.us.davinci-hrex#1.0.0").count(), 2);
    let update = c
        .by_url("http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim-update")
        .unwrap();
    assert_eq!(update.ig.as_deref(), Some("hl7.fhir.us.davinci-pas#2.2.1"));
    let claim = c
        .by_url("http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim")
        .unwrap();
    assert_eq!(
        claim.ig.as_deref(),
        Some("hl7.fhir.us.davinci-pas#2.0.1"),
        "the 2.0.1 claim"
    );
}

#[test]
fn every_pas_profile_parses() {
    assert_eq!(pas().all().len(), PAS_SOURCES.len());
    assert!(pas().get("PASClaim").is_some());
}

#[test]
fn pas_2_2_replaces_and_adds_profiles() {
    assert_eq!(
        pas_2_2().all().len(),
        PAS_SOURCES.len() + 1,
        "claim replaced, claim-update added"
    );
    let update = pas_2_2().get("PASClaimUpdate").unwrap();
    let issues = update.check(&json!({"resourceType": "Claim"}), "Claim");
    assert!(
        issues.iter().any(|i| i.path == "Claim.related"),
        "{issues:?}"
    );
    let two_ids = json!({"resourceType": "Claim", "identifier": [{"value": "a"}, {"value": "b"}]});
    let max = |p: &Profile| {
        p.check(&two_ids, "Claim")
            .iter()
            .any(|i| i.path == "Claim.identifier" && i.code == "structure")
    };
    assert!(
        max(pas().get("PASClaim").unwrap()),
        "2.0.1: identifier 1..1"
    );
    assert!(
        !max(pas_2_2().get("PASClaim").unwrap()),
        "2.2: identifier 1..2"
    );
    assert!(pas().get("PASClaimUpdate").is_none());
}

#[test]
fn cardinality_fixed_and_binding_name_the_path() {
    let p = pas().get("PASClaim").unwrap();
    let claim = json!({"resourceType": "Claim", "use": "claim", "status": "bogus",
        "insurance": [{"sequence": 1, "focal": true}], "item": [{"sequence": 1}]});
    let issues = p.check(&claim, "Claim");
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains(&"Claim.identifier"), "{paths:?}");
    assert!(paths.contains(&"Claim.use"), "{paths:?}");
    assert!(paths.contains(&"Claim.status"), "{paths:?}");
    assert!(paths.contains(&"Claim.insurance[0].coverage"), "{paths:?}");
    assert!(
        paths.contains(&"Claim.item[0].productOrService"),
        "{paths:?}"
    );
}

#[test]
fn max_and_pattern_are_checked() {
    let p = Profile::from_json(
        r#"{"url":"u","name":"T","resourceType":"Patient","elements":[
          {"path":"gender","max":"1"},
          {"path":"identifier","max":"1","pattern":{"system":"s"}}]}"#,
    )
    .unwrap();
    let issues = p.check(
        &json!({"resourceType":"Patient","identifier":[{"system":"x"},{"system":"s"}]}),
        "Patient",
    );
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[0].path, "Patient.identifier");
    assert_eq!(issues[1].path, "Patient.identifier[0]");
    assert!(p.check(&json!({"resourceType":"Claim"}), "X")[0].code == "structure");
}
