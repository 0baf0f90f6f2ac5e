//! Named scenario tests: explanations, several Consents, labels, break the
//! glass, jurisdiction packs, redaction, data references, malformed input.

use std::collections::BTreeSet;

use serde_json::json;

use super::tests::{bare_policy, clinician, consent, resource, run, NOW};
use super::*;

#[test]
fn explanation_names_consent_version_and_path() {
    let policy = bare_policy(BasePolicy::OptOut);
    let c = consent(
        "active",
        json!({"type": "permit", "provision": [
            {"type": "deny", "class": [{"code": "Condition"}]},
            {"type": "deny", "class": [{"code": "Observation"}],
             "provision": [{"purpose": [{"code": "HRESCH"}]}]}
        ]}),
    );
    let class = classify(&resource(&[]), &policy.value_sets);
    let d = run(
        &class,
        &clinician(),
        None,
        std::slice::from_ref(&c),
        &policy,
    );
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(
        d.to_string(),
        "Deny by Consent/c1 v3 provision.provision[1]"
    );
    // The untyped grandchild is an exception to its deny parent: a permit.
    let d = run(&class, &clinician(), Some("HRESCH"), &[c], &policy);
    assert_eq!(d.effect, Effect::Permit);
    assert_eq!(
        d.to_string(),
        "Permit by Consent/c1 v3 provision.provision[1].provision[0]"
    );
}

#[test]
fn several_consents_deny_overrides() {
    let policy = bare_policy(BasePolicy::OptIn);
    let permit = consent("active", json!({"type": "permit"}));
    let mut deny = consent(
        "active",
        json!({"type": "deny", "actor": [{"reference": {"reference": "Practitioner/7"}}]}),
    );
    deny.id = "c2".into();
    let class = classify(&resource(&[]), &policy.value_sets);
    let d = run(
        &class,
        &clinician(),
        None,
        &[permit.clone(), deny.clone()],
        &policy,
    );
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.basis.to_string(), "Consent/c2 v3 provision");
    let d = run(&class, &clinician(), None, &[deny, permit], &policy);
    assert_eq!(d.effect, Effect::Deny);
}

#[test]
fn confidentiality_label_is_a_high_water_mark() {
    let policy = bare_policy(BasePolicy::OptOut);
    let c = consent(
        "active",
        json!({"type": "deny", "securityLabel": [{"system": classify::CONFIDENTIALITY, "code": "R"}]}),
    );
    for (label, denied) in [("N", false), ("R", true), ("V", true)] {
        let mut r = resource(&[]);
        r["meta"]["security"] = json!([{"system": classify::CONFIDENTIALITY, "code": label}]);
        let class = classify(&r, &policy.value_sets);
        let d = run(
            &class,
            &clinician(),
            None,
            std::slice::from_ref(&c),
            &policy,
        );
        assert_eq!(d.effect == Effect::Deny, denied, "{label}");
    }
}

#[test]
fn own_access_always_permitted() {
    let policy = Policy::starter(BasePolicy::OptIn);
    let c = consent("active", json!({"type": "deny"}));
    let class = classify(&resource(&["SUD"]), &policy.value_sets);
    let me = Requester {
        client_id: "app".into(),
        fhir_user: Some("Patient/1".into()),
        role: Some("patient".into()),
        organization: None,
    };
    let d = run(&class, &me, None, &[c], &policy);
    assert_eq!((d.effect, d.basis), (Effect::Permit, Basis::SelfAccess));
    assert!(d.cleared.contains(&Sensitivity::Sud));
}

#[test]
fn break_the_glass_needs_purpose_role_and_reason() {
    let policy = bare_policy(BasePolicy::OptOut);
    let c = consent("active", json!({"type": "deny"}));
    let class = classify(&resource(&[]), &policy.value_sets);
    let admin = Requester {
        role: Some("admin".into()),
        ..clinician()
    };
    for (who, purpose, reason, btg) in [
        (clinician(), Some("ETREAT"), Some("unconscious in ED"), true),
        (clinician(), Some("BTG"), Some("code blue"), true),
        (clinician(), Some("ETREAT"), None, false),
        (clinician(), Some("ETREAT"), Some("  "), false),
        (clinician(), Some("TREAT"), Some("x"), false),
        (admin, Some("ETREAT"), Some("x"), false),
    ] {
        let input = DecisionInput {
            class: &class,
            patient: Some("Patient/1"),
            patient_state: None,
            requester: &who,
            purpose,
            reason,
            action: Action::Read,
            now: NOW,
        };
        let d = decide(&input, std::slice::from_ref(&c), &policy);
        assert_eq!(
            d.effect == Effect::BreakTheGlass,
            btg,
            "{purpose:?} {reason:?} {d}"
        );
        assert_eq!(d.overridden.is_some(), btg);
    }
}

