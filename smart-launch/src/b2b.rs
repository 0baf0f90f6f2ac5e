//! The UDAP B2B authorization extension object (`extensions.hl7-b2b` in a
//! client's signed authentication JWT; HL7 FAST Security / UDAP Security
//! IG STU 1.1 §5.2.1.1): who the requesting organization is and why it is
//! asking. [`B2b::from_extensions`] reads and checks it; the token endpoint
//! carries its purpose of use and organization into the access token, where
//! they are consent decision inputs like the token claims of any other
//! source.
//!
//! Keys read: `version` (must be `"1"`), `organization_id` (a URI,
//! required), `purpose_of_use` (a non-empty array, required),
//! `organization_name`, `subject_id`, `subject_name`, `subject_role`
//! (optional, kept for the record). `consent_policy` and
//! `consent_reference` are accepted and not acted on.
//!
//! Purposes are `system#code` strings (also accepted: `system|code`, and a
//! bare code, read as HL7 v3 ActReason). Understood systems: HL7 v3
//! ActReason (`urn:oid:2.16.840.1.113883.5.8` or its canonical URL, codes
//! kept as they are) and the TEFCA Exchange Purposes
//! (`urn:oid:2.16.840.1.113883.3.7204.1.5.2.1`, mapped to the ActReason
//! code with the same meaning: T-TREAT → TREAT, T-PYMNT → HPAYMT, T-HCO →
//! HOPERAT, T-PH → PUBHLTH, T-IAS → PATRQT). A purpose in any other
//! system, or a TEFCA code without an ActReason equivalent, is refused
//! rather than guessed: consent decisions are keyed by ActReason codes.
//! When several purposes are stated the first decides (an access token
//! carries one purpose of use).

use serde_json::Value;

use crate::OAuthError;

/// The extension's key in the JWT `extensions` object.
pub const KEY: &str = "hl7-b2b";

/// HL7 v3 ActReason, by OID and by canonical URL.
const ACT_REASON: [&str; 2] = [
    "urn:oid:2.16.840.1.113883.5.8",
    "http://terminology.hl7.org/CodeSystem/v3-ActReason",
];

/// TEFCA Exchange Purposes (XP) code system.
const TEFCA_XP: &str = "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1";

/// TEFCA XP codes and the ActReason code of the same meaning.
const TEFCA_TO_ACT_REASON: [(&str, &str); 5] = [
    ("T-TREAT", "TREAT"),
    ("T-PYMNT", "HPAYMT"),
    ("T-HCO", "HOPERAT"),
    ("T-PH", "PUBHLTH"),
    ("T-IAS", "PATRQT"),
];

/// Longest string value accepted in the object (a guard).
const MAX_VALUE_CHARS: usize = 1024;

/// A checked `hl7-b2b` extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2b {
    /// `organization_id`: the requesting organization's URI.
    pub organization_id: String,
    /// `organization_name`.
    pub organization_name: Option<String>,
    /// The stated purposes as ActReason codes, in the order given.
    pub purposes: Vec<String>,
    /// `subject_id` (for example a user's NPI).
    pub subject_id: Option<String>,
    /// `subject_name`.
    pub subject_name: Option<String>,
    /// `subject_role`.
    pub subject_role: Option<String>,
}

impl B2b {
    /// The `hl7-b2b` object of an `extensions` claim, checked; `None` when
    /// the claim or the key is absent. Refusals are `invalid_grant` with a
    /// description naming the key.
    pub fn from_extensions(extensions: Option<&Value>) -> Result<Option<Self>, OAuthError> {
        let Some(ext) = extensions else {
            return Ok(None);
        };
        let Some(obj) = ext.as_object() else {
            return Err(bad("the extensions claim must be a JSON object"));
        };
        let Some(b2b) = obj.get(KEY) else {
            return Ok(None);
        };
        let Some(b2b) = b2b.as_object() else {
            return Err(bad("hl7-b2b must be a JSON object"));
        };
        let text = |k: &str| -> Result<Option<String>, OAuthError> {
            match b2b.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.chars().count() <= MAX_VALUE_CHARS => {
                    Ok(Some(s.clone()).filter(|s| !s.trim().is_empty()))
                }
                Some(Value::String(_)) => Err(bad(&format!("hl7-b2b {k} is too long"))),
                Some(_) => Err(bad(&format!("hl7-b2b {k} must be a string"))),
            }
        };
        if text("version")?.as_deref() != Some("1") {
            return Err(bad("hl7-b2b version must be \"1\""));
        }
        let organization_id =
            text("organization_id")?.ok_or_else(|| bad("hl7-b2b organization_id is required"))?;
        if !is_uri(&organization_id) {
            return Err(bad("hl7-b2b organization_id must be a URI"));
        }
        let stated = match b2b.get("purpose_of_use") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                return Err(bad(
                    "hl7-b2b purpose_of_use is required (a non-empty array)",
                ))
            }
            Some(_) => return Err(bad("hl7-b2b purpose_of_use must be an array of strings")),
        };
        let purposes = stated
            .iter()
            .map(|p| {
                p.as_str()
                    .ok_or_else(|| bad("hl7-b2b purpose_of_use must be an array of strings"))
                    .and_then(purpose_code)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self {
            organization_id,
            organization_name: text("organization_name")?,
            purposes,
            subject_id: text("subject_id")?,
            subject_name: text("subject_name")?,
            subject_role: text("subject_role")?,
        }))
    }

    /// The purpose that decides (the first stated).
    pub fn purpose(&self) -> Option<&str> {
        self.purposes.first().map(String::as_str)
    }

    /// The organization as a reference relative to `fhir_base` when the URI
    /// names an Organization on this server (`{fhir_base}/Organization/x` →
    /// `Organization/x`); otherwise the URI itself, which Consent actors
    /// may name as an absolute reference.
    pub fn organization_reference(&self, fhir_base: &str) -> String {
        let base = fhir_base.trim_end_matches('/');
        self.organization_id
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix("/Organization/"))
            .filter(|id| is_fhir_id(id))
            .map(|id| format!("Organization/{id}"))
            .unwrap_or_else(|| self.organization_id.clone())
    }
}

