//! The stored form of an AuditEvent payload: its canonical JSON with each
//! string that is exactly one of [`WORDS`] (member names, code systems,
//! codes, displays and profiles of BALP events) written as two bytes,
//! `0x01` and the word's index. A read's three events shrink to about a
//! third, and so does the ledger on disk (it stored about 6 KB per entry,
//! most of it this boilerplate).
//!
//! Why a fixed word list and not a general compressor: the payload is
//! sealed, and a compressor's output length depends on repeats between any
//! two parts of the input, so a caller who can put text into an event and
//! read stored lengths could test guesses about the rest of it (the
//! CRIME/BREACH attacks). Here each JSON string is replaced, or not, on its
//! own: the stored length says nothing about how strings relate.
//!
//! Canonical JSON never holds a raw byte below 0x20 (RFC 8785 escapes them),
//! so `0x01` cannot be mistaken for text, and a payload written before this
//! form existed expands to itself. [`WORDS`] is append-only: an index, once
//! stored, means its word forever.

use std::{collections::HashMap, sync::LazyLock};

/// The marker byte before a word's index.
const MARK: u8 = 0x01;

/// The words, by index. Append only; never reorder, change or remove.
pub const WORDS: &[&str] = &[
    // 0: member names
    "resourceType",
    "AuditEvent",
    "action",
    "agent",
    "entity",
    "meta",
    "profile",
    "outcome",
    "outcomeDesc",
    "recorded",
    "source",
    "observer",
    "site",
    "type",
    "subtype",
    "coding",
    "system",
    "code",
    "display",
    "who",
    "what",
    "identifier",
    "value",
    "reference",
    "network",
    "address",
    "requestor",
    "role",
    "detail",
    "valueString",
    "valueBase64Binary",
    "purposeOfEvent",
    "purposeOfUse",
    "security",
    "policy",
    "query",
    "text",
    "name",
    "description",
    // 39: code systems and identifier systems
    "http://dicom.nema.org/resources/ontology/DCM",
    "http://hl7.org/fhir/restful-interaction",
    "http://hl7.org/fhir/resource-types",
    "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "http://terminology.hl7.org/CodeSystem/audit-entity-type",
    "http://terminology.hl7.org/CodeSystem/object-role",
    "http://terminology.hl7.org/CodeSystem/security-source-type",
    "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
    "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
    "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes",
    "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType",
    "urn:ietf:rfc:3986",
    "urn:ietf:params:oauth:client-id",
    "urn:fhirgate:audit",
    // 55: profiles
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Read",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Create",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Update",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Delete",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Query",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientCreate",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientUpdate",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientDelete",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery",
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.AuthZconsent",
    // 66: codes and displays
    "Restful Operation",
    "rest",
    "Application Activity",
    "Security Alert",
    "User Authentication",
    "Login",
    "Logout",
    "Application",
    "Application Server",
    "Source Role ID",
    "Destination Role ID",
    "110100",
    "110110",
    "110113",
    "110114",
    "110122",
    "110123",
    "110150",
    "110152",
    "110153",
    "AuthZ-Consent",
    "Authorization Decision using Roles and Consent",
    "XrequestId",
    "X-Request-Id",
    "UserOauthAgent",
    "OAuth token",
    "IRCP",
    "information recipient",
    "RESP",
    "responsible party",
    "authserver",
    "authorization server",
    "Patient",
    "Person",
    "System Object",
    "Domain Resource",
    "Query",
    "Consent",
    "Patient Record",
    "fhirgate",
    "unauthenticated client",
    "no signed-in user",
    "no consent decision",
    "none: no consent decision",
    "basis",
    "resources",
    "withheld",
    "permit",
    "deny",
    "redact",
    "break-the-glass",
    "read",
    "vread",
    "update",
    "delete",
    "create",
    "search-type",
    "search-system",
    "search",
    "history-instance",
    "history-type",
    "history-system",
    "transaction",
    "batch",
    "operation",
    "capabilities",
];

/// The words' indexes.
static INDEX: LazyLock<HashMap<&'static [u8], u8>> = LazyLock::new(|| {
    WORDS
        .iter()
        .enumerate()
        .filter_map(|(i, w)| Some((w.as_bytes(), u8::try_from(i).ok()?)))
        .collect()
});

