//! Reference pseudonymization, applied after the rules to every
//! `reference` in a resource: `Type/id[/_history/v]` and absolute
//! `http(s)://…/Type/id` become `Type/<pseudonym(id)>`, `#local` becomes
//! `#<pseudonym(local)>`, `urn:uuid:x` a uuid-shaped pseudonym; anything
//! else (a conditional reference carries search parameters) is removed.

use serde_json::Value;

use super::keyed::Keyed;

/// Rewrites every `reference` string under `value`. A Reference left
/// empty by the removal of a reference it could not rewrite is removed.
pub(crate) fn pseudonymize_references(keyed: &Keyed, value: &mut Value) {
    let _ = rewrite_under(keyed, value);
}

/// Returns whether `value` is an object this pass emptied.
fn rewrite_under(keyed: &Keyed, value: &mut Value) -> bool {
    match value {
        Value::Object(obj) => {
            let mut dropped = false;
            if let Some(Value::String(r)) = obj.get_mut("reference") {
                match rewrite(keyed, r) {
                    Some(new) => *r = new,
                    None => {
                        obj.shift_remove("reference");
                        dropped = true;
                    }
                }
            }
            let mut emptied = Vec::new();
            for (key, child) in obj.iter_mut() {
                if rewrite_under(keyed, child) {
                    emptied.push(key.clone());
                }
            }
            for key in emptied {
                obj.shift_remove(&key);
            }
            dropped && obj.is_empty()
        }
        Value::Array(items) => {
            let before = items.len();
            items.retain_mut(|item| !rewrite_under(keyed, item));
            // An array only this pass emptied goes with its owner.
            before > 0 && items.is_empty()
        }
        _ => false,
    }
}

/// The pseudonymized form of one reference, `None` if not understood.
pub(crate) fn rewrite(keyed: &Keyed, reference: &str) -> Option<String> {
    if let Some(local) = reference.strip_prefix('#') {
        if local.is_empty() {
            return Some("#".into());
        }
        return Some(format!("#{}", keyed.pseudonym(local)));
    }
    if let Some(uuid) = reference.strip_prefix("urn:uuid:") {
        return Some(format!("urn:uuid:{}", uuid_shaped(&keyed.pseudonym(uuid))));
    }
    let relative = match reference
        .strip_prefix("https://")
        .or_else(|| reference.strip_prefix("http://"))
    {
        Some(rest) => rest.split_once('/')?.1,
        None => reference,
    };
    let segments: Vec<&str> = relative.split('/').collect();
    let (ty, id) = match segments.as_slice() {
        [.., ty, id, "_history", _] => (*ty, *id),
        [.., ty, id] => (*ty, *id),
        _ => return None,
    };
    let type_ok = ty.starts_with(|c: char| c.is_ascii_uppercase())
        && ty.chars().all(|c| c.is_ascii_alphanumeric());
    let id_ok = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    (type_ok && id_ok).then(|| format!("{ty}/{}", keyed.pseudonym(id)))
}

/// `8-4-4-4-12` from the first 32 hex digits of a pseudonym.
fn uuid_shaped(hex: &str) -> String {
    let part = |a: usize, b: usize| hex.get(a..b).unwrap_or("0");
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}