/// The ActReason code of one purpose: `system#code` (the IG's form),
/// `system|code`, or a bare ActReason code such as `SYSDEV`.
fn purpose_code(stated: &str) -> Result<String, OAuthError> {
    let (system, code) = match stated.rsplit_once('#').or_else(|| stated.rsplit_once('|')) {
        Some((system, code)) => (Some(system), code),
        None => (None, stated),
    };
    if code.is_empty()
        || code.len() > 64
        || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(bad(&format!(
            "hl7-b2b purpose_of_use '{}' has no valid code",
            shorten(stated)
        )));
    }
    let Some(system) = system else {
        return Ok(code.to_owned());
    };
    if ACT_REASON.contains(&system) {
        return Ok(code.to_owned());
    }
    if system == TEFCA_XP {
        return TEFCA_TO_ACT_REASON
            .iter()
            .find(|(xp, _)| *xp == code)
            .map(|(_, act)| (*act).to_owned())
            .ok_or_else(|| {
                bad(&format!(
                    "hl7-b2b purpose_of_use TEFCA code {code} has no ActReason equivalent here"
                ))
            });
    }
    Err(bad(&format!(
        "hl7-b2b purpose_of_use system '{}' is not understood (use HL7 v3 ActReason or TEFCA XP)",
        shorten(system)
    )))
}

/// A URI with a scheme (RFC 3986 §3.1), no whitespace.
fn is_uri(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// A FHIR logical id.
fn is_fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// At most 80 characters of a client's value, for an error description.
fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

fn bad(description: &str) -> OAuthError {
    OAuthError::invalid_grant(description.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(ext: Value) -> Result<Option<B2b>, OAuthError> {
        B2b::from_extensions(Some(&ext))
    }

    fn ok(purposes: Value) -> Value {
        json!({"hl7-b2b": {"version": "1",
            "organization_id": "https://gate.example/fhir/Organization/org-1",
            "organization_name": "Clinic", "purpose_of_use": purposes}})
    }

    #[test]
    fn absent_is_none() {
        assert_eq!(B2b::from_extensions(None).unwrap(), None);
        assert_eq!(read(json!({"other": {}})).unwrap(), None);
    }

    #[test]
    fn act_reason_and_tefca_purposes_read_as_act_reason_codes() {
        let b = read(ok(json!([
            "urn:oid:2.16.840.1.113883.5.8#HPAYMT",
            "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1#T-TREAT",
            "http://terminology.hl7.org/CodeSystem/v3-ActReason#PUBHLTH"
        ])))
        .unwrap()
        .unwrap();
        assert_eq!(b.purposes, ["HPAYMT", "TREAT", "PUBHLTH"]);
        let bare = read(ok(json!(["SYSDEV", "urn:oid:2.16.840.1.113883.5.8|TREAT"])))
            .unwrap()
            .unwrap();
        assert_eq!(bare.purposes, ["SYSDEV", "TREAT"]);
        assert_eq!(b.purpose(), Some("HPAYMT"));
        assert_eq!(b.organization_name.as_deref(), Some("Clinic"));
    }

    #[test]
    fn organization_on_this_server_becomes_a_relative_reference() {
        let b = read(ok(json!(["urn:oid:2.16.840.1.113883.5.8#TREAT"])))
            .unwrap()
            .unwrap();
        assert_eq!(
            b.organization_reference("https://gate.example/fhir/"),
            "Organization/org-1"
        );
        assert_eq!(
            b.organization_reference("https://other.example/fhir"),
            "https://gate.example/fhir/Organization/org-1"
        );
    }

    #[test]
    fn malformed_objects_are_refused_with_invalid_grant() {
        let cases = [
            json!([]),
            json!({"hl7-b2b": "x"}),
            json!({"hl7-b2b": {"organization_id": "urn:x:1", "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]}}),
            json!({"hl7-b2b": {"version": "1", "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": "not a uri", "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": "urn:x:1"}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": "urn:x:1", "purpose_of_use": []}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": "urn:x:1", "purpose_of_use": "TREAT"}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": "urn:x:1", "purpose_of_use": ["TRE AT"]}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": "urn:x:1", "purpose_of_use": ["#TREAT"]}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": "urn:x:1", "purpose_of_use": ["urn:other#TREAT"]}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": "urn:x:1", "purpose_of_use": ["urn:oid:2.16.840.1.113883.3.7204.1.5.2.1#T-GOVDTRM"]}}),
            json!({"hl7-b2b": {"version": "1", "organization_id": 7, "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]}}),
        ];
        for c in cases {
            let e = read(c.clone()).expect_err(&c.to_string());
            assert_eq!(e.body()["error"], "invalid_grant", "{c}");
        }
    }
}
