//! The one scope matcher (SMART App Launch 2.2 §"Scopes for requesting FHIR
//! Resources"): what a scope set permits (`grants`), whether one set stays
//! within another (`covered_by`: refresh never widens, RFC 6749 §6; requested
//! scopes within the registration, §3.3) and the intersection used when the
//! server grants less than was asked (`narrowed_to`, §"Scopes" — "the granted
//! scopes may be narrower than requested").
//!
//! Coverage is judged per permission letter: `patient/Observation.cruds` is
//! covered by `patient/Observation.rs` together with `patient/Observation.cud`.
//! A scope with constraints is covered by one with a subset of them (fewer
//! constraints = wider); contexts never cover each other (`user/` does not
//! cover `patient/`), and `*` covers every type but no type covers `*`.

use super::{Op, Perms, ResourceScope, ScopeContext, ScopeSet, SmartScope};

/// One scope's permission for a resource type and operation: the caller may
/// act in `context` on resources matching every `constraints` pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// The scope's context (decides compartment confinement).
    pub context: ScopeContext,
    /// Granular `param=value` pairs, AND-ed; empty = unconstrained.
    pub constraints: Vec<(String, String)>,
}

fn type_covers(wide: Option<&str>, narrow: Option<&str>) -> bool {
    match (wide, narrow) {
        (None, _) => true,
        (Some(w), Some(n)) => w == n,
        (Some(_), None) => false,
    }
}

fn constraints_within(wide: &[(String, String)], narrow: &[(String, String)]) -> bool {
    wide.iter().all(|c| narrow.contains(c))
}

/// Whether `b` alone permits `op` on everything `r` describes.
fn covers_op(b: &ResourceScope, r: &ResourceScope, op: Op) -> bool {
    b.context == r.context
        && type_covers(b.resource_type.as_deref(), r.resource_type.as_deref())
        && b.perms.allows(op)
        && constraints_within(&b.constraints, &r.constraints)
}

impl ScopeSet {
    /// Every scope permitting `op` on `resource_type`, as grants (deduplicated,
    /// in scope order); empty means deny.
    pub fn grants(&self, resource_type: &str, op: Op) -> Vec<Grant> {
        let mut out: Vec<Grant> = Vec::new();
        for r in self.resource_scopes() {
            if type_covers(r.resource_type.as_deref(), Some(resource_type)) && r.perms.allows(op) {
                let g = Grant {
                    context: r.context,
                    constraints: r.constraints.clone(),
                };
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
        out
    }

    /// Whether every scope of `self` is permitted by `other`: non-resource
    /// scopes must be present in `other`; each permission letter of a
    /// resource scope must be permitted by some resource scope of `other`.
    pub fn covered_by(&self, other: &ScopeSet) -> bool {
        self.iter().all(|s| scope_covered(s, other))
    }

    /// Whether both sets permit exactly the same (e.g. v1 `.read` and v2 `.rs`).
    pub fn equivalent(&self, other: &ScopeSet) -> bool {
        self.covered_by(other) && other.covered_by(self)
    }

    /// The part of `self` that `allowed` permits: scopes `allowed` covers are
    /// kept as they are; a resource scope it covers only in part is replaced
    /// by its intersections with `allowed`'s scopes (fewer letters, a single
    /// type instead of `*`, more constraints); anything else is dropped.
    pub fn narrowed_to(&self, allowed: &ScopeSet) -> ScopeSet {
        let mut out = ScopeSet::default();
        for s in self.iter() {
            if scope_covered(s, allowed) {
                out.insert(s.clone());
            } else if let SmartScope::Resource(r) = s {
                for a in allowed.resource_scopes() {
                    if let Some(i) = intersect(r, a) {
                        out.insert(SmartScope::Resource(i));
                    }
                }
            }
        }
        out
    }
}

fn scope_covered(s: &SmartScope, other: &ScopeSet) -> bool {
    match s {
        SmartScope::Resource(r) => Op::ALL
            .iter()
            .filter(|op| r.perms.allows(**op))
            .all(|op| other.resource_scopes().any(|b| covers_op(b, r, *op))),
        _ => other.has(s),
    }
}

/// What both `r` and `a` permit, if anything.
fn intersect(r: &ResourceScope, a: &ResourceScope) -> Option<ResourceScope> {
    if r.context != a.context {
        return None;
    }
    let resource_type = match (r.resource_type.as_deref(), a.resource_type.as_deref()) {
        (Some(x), Some(y)) if x != y => return None,
        (Some(x), _) | (None, Some(x)) => Some(x.to_owned()),
        (None, None) => None,
    };
    let perms: Perms = r.perms.intersect(a.perms);
    if perms.is_empty() {
        return None;
    }
    let mut constraints = r.constraints.clone();
    for c in &a.constraints {
        if !constraints.contains(c) {
            constraints.push(c.clone());
        }
    }
    let v1 = !r.v2 && perms.v1_name().is_some() && constraints.is_empty();
    Some(ResourceScope {
        context: r.context,
        resource_type,
        perms,
        constraints,
        v2: !v1,
    })
}
