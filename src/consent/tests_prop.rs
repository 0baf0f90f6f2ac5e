//! Property test: `decide` equals a tiny reference evaluator written from
//! the module docs, over random provision trees (depth ≤ 3) and requests.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::tests::{bare_policy, clinician, consent, resource, run};
use super::*;

#[derive(Debug, Clone)]
struct Node {
    kind: Option<bool>, // Some(true) = permit
    actor: Option<&'static str>,
    purpose: Option<&'static str>,
    label: Option<&'static str>,
    class: Option<&'static str>,
    children: Vec<Node>,
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (
        prop::option::of(any::<bool>()),
        prop::option::of(prop::sample::select(vec![
            "Practitioner/7",
            "Practitioner/8",
        ])),
        prop::option::of(prop::sample::select(vec!["TREAT", "HRESCH"])),
        prop::option::of(prop::sample::select(vec!["HIV", "PSY", "R"])),
        prop::option::of(prop::sample::select(vec!["Observation", "Condition"])),
    )
        .prop_map(|(kind, actor, purpose, label, class)| Node {
            kind,
            actor,
            purpose,
            label,
            class,
            children: Vec::new(),
        });
    leaf.prop_recursive(2, 12, 3, |inner| {
        (inner.clone(), prop::collection::vec(inner, 0..3)).prop_map(|(mut n, children)| {
            n.children = children;
            n
        })
    })
}

/// An untyped root needs typed children (else the Consent is malformed).
fn normalize(mut n: Node, root: bool) -> Node {
    let untyped_root = root && n.kind.is_none();
    n.children = n
        .children
        .into_iter()
        .map(|mut c| {
            if untyped_root && c.kind.is_none() {
                c.kind = Some(false);
            }
            normalize(c, false)
        })
        .collect();
    n
}

fn to_json(n: &Node) -> Value {
    let mut v = json!({});
    if let Some(k) = n.kind {
        v["type"] = json!(if k { "permit" } else { "deny" });
    }
    if let Some(a) = n.actor {
        v["actor"] = json!([{"reference": {"reference": a}}]);
    }
    if let Some(p) = n.purpose {
        v["purpose"] = json!([{"code": p}]);
    }
    if let Some(l) = n.label {
        let system = if l == "R" {
            classify::CONFIDENTIALITY
        } else {
            classify::ACT_CODE
        };
        v["securityLabel"] = json!([{"system": system, "code": l}]);
    }
    if let Some(c) = n.class {
        v["class"] = json!([{"code": c}]);
    }
    if !n.children.is_empty() {
        v["provision"] = Value::Array(n.children.iter().map(to_json).collect());
    }
    v
}

struct Req {
    actor: &'static str,
    purpose: &'static str,
    class: &'static str,
    labels: Vec<&'static str>,
}

/// Reference reading: a provision applies when all its stated conditions
/// hold; the deepest applicable provision decides, deny wins among siblings;
/// an untyped provision is the opposite of its parent.
fn reference_eval(n: &Node, parent: Option<bool>, r: &Req) -> Option<bool> {
    let kind = n.kind.or(parent.map(|p| !p));
    let label_ok = match n.label {
        None => true,
        Some("R") => r.labels.contains(&"R"),
        Some(l) => r.labels.contains(&l),
    };
    let ok = n.actor.is_none_or(|a| a == r.actor)
        && n.purpose.is_none_or(|p| p == r.purpose)
        && n.class.is_none_or(|c| c == r.class)
        && label_ok;
    if !ok {
        return None;
    }
    let kids: Vec<bool> = n
        .children
        .iter()
        .filter_map(|c| reference_eval(c, kind, r))
        .collect();
    if !kids.is_empty() {
        return Some(kids.iter().all(|p| *p));
    }
    kind
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn decide_matches_reference(
        trees in prop::collection::vec((node(), any::<bool>()), 0..3),
        opt_out in any::<bool>(),
        actor in prop::sample::select(vec!["Practitioner/7", "Practitioner/8"]),
        purpose in prop::sample::select(vec!["TREAT", "HRESCH"]),
        class in prop::sample::select(vec!["Observation", "Condition"]),
        labels in prop::sample::subsequence(vec!["HIV", "PSY", "R"], 0..=3),
    ) {
        let base = if opt_out { BasePolicy::OptOut } else { BasePolicy::OptIn };
        let policy = bare_policy(base);
        let trees: Vec<(Node, bool)> = trees.into_iter().map(|(n, a)| (normalize(n, true), a)).collect();
        let consents: Vec<ConsentModel> = trees
            .iter()
            .map(|(n, active)| consent(if *active { "active" } else { "inactive" }, to_json(n)))
            .collect();
        let mut res = resource(&labels.iter().copied().filter(|l| *l != "R").collect::<Vec<_>>());
        res["resourceType"] = json!(class);
        if labels.contains(&"R") {
            if let Some(sec) = res["meta"]["security"].as_array_mut() {
                sec.push(json!({"system": classify::CONFIDENTIALITY, "code": "R"}));
            }
        }
        let who = Requester { fhir_user: Some(actor.into()), ..clinician() };
        let class_of = classify(&res, &policy.value_sets);
        let d = run(&class_of, &who, Some(purpose), &consents, &policy);
        let req = Req { actor, purpose, class, labels };
        let votes: Vec<bool> = trees
            .iter()
            .filter(|(_, active)| *active)
            .filter_map(|(n, _)| reference_eval(n, None, &req))
            .collect();
        let expected = if votes.is_empty() { opt_out } else { votes.iter().all(|p| *p) };
        prop_assert_eq!(d.effect == Effect::Permit, expected, "{}", d);
        prop_assert!(matches!(d.effect, Effect::Permit | Effect::Deny));
    }
}
