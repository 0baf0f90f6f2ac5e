//! The rule walk over one resource: element paths, node kinds, first
//! matching rule, descent into unmatched objects and arrays, removal of
//! emptied containers, `meta` reduction, contained (and Bundle entry)
//! resources walked as resources, resource ids pseudonymized.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use time::Date;

use super::keyed::Keyed;
use super::kinds::{infer, Kind, Parent};
use super::methods::{apply_method, inherited_applies};
use super::rules::{Method, Rule};

/// What one `apply()` walks with.
pub(crate) struct Ctx<'a> {
    pub(crate) keyed: &'a Keyed,
    pub(crate) rules: &'a [Rule],
    pub(crate) today: Date,
    /// The subject's date-shift offset in days.
    pub(crate) shift: i64,
    /// The top resource's original `Type/id` (perturbation noise key).
    pub(crate) resource: String,
}

/// Whether a visited node stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Keep,
    Remove,
}

/// Where a node is: its element path and its concrete location.
pub(crate) struct Here<'p> {
    /// Element path from the resource type (arrays transparent).
    pub(crate) path: &'p mut Vec<String>,
    /// Concrete location with array indices (`component[1].valueQuantity`).
    pub(crate) loc: &'p mut String,
}

const META_KEPT: &[&str] = &["profile", "security", "tag", "lastUpdated"];

/// Walks a resource object: its members through the rules, `meta`
/// reduced, contained resources as resources, its own id pseudonymized.
pub(crate) fn walk_resource(ctx: &Ctx<'_>, obj: &mut Map<String, Value>, loc: &mut String) {
    let rtype = obj
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("Resource")
        .to_owned();
    let parent = Parent {
        has_code_or_system: false,
        ..Parent::of(obj, true, false)
    };
    let mut removed = Vec::new();
    for (key, value) in obj.iter_mut() {
        let fate = match key.as_str() {
            "resourceType" => Fate::Keep,
            "id" => {
                if let Value::String(id) = value {
                    *id = ctx.keyed.pseudonym(id);
                }
                Fate::Keep
            }
            "meta" => walk_meta(ctx, value, &rtype),
            "contained" => walk_contained(ctx, value, loc),
            _ => {
                let mut path = vec![rtype.clone(), key.clone()];
                let mark = loc.len();
                let fate = visit_field(
                    ctx,
                    key,
                    value,
                    parent,
                    None,
                    &mut Here {
                        path: &mut path,
                        loc,
                    },
                );
                loc.truncate(mark);
                fate
            }
        };
        if fate == Fate::Remove {
            removed.push(key.clone());
        }
    }
    for key in removed {
        obj.shift_remove(&key);
    }
}

fn walk_contained(ctx: &Ctx<'_>, value: &mut Value, loc: &mut String) -> Fate {
    let Value::Array(items) = value else {
        return Fate::Remove;
    };
    let mut i = 0;
    items.retain_mut(|item| {
        let mark = loc.len();
        let _ = write!(loc, ".contained[{i}]");
        i += 1;
        let keep = match item {
            Value::Object(obj) if obj.contains_key("resourceType") => {
                walk_resource(ctx, obj, loc);
                true
            }
            _ => false,
        };
        loc.truncate(mark);
        keep
    });
    if items.is_empty() {
        Fate::Remove
    } else {
        Fate::Keep
    }
}

/// `meta` keeps profile, security and tag; `lastUpdated` only when a path
/// rule names it (and then as that rule says).
fn walk_meta(ctx: &Ctx<'_>, meta: &mut Value, rtype: &str) -> Fate {
    let Value::Object(obj) = meta else {
        return Fate::Remove;
    };
    obj.retain(|k, _| META_KEPT.contains(&k.as_str()));
    if let Some(value) = obj.get_mut("lastUpdated") {
        let mut path = vec![rtype.to_owned(), "meta".into(), "lastUpdated".into()];
        let kind = infer("lastUpdated", value, Parent::default());
        let rule = ctx
            .rules
            .iter()
            .find(|r| r.path.is_some() && r.matches(&path, kind));
        let mut loc = String::from(".meta.lastUpdated");
        let here = &mut Here {
            path: &mut path,
            loc: &mut loc,
        };
        let fate = rule.map_or(Fate::Remove, |r| {
            apply_method(ctx, &r.method, "lastUpdated", value, kind, here)
        });
        if fate == Fate::Remove {
            obj.shift_remove("lastUpdated");
        }
    }
    if obj.is_empty() {
        Fate::Remove
    } else {
        Fate::Keep
    }
}