/// The index of a word, if `s` is one.
fn index_of(s: &[u8]) -> Option<u8> {
    // Most strings are short values that are no word: no hashing for them.
    if s.len() < 3 {
        return None;
    }
    INDEX.get(s).copied()
}

/// The end of the JSON string whose opening quote is at `open`: the index
/// of its closing quote.
fn closing_quote(json: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The stored form of canonical JSON `json`.
pub fn compact(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() / 2);
    let mut i = 0;
    while i < json.len() {
        if json[i] != b'"' {
            out.push(json[i]);
            i += 1;
            continue;
        }
        let Some(close) = closing_quote(json, i) else {
            // Not JSON after all: the rest as it is.
            out.extend_from_slice(&json[i..]);
            break;
        };
        match index_of(&json[i + 1..close]) {
            Some(n) => out.extend_from_slice(&[MARK, n]),
            None => out.extend_from_slice(&json[i..=close]),
        }
        i = close + 1;
    }
    out
}

/// The canonical JSON of stored form `stored`; `None` when it names a word
/// this build does not know (written by a newer fhirgate).
pub fn expand(stored: &[u8]) -> Option<Vec<u8>> {
    if !stored.contains(&MARK) {
        return Some(stored.to_vec());
    }
    let mut out = Vec::with_capacity(stored.len() * 3);
    let mut i = 0;
    while i < stored.len() {
        if stored[i] == MARK {
            let word = WORDS.get(usize::from(*stored.get(i + 1)?))?;
            out.push(b'"');
            out.extend_from_slice(word.as_bytes());
            out.push(b'"');
            i += 2;
        } else {
            out.push(stored[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::jcs;
    use serde_json::json;

    #[test]
    fn words_are_unique_plain_and_fit_one_byte() {
        assert!(WORDS.len() <= 256);
        let mut seen = std::collections::HashSet::new();
        for w in WORDS {
            assert!(seen.insert(*w), "{w} twice");
            assert!(w.len() >= 3, "{w} is too short to be worth it");
            // Written by JCS as they are: no escapes.
            assert_eq!(
                jcs::canonicalize(&json!(w)),
                format!("\"{w}\"").into_bytes()
            );
        }
    }

    #[test]
    fn round_trips_and_only_whole_strings_are_replaced() {
        let v = json!({
            "resourceType": "AuditEvent",
            "entity": [{"what": {"reference": "Patient/read"}, "type": {"code": "Patient"}}],
            "outcomeDesc": "a \"quoted\" Patient \\ and fhirgate",
            "x": ["read", "readx", "xread", "\u{1}", "ünï", "Patient/Patient", ""],
            "fhirgate": {"\"system\"": "system"},
        });
        let json = jcs::canonicalize(&v);
        let stored = compact(&json);
        assert!(stored.len() < json.len());
        assert_eq!(expand(&stored).unwrap(), json);
        // Substrings of strings stay text.
        let text = String::from_utf8_lossy(&stored);
        for kept in [
            "Patient/read",
            "readx",
            "xread",
            "Patient/Patient",
            "and fhirgate",
        ] {
            assert!(text.contains(kept), "{kept} in {text}");
        }
        // The control byte in a value is escaped by JCS, never a marker.
        assert_eq!(
            expand(&compact(&jcs::canonicalize(&json!("\u{1}x")))).unwrap(),
            jcs::canonicalize(&json!("\u{1}x"))
        );
    }

    #[test]
    fn payloads_written_before_expand_to_themselves() {
        let json = jcs::canonicalize(&json!({"resourceType": "AuditEvent", "action": "R"}));
        assert_eq!(expand(&json).unwrap(), json);
    }

    #[test]
    fn an_unknown_word_is_refused_not_guessed() {
        assert!(expand(&[b'[', MARK, 255, b']']).is_none());
        assert!(expand(&[b'[', MARK]).is_none());
    }

    #[test]
    fn each_string_is_replaced_on_its_own() {
        // The stored length of an event with an attacker's string in it
        // does not depend on whether it equals another string of the event.
        let len = |guess: &str| {
            compact(&jcs::canonicalize(&json!({
                "entity": [{"what": {"reference": "Patient/secret-42"}}],
                "outcomeDesc": guess,
            })))
            .len()
        };
        assert_eq!(len("Patient/secret-42"), len("Patient/secret-43"));
    }
}
