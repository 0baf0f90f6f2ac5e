//! Property tests of the grammar and the matcher.

use proptest::prelude::*;

use super::*;

fn context() -> impl Strategy<Value = ScopeContext> {
    prop_oneof![
        Just(ScopeContext::Patient),
        Just(ScopeContext::User),
        Just(ScopeContext::System)
    ]
}

fn rtype() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("Observation".to_owned())),
        Just(Some("Patient".to_owned())),
        "[A-Z][a-zA-Z]{0,12}".prop_map(Some),
    ]
}

fn constraint() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![Just("category".to_owned()), "[a-z_:-]{1,8}"],
        prop_oneof![
            Just(
                "http://terminology.hl7.org/CodeSystem/observation-category|laboratory".to_owned()
            ),
            "\\PC{1,12}",
        ],
    )
}

fn resource_scope() -> impl Strategy<Value = ResourceScope> {
    (
        context(),
        rtype(),
        1u8..32,
        prop::collection::vec(constraint(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(context, resource_type, bits, constraints, v2_pick)| {
            let perms = Perms::of(
                bits & 1 != 0,
                bits & 2 != 0,
                bits & 4 != 0,
                bits & 8 != 0,
                bits & 16 != 0,
            );
            let v1_ok = perms.v1_name().is_some() && constraints.is_empty();
            let mut dedup: Vec<(String, String)> = Vec::new();
            for c in constraints {
                if !dedup.contains(&c) {
                    dedup.push(c);
                }
            }
            ResourceScope {
                context,
                resource_type,
                perms,
                constraints: dedup,
                v2: v2_pick || !v1_ok,
            }
        })
}

fn smart_scope() -> impl Strategy<Value = SmartScope> {
    prop_oneof![
        4 => resource_scope().prop_map(SmartScope::Resource),
        1 => prop_oneof![
            Just(SmartScope::OpenId),
            Just(SmartScope::FhirUser),
            Just(SmartScope::Profile),
            Just(SmartScope::Launch),
            Just(SmartScope::LaunchPatient),
            Just(SmartScope::LaunchEncounter),
            Just(SmartScope::OfflineAccess),
            Just(SmartScope::OnlineAccess),
            "[a-z][a-z0-9_:.-]{0,10}"
                .prop_filter("not a fixed scope", |s| !matches!(
                    s.as_str(),
                    "openid" | "profile" | "launch" | "offline_access" | "online_access"
                ))
                .prop_map(SmartScope::Other),
        ],
    ]
}

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    prop::collection::vec(smart_scope(), 0..6).prop_map(|v| v.into_iter().collect())
}

fn op() -> impl Strategy<Value = Op> {
    prop::sample::select(Op::ALL.to_vec())
}

proptest! {
    #[test]
    fn display_round_trips(s in smart_scope()) {
        let text = s.to_string();
        prop_assert_eq!(SmartScope::parse(&text).unwrap(), s);
    }

    #[test]
    fn set_display_round_trips(s in scope_set()) {
        prop_assert_eq!(ScopeSet::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn covered_by_is_reflexive(a in scope_set()) {
        prop_assert!(a.covered_by(&a));
    }

    #[test]
    fn covered_by_is_transitive(x in scope_set(), y in scope_set(), c in scope_set()) {
        // b ⊑ c and a ⊑ b by construction (narrowing), so a ⊑ c must follow
        let b = y.narrowed_to(&c);
        let a = x.narrowed_to(&b);
        prop_assert!(b.covered_by(&c) && a.covered_by(&b));
        prop_assert!(a.covered_by(&c));
        // and on arbitrary triples whenever the premise happens to hold
        if x.covered_by(&y) && y.covered_by(&c) {
            prop_assert!(x.covered_by(&c));
        }
    }

    #[test]
    fn narrowing_stays_within_both(a in scope_set(), b in scope_set()) {
        let n = a.narrowed_to(&b);
        prop_assert!(n.covered_by(&b));
        prop_assert!(n.covered_by(&a));
        prop_assert_eq!(a.narrowed_to(&a), a.clone());
    }

    #[test]
    fn v1_read_is_v2_rs(ctx in context(), t in rtype()) {
        let v1 = ResourceScope { context: ctx, resource_type: t.clone(), perms: Perms::READ, constraints: vec![], v2: false };
        let v2 = ResourceScope { v2: true, ..v1.clone() };
        let a: ScopeSet = [SmartScope::Resource(v1)].into_iter().collect();
        let b: ScopeSet = [SmartScope::Resource(v2)].into_iter().collect();
        prop_assert!(a.equivalent(&b));
        for o in Op::ALL {
            prop_assert_eq!(a.grants("Observation", o), b.grants("Observation", o));
        }
    }

    #[test]
    fn grants_exist_iff_some_scope_covers(set in scope_set(), t in "[A-Z][a-z]{0,3}|Observation|Patient", o in op()) {
        let grants = set.grants(&t, o);
        let covered = set.resource_scopes().any(|s| {
            let probe = ResourceScope {
                context: s.context,
                resource_type: Some(t.clone()),
                perms: Perms::of(o == Op::Create, o == Op::Read, o == Op::Update, o == Op::Delete, o == Op::Search),
                constraints: s.constraints.clone(),
                v2: true,
            };
            let probe: ScopeSet = [SmartScope::Resource(probe)].into_iter().collect();
            probe.covered_by(&set)
        });
        prop_assert_eq!(!grants.is_empty(), covered);
        for g in &grants {
            let probe = ResourceScope {
                context: g.context,
                resource_type: Some(t.clone()),
                perms: Perms::of(o == Op::Create, o == Op::Read, o == Op::Update, o == Op::Delete, o == Op::Search),
                constraints: g.constraints.clone(),
                v2: true,
            };
            let probe: ScopeSet = [SmartScope::Resource(probe)].into_iter().collect();
            prop_assert!(probe.covered_by(&set));
        }
    }
}
