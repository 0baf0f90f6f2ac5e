//! Table tests of the combination rules and named scenario tests.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

pub(super) const NOW: i64 = 1_750_000_000; // 2025-06-15

pub(super) fn bare_policy(base: BasePolicy) -> Policy {
    Policy {
        federal: Vec::new(),
        states: BTreeMap::new(),
        ..Policy::starter(base)
    }
}

pub(super) fn resource(labels: &[&str]) -> Value {
    let sec: Vec<Value> = labels
        .iter()
        .map(|c| json!({"system": classify::ACT_CODE, "code": c}))
        .collect();
    json!({"resourceType": "Observation", "id": "o1", "meta": {"security": sec},
        "subject": {"reference": "Patient/1"}, "effectiveDateTime": "2024-05-01",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}})
}

pub(super) fn consent(status: &str, provision: Value) -> ConsentModel {
    let v = json!({"resourceType": "Consent", "id": "c1", "meta": {"versionId": "3"},
        "status": status, "scope": {"coding": [{"code": "patient-privacy"}]},
        "patient": {"reference": "Patient/1"}, "provision": provision});
    match parse_consent(&v) {
        Ok(c) => c,
        Err(e) => panic!("test consent does not parse: {e}"),
    }
}

pub(super) fn clinician() -> Requester {
    Requester {
        client_id: "ehr".into(),
        fhir_user: Some("Practitioner/7".into()),
        role: Some("clinician".into()),
        organization: None,
    }
}

pub(super) fn run(
    class: &Classification,
    who: &Requester,
    purpose: Option<&str>,
    consents: &[ConsentModel],
    policy: &Policy,
) -> Decision {
    let input = DecisionInput {
        class,
        patient: Some("Patient/1"),
        patient_state: None,
        requester: who,
        purpose,
        reason: None,
        action: Action::Read,
        now: NOW,
    };
    decide(&input, consents, policy)
}

fn released(e: &Effect) -> bool {
    !matches!(e, Effect::Deny)
}

/// base × root type × exception × period × status × actor × purpose × label.
#[test]
fn combination_table() {
    let mut cases = 0;
    for base in [BasePolicy::OptIn, BasePolicy::OptOut] {
        let policy = bare_policy(base);
        for root in [None, Some("permit"), Some("deny")] {
            for exception in [false, true] {
                for period_in in [true, false] {
                    for status in ["active", "inactive", "entered-in-error"] {
                        for actor_match in [true, false] {
                            for purpose_match in [true, false] {
                                for label_match in [true, false] {
                                    cases += 1;
                                    let period = if period_in {
                                        json!({"start": "2025-01-01", "end": "2025-12-31"})
                                    } else {
                                        json!({"start": "2020-01-01", "end": "2020-12-31"})
                                    };
                                    let actor = if actor_match {
                                        "Practitioner/7"
                                    } else {
                                        "Practitioner/8"
                                    };
                                    let purpose = if purpose_match { "TREAT" } else { "HRESCH" };
                                    let mut prov = json!({"period": period});
                                    if let Some(t) = root {
                                        prov["type"] = json!(t);
                                    }
                                    if exception {
                                        prov["provision"] = json!([{
                                            "type": if root == Some("deny") { "permit" } else { "deny" },
                                            "actor": [{"reference": {"reference": actor}}],
                                            "purpose": [{"code": purpose}],
                                            "securityLabel": [{"system": classify::ACT_CODE, "code": "HIV"}],
                                        }]);
                                    }
                                    let labels: &[&str] = if label_match { &["HIV"] } else { &[] };
                                    let class = classify(&resource(labels), &policy.value_sets);
                                    let c = consent(status, prov);
                                    let d = run(
                                        &class,
                                        &clinician(),
                                        None,
                                        std::slice::from_ref(&c),
                                        &policy,
                                    );
                                    // The written rules, spelled out:
                                    let applies = status == "active" && period_in;
                                    let child =
                                        exception && actor_match && purpose_match && label_match;
                                    // The exception (deny under permit or untyped, permit
                                    // under deny) decides when it matches.
                                    let expect_release = if !applies {
                                        base == BasePolicy::OptOut
                                    } else if child {
                                        root == Some("deny")
                                    } else {
                                        match root {
                                            Some(t) => t == "permit",
                                            None => base == BasePolicy::OptOut,
                                        }
                                    };
                                    assert_eq!(
                                        released(&d.effect),
                                        expect_release,
                                        "base={base:?} root={root:?} exc={exception} period={period_in} \
                                         status={status} actor={actor_match} purpose={purpose_match} \
                                         label={label_match}: {d}"
                                    );
                                    let from_consent = applies && (child || root.is_some());
                                    assert_eq!(
                                        matches!(d.basis, Basis::Consent { .. }),
                                        from_consent,
                                        "{d}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 2 * 3 * 2 * 2 * 3 * 2 * 2 * 2);
}
