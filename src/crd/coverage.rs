//! The CRD coverage-information extension (`ext-coverage-information`,
//! CRD 2.0.1) on an order, and its coverage-assertion id: an HMAC-SHA256,
//! under the server's secret, of coverage + patient + order code, so the
//! same question gets the same id and different coverages different ids.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::rules::{Decision, Requirement};

/// The extension's canonical URL.
pub const EXT_COVERAGE_INFORMATION: &str =
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information";

/// The coverage-assertion id of (coverage, patient, code).
pub fn assertion_id(secret: &str, coverage: &str, patient: &str, code: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    for part in [coverage, patient, code] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The coded codes of one decision (CRD 2.0.1 value sets
/// coverageInfo, coverageAssertionReasons, …).
pub struct Codes {
    /// `covered`: covered | not-covered | conditional.
    pub covered: &'static str,
    /// `pa-needed`: no-auth | auth-needed | satisfied | performpa | conditional.
    pub pa_needed: Option<&'static str>,
    /// `doc-needed`: no-doc | clinical | admin | both | conditional.
    pub doc_needed: Option<&'static str>,
}

/// What a decision says in the extension's codes.
pub fn codes(d: &Decision) -> Codes {
    match d.requirement {
        Requirement::NoAuth => Codes {
            covered: "covered",
            pa_needed: Some("no-auth"),
            doc_needed: None,
        },
        Requirement::AutoApprove | Requirement::Pend => Codes {
            covered: "covered",
            pa_needed: Some("auth-needed"),
            doc_needed: None,
        },
        Requirement::NeedsDocumentation => Codes {
            covered: "covered",
            pa_needed: Some("auth-needed"),
            doc_needed: Some("clinical"),
        },
        // crd-ci-q2: no pa-needed when not covered.
        Requirement::AutoDeny => Codes {
            covered: "not-covered",
            pa_needed: None,
            doc_needed: None,
        },
    }
}

/// One assertion about one order under one coverage.
pub struct Assertion<'a> {
    /// `Coverage/<id>`.
    pub coverage: &'a str,
    /// The order's code, echoed as `billingCode`.
    pub coding: &'a Value,
    /// The payer's answer.
    pub decision: &'a Decision,
    /// The coverage-assertion id.
    pub id: &'a str,
    /// Today (`YYYY-MM-DD`).
    pub date: &'a str,
}

/// The `ext-coverage-information` extension of `a`.
pub fn extension(a: &Assertion) -> Value {
    let c = codes(a.decision);
    let mut parts = vec![
        json!({"url": "coverage", "valueReference": {"reference": a.coverage}}),
        json!({"url": "covered", "valueCode": c.covered}),
    ];
    if let Some(pa) = c.pa_needed {
        parts.push(json!({"url": "pa-needed", "valueCode": pa}));
    }
    if let Some(doc) = c.doc_needed {
        parts.push(json!({"url": "doc-needed", "valueCode": doc}));
        parts.push(json!({"url": "doc-purpose", "valueCode": "withpa"}));
    }
    if a.coding.get("code").is_some() {
        parts.push(json!({"url": "billingCode", "valueCoding": a.coding}));
    }
    if let (Some(_), Some(q)) = (c.doc_needed, &a.decision.questionnaire) {
        parts.push(json!({"url": "questionnaire", "valueCanonical": q}));
    }
    parts.push(json!({"url": "date", "valueDate": a.date}));
    parts.push(json!({"url": "coverage-assertion-id", "valueString": a.id}));
    json!({"url": EXT_COVERAGE_INFORMATION, "extension": parts})
}

/// `order` with `ext` added (replacing an earlier assertion for the same
/// coverage, so re-signing does not pile them up).
pub fn annotate(order: &Value, ext: Value, coverage: &str) -> Value {
    let mut out = order.clone();
    if let Some(obj) = out.as_object_mut() {
        let list = obj.entry("extension").or_insert_with(|| json!([]));
        if let Some(arr) = list.as_array_mut() {
            arr.retain(|e| {
                e["url"] != EXT_COVERAGE_INFORMATION
                    || e["extension"]
                        .as_array()
                        .and_then(|p| p.iter().find(|x| x["url"] == "coverage"))
                        .map(|x| x["valueReference"]["reference"] != coverage)
                        .unwrap_or(true)
            });
            arr.push(ext);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_ids_are_stable_and_distinct() {
        let a = assertion_id("s", "Coverage/1", "Patient/p", "72148");
        assert_eq!(a, assertion_id("s", "Coverage/1", "Patient/p", "72148"));
        assert_ne!(a, assertion_id("s", "Coverage/2", "Patient/p", "72148"));
        assert_ne!(a, assertion_id("s", "Coverage/1", "Patient/p", "97110"));
        assert_ne!(a, assertion_id("t", "Coverage/1", "Patient/p", "72148"));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn not_covered_has_no_pa_needed() {
        let d = Decision {
            requirement: Requirement::AutoDeny,
            questionnaire: None,
            reason: None,
        };
        let coding = json!({"code": "x"});
        let e = extension(&Assertion {
            coverage: "Coverage/1",
            coding: &coding,
            decision: &d,
            id: "i",
            date: "2026-01-01",
        });
        let urls: Vec<&str> = e["extension"]
            .as_array()
            .map(|p| p.iter().filter_map(|x| x["url"].as_str()).collect())
            .unwrap_or_default();
        assert!(urls.contains(&"covered") && !urls.contains(&"pa-needed"));
    }
}
