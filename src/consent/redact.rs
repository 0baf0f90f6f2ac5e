//! Changes to a released resource: strip sensitivity tags the caller is not
//! cleared for, add obligations, and the Redact effect.
//!
//! Sensitivity tags are themselves sensitive (an `HIV` tag discloses HIV
//! status). Of `meta.security` only confidentiality codes, obligation and
//! refrain codes (and `REDACTED`) stay, plus the sensitivity categories the
//! caller is cleared for; the same applies to DS4P inline labels and to
//! contained resources.
//!
//! Redact (DS4P): elements carrying an inline label in a redacted category
//! are removed, the narrative (`text`) is removed, and the resource is tagged
//! `REDACTED`. Inline labels are rare; where the sensitivity is labelled on
//! the whole resource the evaluator denies instead of redacting.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::classify::{Sensitivity, ACT_CODE, CONFIDENTIALITY, INLINE_LABEL};

/// v3-ObservationValue system (holds `REDACTED`).
pub const OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// Obligation and refrain policy codes (v3-ActCode) that stay on release.
const KEEP: &[&str] = &[
    "ANONY",
    "AOD",
    "AUDIT",
    "AUDTR",
    "CPLYCC",
    "CPLYCD",
    "CPLYJPP",
    "CPLYOSP",
    "CPLYPOL",
    "DECLASSIFYLABEL",
    "DEID",
    "DELAU",
    "DOWNGRDLABEL",
    "DRIVLABEL",
    "ENCRYPT",
    "ENCRYPTR",
    "ENCRYPTT",
    "ENCRYPTU",
    "HUAPRV",
    "LABEL",
    "MASK",
    "MINEC",
    "PERSISTLABEL",
    "PRIVMARK",
    "PSEUD",
    "REDACT",
    "UPGRDLABEL",
    "NOAUTH",
    "NOCOLLECT",
    "NODSCLCD",
    "NODSCLCDS",
    "NOINTEGRATE",
    "NOLIST",
    "NOMOU",
    "NOORGPOL",
    "NOPAT",
    "NOPERSISTP",
    "NORDSCLCD",
    "NORDSCLCDS",
    "NORDSCLW",
    "NORELINK",
    "NOREUSE",
    "NOVIP",
    "ORCON",
    "REDACTED",
    "CPLYCUI",
];

fn keep_label(label: &Value, cleared: &BTreeSet<Sensitivity>) -> bool {
    let system = label.get("system").and_then(Value::as_str);
    let code = label
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if system == Some(CONFIDENTIALITY) || KEEP.contains(&code) {
        return true;
    }
    Sensitivity::from_code(code).is_some_and(|s| cleared.contains(&s))
}

/// Remove every security label the caller may not see; whether anything
/// was removed.
pub fn strip_sensitivity_tags(resource: &mut Value, cleared: &BTreeSet<Sensitivity>) -> bool {
    let mut changed = strip_meta(resource, cleared);
    if let Some(Value::Array(contained)) = resource.get_mut("contained") {
        for c in contained.iter_mut() {
            changed |= strip_meta(c, cleared);
        }
    }
    strip_inline(resource, cleared) || changed
}

fn strip_meta(resource: &mut Value, cleared: &BTreeSet<Sensitivity>) -> bool {
    let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) else {
        return false;
    };
    let Some(Value::Array(labels)) = meta.get_mut("security") else {
        return false;
    };
    let before = labels.len();
    labels.retain(|l| keep_label(l, cleared));
    if labels.is_empty() {
        meta.remove("security");
        return true;
    }
    labels.len() != before
}

fn strip_inline(v: &mut Value, cleared: &BTreeSet<Sensitivity>) -> bool {
    match v {
        Value::Object(map) => {
            let mut changed = false;
            if let Some(Value::Array(exts)) = map.get_mut("extension") {
                let before = exts.len();
                exts.retain(|e| {
                    e.get("url").and_then(Value::as_str) != Some(INLINE_LABEL)
                        || e.get("valueCoding").is_some_and(|c| keep_label(c, cleared))
                });
                changed = exts.len() != before;
                if exts.is_empty() {
                    map.remove("extension");
                    changed = true;
                }
            }
            for c in map.values_mut() {
                changed |= strip_inline(c, cleared);
            }
            changed
        }
        Value::Array(items) => {
            let mut changed = false;
            for i in items.iter_mut() {
                changed |= strip_inline(i, cleared);
            }
            changed
        }
        _ => false,
    }
}

/// Add a security label (e.g. an obligation such as `NORDSCLCD`) once;
/// whether it was added.
pub fn add_security_label(resource: &mut Value, system: &str, code: &str) -> bool {
    let Some(obj) = resource.as_object_mut() else {
        return false;
    };
    let meta = obj
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return false;
    };
    let labels = meta
        .entry("security")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(labels) = labels {
        if !labels
            .iter()
            .any(|l| l.get("code").and_then(Value::as_str) == Some(code))
        {
            labels.push(json!({ "system": system, "code": code }));
            return true;
        }
    }
    false
}

/// Add the obligation codes a decision carries; whether any was added.
pub fn add_obligations(resource: &mut Value, obligations: &[String]) -> bool {
    let mut added = false;
    for code in obligations {
        added |= add_security_label(resource, ACT_CODE, code);
    }
    added
}

/// The Redact effect: drop elements inline-labelled with `categories`, drop
/// the narrative, tag `REDACTED`.
pub fn redact(resource: &mut Value, categories: &BTreeSet<Sensitivity>) {
    remove_labelled(resource, categories);
    if let Some(obj) = resource.as_object_mut() {
        obj.remove("text");
    }
    add_security_label(resource, OBSERVATION_VALUE, "REDACTED");
}

fn labelled_with(v: &Value, categories: &BTreeSet<Sensitivity>) -> bool {
    v.get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|e| {
            e.get("url").and_then(Value::as_str) == Some(INLINE_LABEL)
                && e.pointer("/valueCoding/code")
                    .and_then(Value::as_str)
                    .and_then(Sensitivity::from_code)
                    .is_some_and(|s| categories.contains(&s))
        })
}

fn remove_labelled(v: &mut Value, categories: &BTreeSet<Sensitivity>) {
    match v {
        Value::Object(map) => {
            map.retain(|_, child| !labelled_with(child, categories));
            map.values_mut()
                .for_each(|c| remove_labelled(c, categories));
        }
        Value::Array(items) => {
            items.retain(|i| !labelled_with(i, categories));
            items
                .iter_mut()
                .for_each(|i| remove_labelled(i, categories));
        }
        _ => {}
    }
}
