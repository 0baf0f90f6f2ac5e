//! Consent evaluator: `parse_consent` on each Consent, `classify` on the
//! resource, then `decide` for a spread of requesters, purposes, actions and
//! both base policies, and `redact` when the decision says so
//! (fhirgate/src/consent/). Input: JSON
//! `{"consents": [Consent...], "resource": {...}, "patient": {Patient}}`;
//! any other JSON value is taken as one Consent about a fixed Observation.
#![no_main]

use fhirgate::consent::{
    classify, decide, parse_consent,
    policy::patient_state,
    redact::{add_obligations, redact, strip_sensitivity_tags},
    Action, BasePolicy, DecisionInput, Effect, Policy, Requester,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_000;

fn requesters() -> Vec<Requester> {
    let r = |client: &str, user: Option<&str>, role: Option<&str>, org: Option<&str>| Requester {
        client_id: client.into(),
        fhir_user: user.map(str::to_owned),
        role: role.map(str::to_owned),
        organization: org.map(str::to_owned),
    };
    vec![
        r("app", None, None, None),
        r(
            "ehr",
            Some("Practitioner/7"),
            Some("clinician"),
            Some("Organization/1"),
        ),
        r("portal", Some("Patient/1"), Some("patient"), None),
        r("admin", Some("Practitioner/9"), Some("admin"), None),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (consents, resource, patient) = match v.get("consents").and_then(Value::as_array) {
        Some(list) => (list.clone(), v["resource"].clone(), v["patient"].clone()),
        None => (
            vec![v.clone()],
            json!({"resourceType": "Observation", "id": "o1",
                   "subject": {"reference": "Patient/1"}, "status": "final"}),
            Value::Null,
        ),
    };
    let models: Vec<_> = consents
        .iter()
        .filter_map(|c| parse_consent(c).ok())
        .collect();
    let state = patient_state(&patient);
    let requesters = requesters();
    for base in [BasePolicy::OptIn, BasePolicy::OptOut] {
        let policy = Policy::starter(base);
        let class = classify(&resource, &policy.value_sets);
        for requester in &requesters {
            for purpose in [None, Some("TREAT"), Some("ETREAT"), Some("HRESCH")] {
                for action in [Action::Read, Action::Write] {
                    let input = DecisionInput {
                        class: &class,
                        patient: Some("Patient/1"),
                        patient_state: state.as_deref(),
                        requester,
                        purpose,
                        reason: purpose.filter(|p| *p == "ETREAT"),
                        action,
                        now: NOW,
                    };
                    let d = decide(&input, &models, &policy);
                    let _ = d.to_string();
                    let mut out = resource.clone();
                    if let Effect::Redact(categories) = &d.effect {
                        redact(&mut out, categories);
                    }
                    strip_sensitivity_tags(&mut out, &d.cleared);
                    add_obligations(&mut out, &d.obligations);
                }
            }
        }
    }
});