/// Visits the value of one member (each element of an array member).
pub(crate) fn visit_field(
    ctx: &Ctx<'_>,
    key: &str,
    value: &mut Value,
    parent: Parent,
    inherited: Option<&Method>,
    here: &mut Here<'_>,
) -> Fate {
    here.loc.push('.');
    here.loc.push_str(key);
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Fate::Keep;
            }
            let elem_parent = Parent {
                in_extension_array: key == "extension" || key == "modifierExtension",
                ..parent
            };
            let mark = here.loc.len();
            let mut i = 0;
            items.retain_mut(|item| {
                // (no allocation per element: written into the location)
                let _ = write!(here.loc, "[{i}]");
                i += 1;
                let fate = visit_node(ctx, key, item, elem_parent, inherited, here);
                here.loc.truncate(mark);
                fate == Fate::Keep
            });
            if items.is_empty() {
                Fate::Remove
            } else {
                Fate::Keep
            }
        }
        _ => visit_node(ctx, key, value, parent, inherited, here),
    }
}

/// Decides one node: an inherited leaf method, else the first matching
/// rule, else descent.
fn visit_node(
    ctx: &Ctx<'_>,
    key: &str,
    value: &mut Value,
    parent: Parent,
    inherited: Option<&Method>,
    here: &mut Here<'_>,
) -> Fate {
    if value.is_null() {
        return Fate::Remove;
    }
    if key == "reference" && value.is_string() {
        // Rewritten after the walk, whatever the rules say.
        return Fate::Keep;
    }
    if key == "resource" {
        if let Value::Object(obj) = value {
            if obj.contains_key("resourceType") {
                walk_resource(ctx, obj, here.loc);
                return Fate::Keep;
            }
        }
    }
    let kind = infer(key, value, parent);
    if let Some(method) = inherited {
        if inherited_applies(method, key, value, kind) {
            return apply_method(ctx, method, key, value, kind, here);
        }
    }
    if let Some(rule) = ctx.rules.iter().find(|r| r.matches(here.path, kind)) {
        return apply_method(ctx, &rule.method, key, value, kind, here);
    }
    descend(ctx, value, kind, inherited, here)
}

/// Walks an object's members (with an inherited leaf method, if any); an
/// object left empty is removed. Leaves are kept.
pub(crate) fn descend(
    ctx: &Ctx<'_>,
    value: &mut Value,
    kind: Option<Kind>,
    inherited: Option<&Method>,
    here: &mut Here<'_>,
) -> Fate {
    let Value::Object(obj) = value else {
        return Fate::Keep;
    };
    if obj.is_empty() {
        return Fate::Keep;
    }
    let parent = Parent::of(obj, false, kind == Some(Kind::Extension));
    let mut removed = Vec::new();
    for (key, child) in obj.iter_mut() {
        here.path.push(key.clone());
        let mark = here.loc.len();
        let fate = visit_field(ctx, key, child, parent, inherited, here);
        here.loc.truncate(mark);
        here.path.pop();
        if fate == Fate::Remove {
            removed.push(key.clone());
        }
    }
    for key in removed {
        obj.shift_remove(&key);
    }
    // An extension left with no value and no sub-extensions is removed
    // (it would be invalid and only say that something was there).
    let hollow = kind == Some(Kind::Extension) && obj.keys().all(|k| k == "url" || k == "id");
    if obj.is_empty() || hollow {
        Fate::Remove
    } else {
        Fate::Keep
    }
}