#[test]
fn part2_needs_a_consent_naming_sud_and_adds_nordsclcd() {
    let policy = Policy::starter(BasePolicy::OptOut);
    let class = classify(&resource(&["SUD"]), &policy.value_sets);
    let d = run(&class, &clinician(), None, &[], &policy);
    assert_eq!(
        (d.effect, d.basis.to_string()),
        (Effect::Deny, "us-42cfr2 rule part2.sud".into())
    );
    let generic = consent("active", json!({"type": "permit"}));
    assert_eq!(
        run(&class, &clinician(), None, &[generic], &policy).effect,
        Effect::Deny
    );
    let named = consent(
        "active",
        json!({"type": "deny", "provision": [{"type": "permit",
            "securityLabel": [{"system": classify::ACT_CODE, "code": "SUD"}]}]}),
    );
    let d = run(&class, &clinician(), None, &[named], &policy);
    assert_eq!(d.effect, Effect::Permit);
    assert_eq!(d.obligations, vec!["NORDSCLCD".to_owned()]);
    // Unlabelled but SUD by code (ICD-10-CM F11.20) is covered too.
    let mut r = resource(&[]);
    r["code"] = json!({"coding": [{"system": codes::ICD10CM, "code": "F11.20"}]});
    let class = classify(&r, &policy.value_sets);
    assert_eq!(
        run(&class, &clinician(), None, &[], &policy).effect,
        Effect::Deny
    );
}

#[test]
fn state_packs_follow_patient_state() {
    let policy = Policy::starter(BasePolicy::OptOut);
    let class = classify(&resource(&[]), &policy.value_sets);
    let hiv = classify(&resource(&["HIV"]), &policy.value_sets);
    let who = clinician();
    let go = |class: &Classification,
              state: Option<&str>,
              purpose: Option<&str>,
              consents: &[ConsentModel]| {
        let input = DecisionInput {
            class,
            patient: Some("Patient/1"),
            patient_state: state,
            requester: &who,
            purpose,
            reason: None,
            action: Action::Read,
            now: NOW,
        };
        decide(&input, consents, &policy).effect
    };
    assert_eq!(go(&class, Some("TX"), Some("TREAT"), &[]), Effect::Permit);
    assert_eq!(go(&class, Some("tx"), Some("HRESCH"), &[]), Effect::Deny);
    assert_eq!(go(&class, Some("NY"), Some("HRESCH"), &[]), Effect::Permit);
    assert_eq!(go(&class, Some("CA"), Some("PUBHLTH"), &[]), Effect::Deny);
    let permit = consent("active", json!({"type": "permit"}));
    assert_eq!(
        go(
            &class,
            Some("CA"),
            Some("PUBHLTH"),
            std::slice::from_ref(&permit)
        ),
        Effect::Permit
    );
    // CA HIV: payment is TPO but still needs a consent naming HIV.
    assert_eq!(
        go(
            &hiv,
            Some("CA"),
            Some("HPAYMT"),
            std::slice::from_ref(&permit)
        ),
        Effect::Deny
    );
    assert_eq!(go(&hiv, Some("CA"), Some("TREAT"), &[]), Effect::Permit);
}

#[test]
fn inline_labels_redact_instead_of_deny() {
    let policy = bare_policy(BasePolicy::OptOut);
    let c = consent(
        "active",
        json!({"type": "permit", "provision": [{"type": "deny",
        "securityLabel": [{"system": classify::ACT_CODE, "code": "PSY"}]}]}),
    );
    let mut r = resource(&[]);
    r["note"] = json!([{"text": "ok"}, {"text": "psych history", "extension": [{"url": classify::INLINE_LABEL,
        "valueCoding": {"system": classify::ACT_CODE, "code": "PSY"}}]}]);
    r["text"] = json!({"status": "generated", "div": "<div>psych history</div>"});
    let class = classify(&r, &policy.value_sets);
    let d = run(&class, &clinician(), None, &[c], &policy);
    let cats: BTreeSet<_> = [Sensitivity::Psy].into_iter().collect();
    assert_eq!(d.effect, Effect::Redact(cats.clone()));
    redact::redact(&mut r, &cats);
    let out = r.to_string();
    assert!(!out.contains("psych history"), "{out}");
    assert!(out.contains("REDACTED") && out.contains("\"ok\""));
}

