//! Reading the ledger's AuditEvents (`GET /fhir/AuditEvent`) in tests.

use serde_json::Value;

/// The entries of an AuditEvent search Bundle with the subtype `code`.
pub fn with_subtype<'a>(bundle: &'a Value, code: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["resource"]["subtype"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["code"] == code)
        })
        .collect()
}
