//! `_elements` and `_summary` applied to one resource (R4 search.html
//! §3.1.1.5.8–9). The embedded store applies it to its matches; the consent
//! stage applies it itself after judging the full resource (a subsetted
//! resource cannot be classified), so the upstream never sees these
//! parameters for a caller under consent.

use serde_json::{json, Map, Value};

pub use crate::search::query::Summary;

/// `meta.tag` system of `SUBSETTED`.
pub const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// Applies `_elements` or `_summary` to a match.
pub fn apply(resource: &mut Value, elements: Option<&[String]>, summary: Summary) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let keep_only = |obj: &mut Map<String, Value>, names: &[&str]| {
        obj.retain(|k, _| {
            matches!(k.as_str(), "resourceType" | "id" | "meta")
                || names.iter().any(|n| {
                    k == n
                        || k.strip_prefix(n)
                            .and_then(|rest| rest.chars().next())
                            .is_some_and(|c| c.is_ascii_uppercase())
                })
        });
    };
    let changed = if let Some(elements) = elements {
        let names: Vec<&str> = elements.iter().map(String::as_str).collect();
        keep_only(obj, &names);
        true
    } else {
        match summary {
            Summary::Text => {
                keep_only(obj, &["text"]);
                true
            }
            Summary::Data => obj.remove("text").is_some(),
            Summary::True => {
                let a = obj.remove("text").is_some();
                obj.remove("contained").is_some() || a
            }
            Summary::False | Summary::Count => false,
        }
    };
    if changed || elements.is_some() || matches!(summary, Summary::True | Summary::Text) {
        tag_subsetted(obj);
    }
}

pub fn tag_subsetted(obj: &mut Map<String, Value>) {
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let tags = meta.entry("tag").or_insert_with(|| json!([]));
    if let Some(tags) = tags.as_array_mut() {
        let present = tags
            .iter()
            .any(|t| t["code"] == "SUBSETTED" && t["system"] == SUBSETTED_SYSTEM);
        if !present {
            tags.push(json!({"system": SUBSETTED_SYSTEM, "code": "SUBSETTED"}));
        }
    }
}