#[test]
fn data_meanings_and_unknown_data_period() {
    let policy = bare_policy(BasePolicy::OptOut);
    let class = classify(&resource(&[]), &policy.value_sets);
    for (meaning, reference, denied) in [
        ("instance", "Observation/o1", true),
        ("instance", "Patient/1", false),
        ("related", "Patient/1", true),
        ("dependents", "Observation/o1", false),
        ("authoredby", "Patient/1", false),
    ] {
        let c = consent(
            "active",
            json!({"type": "permit", "provision": [{"type": "deny",
            "data": [{"meaning": meaning, "reference": {"reference": reference}}]}]}),
        );
        let d = run(&class, &clinician(), None, &[c], &policy);
        assert_eq!(d.effect == Effect::Deny, denied, "{meaning} {reference}");
    }
    let mut r = resource(&[]);
    if let Some(o) = r.as_object_mut() {
        o.remove("effectiveDateTime");
    }
    let undated = classify(&r, &policy.value_sets);
    let window = json!({"start": "2024-01-01", "end": "2024-12-31"});
    let deny = consent(
        "active",
        json!({"type": "permit", "provision": [{"type": "deny", "dataPeriod": window}]}),
    );
    assert_eq!(
        run(
            &undated,
            &clinician(),
            None,
            std::slice::from_ref(&deny),
            &policy
        )
        .effect,
        Effect::Deny
    );
    let permit = consent(
        "active",
        json!({"type": "deny", "provision": [{"type": "permit", "dataPeriod": window}]}),
    );
    assert_eq!(
        run(
            &undated,
            &clinician(),
            None,
            std::slice::from_ref(&permit),
            &policy
        )
        .effect,
        Effect::Deny
    );
    assert_eq!(
        run(&class, &clinician(), None, &[permit], &policy).effect,
        Effect::Permit
    );
}

#[test]
fn research_scope_applies_only_to_research() {
    let policy = bare_policy(BasePolicy::OptOut);
    let mut c = consent("active", json!({"type": "deny"}));
    c.scope = model::ConsentScope::Research;
    let class = classify(&resource(&[]), &policy.value_sets);
    assert_eq!(
        run(
            &class,
            &clinician(),
            None,
            std::slice::from_ref(&c),
            &policy
        )
        .effect,
        Effect::Permit
    );
    assert_eq!(
        run(&class, &clinician(), Some("HRESCH"), &[c], &policy).effect,
        Effect::Deny
    );
}

#[test]
fn malformed_consents_name_the_path() {
    let base = json!({"resourceType": "Consent", "status": "active", "scope": {"coding": [{"code": "patient-privacy"}]}});
    let cases = [
        (json!({"status": null}), "Consent.status"),
        (json!({"status": "maybe"}), "Consent.status"),
        (
            json!({"provision": {"type": "allow"}}),
            "Consent.provision.type",
        ),
        (
            json!({"provision": {"type": "permit", "provision": [{}, {"actor": [{"role": {"coding": [{"code": "x"}]}}]}]}}),
            "Consent.provision.provision[1].actor[0].reference",
        ),
        (
            json!({"provision": {"provision": [{"class": []}]}}),
            "Consent.provision.provision[0].type",
        ),
        (
            json!({"provision": {"type": "deny", "period": {"start": "2024-13-01"}}}),
            "Consent.provision.period",
        ),
        (
            json!({"provision": {"type": "deny", "data": [{"meaning": "all", "reference": {"reference": "X/1"}}]}}),
            "Consent.provision.data[0].meaning",
        ),
    ];
    for (patch, path) in cases {
        let mut v = base.clone();
        if let (Some(o), Some(p)) = (v.as_object_mut(), patch.as_object()) {
            for (k, val) in p {
                if val.is_null() {
                    o.remove(k);
                } else {
                    o.insert(k.clone(), val.clone());
                }
            }
        }
        match parse_consent(&v) {
            Err(ConsentError::Missing { path: p } | ConsentError::Invalid { path: p, .. }) => {
                assert_eq!(p, path)
            }
            Ok(c) => panic!("{path}: parsed {c:?}"),
        }
    }
}

#[test]
fn writes_ignore_the_opt_in_base_but_not_a_deny() {
    let policy = bare_policy(BasePolicy::OptIn);
    let class = classify(&resource(&["SUD"]), &policy.value_sets);
    let who = clinician();
    let write = |consents: &[ConsentModel]| {
        let input = DecisionInput {
            class: &class,
            patient: Some("Patient/1"),
            patient_state: None,
            requester: &who,
            purpose: None,
            reason: None,
            action: Action::Write,
            now: NOW,
        };
        decide(&input, consents, &policy).effect
    };
    assert_eq!(write(&[]), Effect::Permit);
    let deny_access = consent(
        "active",
        json!({"type": "deny", "action": [{"coding": [{"code": "access"}]}]}),
    );
    assert_eq!(write(std::slice::from_ref(&deny_access)), Effect::Permit);
    let deny_all = consent("active", json!({"type": "deny"}));
    assert_eq!(write(&[deny_all]), Effect::Deny);
}

#[test]
fn data_about_no_patient_skips_consents_but_not_part2() {
    let policy = Policy::starter(BasePolicy::OptIn);
    let deny = consent("active", json!({"type": "deny"}));
    let who = clinician();
    for (labels, expected) in [(&[][..], Effect::Permit), (&["SUD"][..], Effect::Deny)] {
        let class = classify(&resource(labels), &policy.value_sets);
        let input = DecisionInput {
            class: &class,
            patient: None,
            patient_state: None,
            requester: &who,
            purpose: None,
            reason: None,
            action: Action::Read,
            now: NOW,
        };
        let d = decide(&input, std::slice::from_ref(&deny), &policy);
        assert_eq!(d.effect, expected, "{d}");
    }
}
