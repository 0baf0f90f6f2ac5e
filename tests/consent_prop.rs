//! Property test of consent enforcement through the facade (issue 4, "Proof:
//! property tests"): random Consents (provision trees with permit/deny,
//! actor, purpose, securityLabel, class and period, active or not) for two
//! patients living in no state, Texas or California, random Observations and
//! Conditions (with or without an HIV code or a PSY label), random callers
//! (clinicians Practitioner/7 and /8, a payer backend, with or without a
//! purpose of use, stated in the token or in `X-Purpose-Of-Use`). Each case
//! loads a fresh app through the facade (exempt loader `test-client`; the
//! Consents written by their patient, so the index is updated), then searches
//! `Observation` and `Condition` page by page (also from a caller-supplied
//! `_offset`), counts them and reads every resource. What is released must
//! equal a reference evaluator written here from the rules in the docs of
//! `src/consent/mod.rs` and `src/consent/policy.rs` (not the project's
//! `decide`). Two fixed regressions follow: `_offset` counting hidden
//! matches, and a decision depending on the order of Consents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::TestApp;
use proptest::prelude::*;
use serde_json::{json, Value};

const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const PATIENTS: [&str; 2] = ["p1", "p2"];
const TPO: [&str; 4] = ["TREAT", "ETREAT", "HPAYMT", "HOPERAT"];

// ---------------------------------------------------------------- the model

/// When a provision's `period` lies relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Past,
    Now,
    Future,
}

