//! Table tests with the SMART App Launch 2.2 examples
//! (§"Scopes for requesting FHIR Resources", §"Finer-grained resource
//! constraints using search parameters", §"Scopes for requesting context data",
//! §"Scopes for requesting identity data").

use super::*;

const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

fn set(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap()
}

fn res(s: &str) -> ResourceScope {
    match SmartScope::parse(s).unwrap() {
        SmartScope::Resource(r) => r,
        other => panic!("{s} parsed as {other:?}"),
    }
}

#[test]
fn spec_examples_parse_and_display_canonically() {
    for s in [
        "patient/*.rs",
        "user/*.cruds",
        "patient/Observation.rs",
        "system/Patient.r",
        "user/Appointment.cruds",
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|health-concern",
        "patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes",
        "patient/*.read",
        "user/*.*",
        "user/Appointment.write",
        "patient/Encounter.cu",
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    ] {
        let parsed = SmartScope::parse(s).unwrap();
        assert_eq!(parsed.to_string(), s);
    }
}

#[test]
fn resource_scope_parts() {
    let r = res(&format!("patient/Observation.rs?category={LAB}"));
    assert_eq!(r.context, ScopeContext::Patient);
    assert_eq!(r.resource_type.as_deref(), Some("Observation"));
    assert_eq!(r.perms, Perms::READ);
    assert_eq!(r.constraints, vec![("category".into(), LAB.into())]);
    assert!(r.v2);
    let v1 = res("user/*.write");
    assert_eq!(v1.resource_type, None);
    assert_eq!(v1.perms, Perms::WRITE);
    assert!(!v1.v2);
    assert_eq!(res("system/*.*").perms, Perms::ALL);
    let two = res("user/Observation.rs?category=a%26b&status=final%20x");
    assert_eq!(
        two.constraints,
        vec![
            ("category".into(), "a&b".into()),
            ("status".into(), "final x".into())
        ]
    );
    assert_eq!(
        two.to_string(),
        "user/Observation.rs?category=a%26b&status=final%20x"
    );
}

#[test]
fn malformed_resource_scopes_are_errors() {
    for s in [
        "patient/Observation.sr",
        "patient/Observation.rr",
        "patient/Observation.",
        "patient/Observation.x",
        "patient/Observation",
        "patient/observation.rs",
        "patient/.rs",
        "user/Observation.read?category=x",
        "patient/Observation.rs?",
        "patient/Observation.rs?category",
        "patient/Observation.rs?category=",
        "patient/Observation.rs?category=%zz",
        "patient/Observation.rs?category=%ff",
        "system/Obs-ervation.r",
        "patient/Observation.readwrite",
    ] {
        assert!(SmartScope::parse(s).is_err(), "{s} should be refused");
    }
    assert!(ScopeSet::parse("openid patient/Observation.xyz").is_err());
}

#[test]
fn unknown_scopes_are_kept_as_other_and_sets_dedupe() {
    let s = set("openid  launch/patient custom:thing openid\tlaunch");
    let v: Vec<&SmartScope> = s.iter().collect();
    assert_eq!(
        v,
        [
            &SmartScope::OpenId,
            &SmartScope::LaunchPatient,
            &SmartScope::Other("custom:thing".into()),
            &SmartScope::Launch
        ]
    );
    assert!(s.has(&SmartScope::Launch));
    assert!(!s.has(&SmartScope::OfflineAccess));
    assert_eq!(s.to_string(), "openid launch/patient custom:thing launch");
    assert!(SmartScope::parse("a\"b").is_err());
    assert!(set("").is_empty());
}

#[test]
fn scopes_never_match_as_substrings() {
    let s = set("patient/Observation.rs launch/patientx");
    assert!(s.grants("Observation", Op::Read).len() == 1);
    assert!(s.grants("ObservationDefinition", Op::Read).is_empty());
    assert!(s.grants("Observatio", Op::Read).is_empty());
    assert!(!s.has(&SmartScope::LaunchPatient));
}

#[test]
fn grants_follow_letters_contexts_and_wildcards() {
    let s = set(&format!(
        "patient/Observation.rs?category={LAB} user/*.r system/Patient.cud"
    ));
    let g = s.grants("Observation", Op::Search);
    assert_eq!(
        g,
        vec![Grant {
            context: ScopeContext::Patient,
            constraints: vec![("category".into(), LAB.into())]
        }]
    );
    assert_eq!(s.grants("Observation", Op::Read).len(), 2);
    assert_eq!(
        s.grants("Condition", Op::Read)[0].context,
        ScopeContext::User
    );
    assert!(s.grants("Condition", Op::Search).is_empty());
    assert!(s.grants("Patient", Op::Create)[0].constraints.is_empty());
    assert!(s.grants("Encounter", Op::Delete).is_empty());
    assert!(set("openid fhirUser")
        .grants("Patient", Op::Read)
        .is_empty());
}

#[test]
fn v1_and_v2_are_equivalent() {
    assert!(set("patient/Observation.read").equivalent(&set("patient/Observation.rs")));
    assert!(set("user/*.write").equivalent(&set("user/*.cud")));
    assert!(set("system/*.*").equivalent(&set("system/*.cruds")));
    assert!(!set("patient/Observation.read").equivalent(&set("patient/Observation.r")));
    assert_ne!(
        set("patient/Observation.read"),
        set("patient/Observation.rs")
    );
}

#[test]
fn coverage_for_refresh_and_registration() {
    let registered = set("patient/*.rs user/Observation.cruds launch openid offline_access");
    assert!(set("patient/Observation.rs openid").covered_by(&registered));
    assert!(set(&format!("patient/Observation.rs?category={LAB}")).covered_by(&registered));
    assert!(set("patient/Observation.read").covered_by(&registered));
    assert!(!set("patient/Observation.c").covered_by(&registered));
    assert!(!set("user/Patient.r").covered_by(&registered));
    assert!(!set("patient/Observation.rs fhirUser").covered_by(&registered));
    assert!(!set("system/Observation.r").covered_by(&registered));
    // refresh never widens: granular granted, plain requested
    let granted = set(&format!("patient/Observation.rs?category={LAB}"));
    assert!(!set("patient/Observation.rs").covered_by(&granted));
    // per-letter coverage from several scopes
    assert!(set("user/Patient.cruds").covered_by(&set("user/Patient.rs user/Patient.cud")));
    // a specific type never covers *
    assert!(!set("patient/*.rs").covered_by(&set("patient/Observation.rs")));
}

#[test]
fn narrowing_keeps_covered_scopes_and_intersects_the_rest() {
    let requested = set("patient/*.read patient/Observation.cruds launch/patient openid");
    let allowed = set(&format!(
        "patient/Observation.rs?category={LAB} patient/Patient.r launch/patient"
    ));
    let got = requested.narrowed_to(&allowed);
    assert_eq!(
        got.to_string(),
        format!("patient/Observation.rs?category={LAB} patient/Patient.r launch/patient")
    );
    assert!(got.covered_by(&allowed) && got.covered_by(&requested));
    let same = set("user/*.rs openid");
    assert_eq!(same.narrowed_to(&same), same);
    assert!(set("patient/Observation.rs")
        .narrowed_to(&set("user/*.cruds"))
        .is_empty());
}
