//! [`Deidentifier`]: applies a [`Profile`] to one resource at a time.
//!
//! `apply()` walks the resource through the profile's rules (see
//! [`super::profile`] for their semantics), then, whatever the rules said:
//! the resource's own `id` (and each contained resource's) is replaced by
//! its keyed pseudonym, every `Reference.reference` is pseudonymized the
//! same way (so references stay consistent within an export and across
//! exports with the same key), `meta` keeps only profile/security/tag (and
//! `lastUpdated` when a path rule names it), and `meta.security` gets the
//! v3-ObservationValue `ANONYED`/`PSEUDED` tag.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use time::Date;

use super::keyed::Keyed;
use super::profile::Profile;
use super::refs::pseudonymize_references;
use super::walk::{walk_resource, Ctx};

const OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// Applies one profile under one key.
#[derive(Debug, Clone)]
pub struct Deidentifier {
    profile: Arc<Profile>,
    keyed: Keyed,
    stable: bool,
    today: Date,
}

impl Deidentifier {
    /// key: 32-byte secret for HMACs (crypto-hash, date-shift offsets,
    /// perturb noise); stable: the key is a named key set reused across
    /// exports (→ PSEUDED: ids and references link across exports), else
    /// ANONYED (a key of one export only); today: the
    /// date ages are computed at (ages over 89).
    pub fn new(profile: Arc<Profile>, key: [u8; 32], stable: bool, today: Date) -> Self {
        Deidentifier {
            profile,
            keyed: Keyed::new(key),
            stable,
            today,
        }
    }

    /// De-identifies one resource in place. `patient`: bare id of the
    /// patient the resource is about (None: not patient data; for a Patient
    /// resource pass its own id). The date-shift offset is per patient
    /// (keyed); with no patient the resource's own `Type/id` is the subject.
    pub fn apply(&self, resource: &mut Value, patient: Option<&str>) {
        let Value::Object(obj) = resource else {
            return;
        };
        let rtype = obj
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let id = obj.get("id").and_then(Value::as_str).unwrap_or("");
        let own = format!("{rtype}/{id}");
        let subject = patient.unwrap_or(&own);
        let ctx = Ctx {
            keyed: &self.keyed,
            rules: self.profile.rules(),
            today: self.today,
            shift: self.shift_for(subject),
            resource: own.clone(),
        };
        walk_resource(&ctx, obj, &mut String::new());
        pseudonymize_references(&self.keyed, resource);
        if let Value::Object(obj) = resource {
            add_security(obj, self.security_code());
        }
    }

    /// `ANONYED` or `PSEUDED` (v3-ObservationValue), the tag `apply()` adds
    /// to `meta.security`.
    pub fn security_code(&self) -> &'static str {
        Self::tag(self.stable)
    }

    /// The tag under a key that is (`stable`: a named key set reused across
    /// exports) or is not reused: resource ids and references are always
    /// keyed pseudonyms, so a reused key makes them linkable (`PSEUDED`).
    pub fn tag(stable: bool) -> &'static str {
        if stable {
            "PSEUDED"
        } else {
            "ANONYED"
        }
    }

    /// The pseudonym of a resource id (what `apply()` puts in `id` and in
    /// references).
    pub fn pseudonym(&self, id: &str) -> String {
        self.keyed.pseudonym(id)
    }

    /// Days a patient's dates are shifted by (0 when the profile has no
    /// dateShift rule).
    pub fn shift_days(&self, patient: &str) -> i64 {
        self.shift_for(patient)
    }

    fn shift_for(&self, subject: &str) -> i64 {
        self.profile
            .shift_range()
            .map_or(0, |range| self.keyed.shift_days(subject, range))
    }
}

/// Adds `{system: v3-ObservationValue, code}` to `meta.security` once.
fn add_security(obj: &mut Map<String, Value>, code: &str) {
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let Value::Object(meta) = meta else {
        return;
    };
    let security = meta.entry("security").or_insert_with(|| json!([]));
    if !security.is_array() {
        *security = json!([]);
    }
    let Value::Array(codings) = security else {
        return;
    };
    let present = codings.iter().any(|c| {
        c.get("system").and_then(Value::as_str) == Some(OBSERVATION_VALUE)
            && c.get("code").and_then(Value::as_str) == Some(code)
    });
    if !present {
        codings.push(json!({"system": OBSERVATION_VALUE, "code": code}));
    }
}