impl When {
    fn json(self) -> Value {
        match self {
            Self::Past => json!({"start": "2001-01-01", "end": "2002-06-30"}),
            Self::Now => json!({"start": "2001-01-01", "end": "2999-12-31"}),
            Self::Future => json!({"start": "2990-01-01"}),
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    /// `Some(true)` = permit, `Some(false)` = deny, `None` = untyped.
    kind: Option<bool>,
    actor: Option<&'static str>,
    purpose: Option<&'static str>,
    /// `HIV`, `PSY` (sensitivity) or `R` (confidentiality).
    label: Option<&'static str>,
    class: Option<&'static str>,
    period: Option<When>,
    children: Vec<Node>,
}

#[derive(Debug, Clone)]
struct ConsentSpec {
    patient: usize,
    active: bool,
    root: Node,
}

#[derive(Debug, Clone)]
struct Res {
    observation: bool,
    patient: usize,
    /// Coded ICD-10-CM B20 (HIV disease): HIV by the starter value sets.
    hiv: bool,
    /// Labelled PSY in `meta.security`.
    psy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Clin7,
    Clin8,
    Payer,
}

#[derive(Debug, Clone)]
struct Caller {
    who: Who,
    purpose: Option<&'static str>,
    via_header: bool,
}

#[derive(Debug, Clone)]
struct Case {
    opt_out: bool,
    states: Vec<Option<&'static str>>,
    consents: Vec<ConsentSpec>,
    resources: Vec<Res>,
    callers: Vec<Caller>,
    page: usize,
    /// A caller-supplied `_offset`: it counts released matches only.
    offset: usize,
}

// ---------------------------------------------------------------- strategies

fn when() -> impl Strategy<Value = When> {
    prop_oneof![2 => Just(When::Now), 1 => Just(When::Past), 1 => Just(When::Future)]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (
        prop::option::of(any::<bool>()),
        prop::option::weighted(
            0.4,
            prop::sample::select(vec!["Practitioner/7", "Practitioner/8", "Device/payer"]),
        ),
        prop::option::weighted(0.3, prop::sample::select(vec!["TREAT", "HPAYMT", "HRESCH"])),
        prop::option::weighted(0.5, prop::sample::select(vec!["HIV", "PSY", "R"])),
        prop::option::weighted(0.3, prop::sample::select(vec!["Observation", "Condition"])),
        prop::option::weighted(0.3, when()),
    )
        .prop_map(|(kind, actor, purpose, label, class, period)| Node {
            kind,
            actor,
            purpose,
            label,
            class,
            period,
            children: Vec::new(),
        });
    leaf.prop_recursive(2, 10, 3, |inner| {
        (inner.clone(), prop::collection::vec(inner, 0..3)).prop_map(|(mut n, children)| {
            n.children = children;
            n
        })
    })
}

/// Children of an untyped root must be typed (else the Consent is
/// malformed; R4 gives an untyped root nothing to be the opposite of).
fn normalize(mut n: Node) -> Node {
    if n.kind.is_none() {
        for c in &mut n.children {
            c.kind.get_or_insert(false);
        }
    }
    n
}

fn consent_spec() -> impl Strategy<Value = ConsentSpec> {
    (0..2usize, prop::bool::weighted(0.8), node()).prop_map(|(patient, active, root)| ConsentSpec {
        patient,
        active,
        root: normalize(root),
    })
}

fn res() -> impl Strategy<Value = Res> {
    (
        any::<bool>(),
        0..2usize,
        prop::bool::weighted(0.4),
        prop::bool::weighted(0.4),
    )
        .prop_map(|(observation, patient, hiv, psy)| Res {
            observation,
            patient,
            hiv,
            psy,
        })
}

fn caller() -> impl Strategy<Value = Caller> {
    (
        prop::sample::select(vec![Who::Clin7, Who::Clin8, Who::Payer]),
        prop::option::of(prop::sample::select(vec!["TREAT", "HPAYMT", "HRESCH"])),
        any::<bool>(),
    )
        .prop_map(|(who, purpose, via_header)| Caller {
            who,
            purpose,
            via_header,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop::collection::vec(prop::sample::select(vec![None, Some("TX"), Some("CA")]), 2),
        prop::collection::vec(consent_spec(), 0..4),
        prop::collection::vec(res(), 1..8),
        prop::collection::vec(caller(), 1..3),
        1..4usize,
        0..4usize,
    )
        .prop_map(
            |(opt_out, states, consents, resources, callers, page, offset)| Case {
                opt_out,
                states,
                consents,
                resources,
                callers,
                page,
                offset,
            },
        )
}

// ---------------------------------------------------------------- FHIR JSON

fn res_id(i: usize, r: &Res) -> String {
    format!("{}{i}", if r.observation { "o" } else { "c" })
}

fn res_type(r: &Res) -> &'static str {
    if r.observation {
        "Observation"
    } else {
        "Condition"
    }
}

fn res_json(i: usize, r: &Res) -> Value {
    let coding = if r.hiv {
        json!({"system": ICD10CM, "code": "B20", "display": "HIV disease"})
    } else {
        json!({"system": "http://loinc.org", "code": "2345-7"})
    };
    let mut v = json!({
        "resourceType": res_type(r),
        "id": res_id(i, r),
        "code": {"coding": [coding]},
        "subject": {"reference": format!("Patient/{}", PATIENTS[r.patient])},
    });
    if r.observation {
        v["status"] = json!("final");
    }
    if r.psy {
        v["meta"] = json!({"security": [{"system": ACT, "code": "PSY"}]});
    }
    v
}

fn provision_json(n: &Node) -> Value {
    let mut v = json!({});
    if let Some(k) = n.kind {
        v["type"] = json!(if k { "permit" } else { "deny" });
    }
    if let Some(p) = n.period {
        v["period"] = p.json();
    }
    if let Some(a) = n.actor {
        v["actor"] = json!([{"reference": {"reference": a}}]);
    }
    if let Some(p) = n.purpose {
        v["purpose"] =
            json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": p}]);
    }
    if let Some(l) = n.label {
        let system = if l == "R" { CONF } else { ACT };
        v["securityLabel"] = json!([{"system": system, "code": l}]);
    }
    if let Some(c) = n.class {
        v["class"] = json!([{"system": "http://hl7.org/fhir/resource-types", "code": c}]);
    }
    if !n.children.is_empty() {
        v["provision"] = Value::Array(n.children.iter().map(provision_json).collect());
    }
    v
}

fn consent_json(i: usize, c: &ConsentSpec) -> Value {
    let p = format!("Patient/{}", PATIENTS[c.patient]);
    json!({"resourceType": "Consent", "id": format!("k{i}"),
        "status": if c.active { "active" } else { "inactive" },
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": p},
        "performer": [{"reference": p}],
        "provision": provision_json(&c.root)})
}

// ---------------------------------------------------------------- reference

/// What a provision sees of one request and one resource.
struct Facts {
    identities: Vec<&'static str>,
    /// Purpose of use: the stated one, else TREAT for clinicians, else none.
    purpose: Option<&'static str>,
    class: &'static str,
    /// Sensitivity categories: labelled ∪ implied by codes.
    cats: BTreeSet<&'static str>,
    /// Confidentiality ≥ R (a code-implied category raises unlabelled data to R).
    restricted: bool,
}

fn facts(c: &Caller, r: &Res) -> Facts {
    let (identities, default_purpose) = match c.who {
        Who::Clin7 => (vec!["Practitioner/7", "Device/ehr"], Some("TREAT")),
        Who::Clin8 => (vec!["Practitioner/8", "Device/ehr"], Some("TREAT")),
        Who::Payer => (vec!["Device/payer"], None),
    };
    let mut cats = BTreeSet::new();
    if r.hiv {
        cats.insert("HIV");
    }
    if r.psy {
        cats.insert("PSY");
    }
    Facts {
        identities,
        purpose: c.purpose.or(default_purpose),
        class: res_type(r),
        cats,
        restricted: r.hiv,
    }
}

/// A provision matches when every condition it states holds.
fn holds(n: &Node, f: &Facts) -> bool {
    n.period.is_none_or(|w| w == When::Now)
        && n.actor.is_none_or(|a| f.identities.contains(&a))
        && n.purpose.is_none_or(|p| f.purpose == Some(p))
        && n.class.is_none_or(|c| c == f.class)
        && n.label.is_none_or(|l| match l {
            "R" => f.restricted,
            l => f.cats.contains(l),
        })
}

/// The deciding provisions of a tree: `None` when nothing decides, else
/// permit/deny and, for a permit, the categories each permitting provision
/// (or an ancestor) names. The deepest matching provision decides; children
/// count only when their parent matches; deny overrides permit among
/// siblings; an untyped provision is the opposite of its parent; an untyped
/// root decides nothing itself.
fn eval(
    n: &Node,
    parent: Option<bool>,
    named: &BTreeSet<&'static str>,
    f: &Facts,
) -> Option<(bool, Vec<BTreeSet<&'static str>>)> {
    if !holds(n, f) {
        return None;
    }
    let kind = n.kind.or(parent.map(|p| !p));
    let mut named = named.clone();
    if let Some(l) = n.label.filter(|l| *l != "R") {
        named.insert(l);
    }
    let kids: Vec<_> = n
        .children
        .iter()
        .filter_map(|c| eval(c, kind, &named, f))
        .collect();
    if !kids.is_empty() {
        if kids.iter().any(|(permit, _)| !permit) {
            return Some((false, Vec::new()));
        }
        return Some((true, kids.into_iter().flat_map(|(_, n)| n).collect()));
    }
    kind.map(|k| (k, if k { vec![named] } else { Vec::new() }))
}

/// Whether resource `r` is released to caller `c`.
fn expected(case: &Case, c: &Caller, r: &Res) -> bool {
    let f = facts(c, r);
    let hits: Vec<(bool, Vec<BTreeSet<&str>>)> = case
        .consents
        .iter()
        .filter(|k| k.active && k.patient == r.patient)
        .filter_map(|k| eval(&k.root, None, &BTreeSet::new(), &f))
        .collect();
    // deny overrides across Consents; no hit: the base policy
    let (by_consent, named): (bool, Vec<BTreeSet<&str>>) = if hits.is_empty() {
        if !case.opt_out {
            return false;
        }
        (false, Vec::new())
    } else if hits.iter().any(|(p, _)| !p) {
        return false;
    } else {
        (true, hits.into_iter().flat_map(|(_, n)| n).collect())
    };
    // jurisdiction rules: (category, exempt purposes, consent must name it)
    let rules: Vec<(Option<&str>, &[&str], bool)> = match case.states[r.patient] {
        Some("TX") => vec![(None, &TPO, false)],
        Some("CA") => vec![
            (None, &TPO, false),
            (Some("HIV"), &["TREAT", "ETREAT"], true),
        ],
        _ => Vec::new(),
    };
    for (cat, exempt, must_name) in rules {
        let covered = cat.is_none_or(|k| f.cats.contains(k));
        let exempted = f.purpose.is_some_and(|p| exempt.contains(&p));
        if !covered || exempted {
            continue;
        }
        let names = !must_name || named.iter().any(|n| cat.is_some_and(|k| n.contains(k)));
        if !(by_consent && names) {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------- the facade

async fn put(t: &TestApp, token: Option<&str>, body: &Value) {
    let path = format!(
        "/fhir/{}/{}",
        body["resourceType"].as_str().unwrap(),
        body["id"].as_str().unwrap()
    );
    let r = match token {
        Some(tok) => {
            t.request_with(tok, Method::PUT, &path, &[], Some(body))
                .await
        }
        None => t.put(&path, body).await,
    };
    assert!(r.status.is_success(), "PUT {path}: {}", r.text());
}

async fn caller_token(t: &TestApp, c: &Caller) -> String {
    let purpose = if c.via_header { None } else { c.purpose };
    match c.who {
        Who::Clin7 | Who::Clin8 => {
            let user = if c.who == Who::Clin7 {
                "Practitioner/7"
            } else {
                "Practitioner/8"
            };
            t.token_as(
                "ehr",
                "user/*.rs",
                None,
                Some(user),
                Some("clinician"),
                purpose,
            )
            .await
        }
        Who::Payer => {
            t.token_as("payer", "system/*.rs", None, None, None, purpose)
                .await
        }
    }
}

async fn load(case: &Case) -> TestApp {
    let base = if case.opt_out { "opt-out" } else { "opt-in" };
    let t = TestApp::with_config(&format!(
        "[consent]\nexempt_clients = [\"test-client\"]\nbase_policy = \"{base}\"\npoll_seconds = 0\n"
    ))
    .await;
    for (p, state) in PATIENTS.iter().zip(&case.states) {
        let mut pat = json!({"resourceType": "Patient", "id": p, "name": [{"family": p}]});
        if let Some(s) = state {
            pat["address"] = json!([{"use": "home", "state": s}]);
        }
        put(&t, None, &pat).await;
    }
    for (i, r) in case.resources.iter().enumerate() {
        put(&t, None, &res_json(i, r)).await;
    }
    for (i, c) in case.consents.iter().enumerate() {
        let p = PATIENTS[c.patient];
        let tok = t
            .token_as(
                "portal-app",
                "patient/*.cruds",
                Some(p),
                Some(&format!("Patient/{p}")),
                Some("patient"),
                None,
            )
            .await;
        put(&t, Some(&tok), &consent_json(i, c)).await;
    }
    t
}

/// Every id a search releases over all its pages, and the last page's total.
async fn search_all(
    t: &TestApp,
    tok: &str,
    headers: &[(&str, &str)],
    first: String,
) -> (Vec<String>, Option<u64>) {
    let mut ids = Vec::new();
    let mut url = first;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 100, "paging does not end at {url}");
        let r = t.request_with(tok, Method::GET, &url, headers, None).await;
        assert_eq!(r.status, StatusCode::OK, "GET {url}: {}", r.text());
        ids.extend(common::match_ids(&r.json));
        let next = r.json["link"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(|u| u.trim_start_matches("http://fhirgate.test").to_owned());
        match next {
            Some(n) => url = n,
            None => return (ids, r.json["total"].as_u64()),
        }
    }
}

async fn check(case: &Case) -> Result<(), TestCaseError> {
    let t = load(case).await;
    for c in &case.callers {
        let tok = caller_token(&t, c).await;
        let headers: Vec<(&str, &str)> = match (c.via_header, c.purpose) {
            (true, Some(p)) => vec![("x-purpose-of-use", p)],
            _ => Vec::new(),
        };
        for rtype in ["Observation", "Condition"] {
            let want: BTreeSet<String> = case
                .resources
                .iter()
                .enumerate()
                .filter(|(_, r)| res_type(r) == rtype && expected(case, c, r))
                .map(|(i, r)| res_id(i, r))
                .collect();
            let (ids, total) = search_all(
                &t,
                &tok,
                &headers,
                format!("/fhir/{rtype}?_count={}&_sort=_id", case.page),
            )
            .await;
            let got: BTreeSet<String> = ids.iter().cloned().collect();
            prop_assert_eq!(ids.len(), got.len(), "duplicates across pages: {:?}", ids);
            prop_assert_eq!(&got, &want, "search {} as {:?}", rtype, c);
            let sorted: Vec<String> = want.iter().cloned().collect();
            prop_assert_eq!(&ids, &sorted, "_sort=_id order across pages");
            let (from, _) = search_all(
                &t,
                &tok,
                &headers,
                format!(
                    "/fhir/{rtype}?_count={}&_sort=_id&_offset={}",
                    case.page, case.offset
                ),
            )
            .await;
            let want_from: Vec<String> = sorted.iter().skip(case.offset).cloned().collect();
            prop_assert_eq!(&from, &want_from, "_offset={} of {}", case.offset, rtype);
            if let Some(n) = total {
                prop_assert_eq!(n as usize, want.len(), "Bundle.total of {}", rtype);
            }
            let count = t
                .request_with(
                    &tok,
                    Method::GET,
                    &format!("/fhir/{rtype}?_summary=count"),
                    &headers,
                    None,
                )
                .await;
            prop_assert_eq!(
                count.json["total"].as_u64(),
                Some(want.len() as u64),
                "_summary=count of {} as {:?}: {}",
                rtype,
                c,
                count.text()
            );
        }
        for (i, r) in case.resources.iter().enumerate() {
            let id = res_id(i, r);
            let read = t
                .request_with(
                    &tok,
                    Method::GET,
                    &format!("/fhir/{}/{id}", res_type(r)),
                    &headers,
                    None,
                )
                .await;
            let want = expected(case, c, r);
            let status = if want {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            prop_assert_eq!(
                read.status,
                status,
                "read {} as {:?}: {}",
                id,
                c,
                read.text()
            );
            if want {
                // sensitivity tags are stripped for callers not cleared for them
                prop_assert!(!read.text().contains("\"PSY\""), "{}", read.text());
            }
        }
    }
    Ok(())
}

proptest! {
    // 24 cases by default (a few seconds in debug); `PROPTEST_CASES=500` for a longer hunt
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24)
    ))]
    #[test]
    fn facade_releases_what_the_reference_evaluator_releases(case in case()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(check(&case))?;
    }
}

/// A hidden match must answer exactly like a missing one, also under a
/// caller-supplied `_offset`: the offset has to count only what the caller
/// may see. (If the offset is applied by the upstream over all matches, the
/// answers to `_offset=1` and `_offset=2` both start with the same released
/// resource, which tells the caller one hidden match sits between them.)
#[tokio::test]
async fn caller_offset_counts_only_released_matches() {
    let t =
        TestApp::with_config("[consent]\nexempt_clients = [\"test-client\"]\npoll_seconds = 0\n")
            .await;
    put(
        &t,
        None,
        &json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "One"}]}),
    )
    .await;
    for (id, psy) in [("a", false), ("b", true), ("c", false)] {
        let r = Res {
            observation: true,
            patient: 0,
            hiv: false,
            psy,
        };
        let mut body = res_json(0, &r);
        body["id"] = json!(id);
        put(&t, None, &body).await;
    }
    let deny_psy = ConsentSpec {
        patient: 0,
        active: true,
        root: Node {
            kind: Some(true),
            actor: None,
            purpose: None,
            label: None,
            class: None,
            period: None,
            children: vec![Node {
                kind: Some(false),
                actor: None,
                purpose: None,
                label: Some("PSY"),
                class: None,
                period: None,
                children: Vec::new(),
            }],
        },
    };
    let pat = t
        .token_as(
            "portal-app",
            "patient/*.cruds",
            Some("p1"),
            Some("Patient/p1"),
            Some("patient"),
            None,
        )
        .await;
    put(&t, Some(&pat), &consent_json(0, &deny_psy)).await;
    let clin = t
        .token_as(
            "ehr",
            "user/*.rs",
            None,
            Some("Practitioner/7"),
            Some("clinician"),
            None,
        )
        .await;
    let (view, _) = search_all(&t, &clin, &[], "/fhir/Observation?_sort=_id".into()).await;
    assert_eq!(view, vec!["a", "c"]);
    for offset in 0..=3usize {
        let (ids, _) = search_all(
            &t,
            &clin,
            &[],
            format!("/fhir/Observation?_sort=_id&_offset={offset}"),
        )
        .await;
        let want: Vec<String> = view.iter().skip(offset).cloned().collect();
        assert_eq!(
            ids, want,
            "_offset={offset}: the hidden Observation/b shifts the caller's offsets"
        );
    }
}

