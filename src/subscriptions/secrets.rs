//! `channel.header` values are the subscriber's secrets (typically its
//! `Authorization: Bearer …`): fhirgate sends them with every notification
//! but never shows them again. Answers carry each header as
//! `Name: [redacted]` ([`redact`]); an update that sends a header back in
//! that form keeps the stored value of the header with that name
//! ([`restore`]), so a read-modify-write by the owner loses nothing.

use serde_json::Value;

/// What a header's value reads as in answers.
pub const REDACTED: &str = "[redacted]";

fn split(h: &str) -> Option<(&str, &str)> {
    h.split_once(':').map(|(n, v)| (n.trim(), v.trim()))
}

/// Replaces every `channel.header` value of `resource` by [`REDACTED`].
pub fn redact(resource: &mut Value) {
    if let Some(headers) = resource["channel"]["header"].as_array_mut() {
        for h in headers.iter_mut() {
            if let Some((name, _)) = h.as_str().and_then(split) {
                *h = Value::String(format!("{name}: {REDACTED}"));
            }
        }
    }
}

/// `body` with each `Name: [redacted]` header replaced by the stored
/// header of that name (case-insensitive), when `stored` has one.
pub fn restore(body: &Value, stored: &Value) -> Value {
    let mut out = body.clone();
    let kept: Vec<&str> = stored["channel"]["header"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(headers) = out["channel"]["header"].as_array_mut() {
        for h in headers.iter_mut() {
            let Some((name, value)) = h.as_str().and_then(split) else {
                continue;
            };
            if value != REDACTED {
                continue;
            }
            let old = kept
                .iter()
                .find(|k| split(k).is_some_and(|(n, _)| n.eq_ignore_ascii_case(name)));
            if let Some(old) = old {
                *h = Value::String((*old).to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_hide_values_and_updates_keep_them() {
        let stored =
            json!({"channel": {"header": ["Authorization: Bearer s3cret", "X-Tenant: a"]}});
        let mut shown = stored.clone();
        redact(&mut shown);
        assert_eq!(
            shown["channel"]["header"],
            json!(["Authorization: [redacted]", "X-Tenant: [redacted]"])
        );
        let mut sent = shown.clone();
        sent["channel"]["header"][1] = json!("X-Tenant: b");
        let kept = restore(&sent, &stored);
        assert_eq!(
            kept["channel"]["header"],
            json!(["Authorization: Bearer s3cret", "X-Tenant: b"])
        );
        // a redacted header the store never had stays as sent (and fails
        // validation or is sent as is)
        let other = restore(
            &json!({"channel": {"header": ["X-New: [redacted]"]}}),
            &stored,
        );
        assert_eq!(other["channel"]["header"], json!(["X-New: [redacted]"]));
    }
}