fn leaf(kind: bool, label: Option<&'static str>) -> Node {
    Node {
        kind: Some(kind),
        actor: None,
        purpose: None,
        label,
        class: None,
        period: None,
        children: Vec::new(),
    }
}

/// The same set of Consents must decide the same whatever their ids. A
/// California patient's HIV record, read for payment: CMIA §120980 needs a
/// permit that names HIV. With one plain permit and one permit naming HIV,
/// the facade must not release or hide it depending on which Consent id
/// sorts first (nor on which sibling provision comes first).
#[tokio::test]
async fn consents_decide_the_same_whatever_their_order() {
    let plain = leaf(true, None);
    let naming = leaf(true, Some("HIV"));
    let tree = |first: Node, second: Node| {
        let mut root = leaf(true, None);
        root.children = vec![first, second];
        root
    };
    let layouts: Vec<(&str, Vec<Node>)> = vec![
        ("plain Consent first", vec![plain.clone(), naming.clone()]),
        ("naming Consent first", vec![naming.clone(), plain.clone()]),
        (
            "plain sibling first",
            vec![tree(plain.clone(), naming.clone())],
        ),
        (
            "naming sibling first",
            vec![tree(naming.clone(), plain.clone())],
        ),
    ];
    let mut outcomes = Vec::new();
    for (name, roots) in layouts {
        let case = Case {
            opt_out: true,
            states: vec![Some("CA"), None],
            consents: roots
                .into_iter()
                .map(|root| ConsentSpec {
                    patient: 0,
                    active: true,
                    root,
                })
                .collect(),
            resources: vec![Res {
                observation: false,
                patient: 0,
                hiv: true,
                psy: false,
            }],
            callers: Vec::new(),
            page: 10,
            offset: 0,
        };
        let t = load(&case).await;
        let payer = Caller {
            who: Who::Payer,
            purpose: Some("HPAYMT"),
            via_header: false,
        };
        let tok = caller_token(&t, &payer).await;
        let read = t
            .request_with(&tok, Method::GET, "/fhir/Condition/c0", &[], None)
            .await;
        outcomes.push((
            name,
            read.status,
            expected(&case, &payer, &case.resources[0]),
        ));
    }
    let statuses: BTreeSet<StatusCode> = outcomes.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(
        statuses.len(),
        1,
        "the decision depends on the order of Consents or provisions: {outcomes:?}"
    );
}
