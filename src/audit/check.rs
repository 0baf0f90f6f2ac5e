//! `fhirgate ledger verify-payloads`: every chained entry that names a
//! payload digest has its payload row, the payload decrypts (AES-GCM
//! authenticates it under its seq and pseudonym) and its keyed digest
//! equals the one on the chain. Erased payloads are counted, not errors.
//! Complements `fhirgate ledger verify`, which checks the chain itself.

use serde_json::Value;

use super::{error::AuditError, read::open_rows, store, Auditor};

/// Rows per page.
const PAGE: i64 = 2_000;

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PayloadReport {
    /// Entries with a payload digest.
    pub checked: u64,
    /// Payloads that decrypted and matched.
    pub ok: u64,
    /// Payloads whose key was erased.
    pub erased: u64,
    /// Seqs whose payload row is missing.
    pub missing: Vec<u64>,
    /// Seqs whose payload fails decryption or does not match the chain.
    pub bad: Vec<u64>,
}

impl PayloadReport {
    /// No missing or bad payloads.
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.bad.is_empty()
    }
}

/// Checks every payload against the chain.
pub async fn verify_payloads(auditor: &Auditor) -> Result<PayloadReport, AuditError> {
    let ledger = auditor.ledger();
    let pz = &auditor.builder().pz;
    let mut report = PayloadReport::default();
    let mut from = 0i64;
    loop {
        let entries = ledger.entries(from as u64, PAGE as u64).await?;
        let Some(last) = entries.last() else { break };
        let rows = store::range(auditor.store(), from, last.seq + 1 - from).await?;
        from = last.seq + 1;
        let opened = open_rows(auditor, &rows).await?;
        for e in &entries {
            let entry: Value = serde_json::from_str(&e.entry).unwrap_or(Value::Null);
            let Some(digest) = entry["payload"].as_str() else {
                continue;
            };
            report.checked += 1;
            let Some(i) = rows.iter().position(|r| r.seq == e.seq) else {
                report.missing.push(e.seq as u64);
                continue;
            };
            match &opened[i] {
                Ok(ev) => {
                    let mut ev = ev.clone();
                    if let Some(m) = ev.as_object_mut() {
                        m.remove("id");
                    }
                    if pz.payload(&super::jcs::canonicalize(&ev)) == digest {
                        report.ok += 1;
                    } else {
                        report.bad.push(e.seq as u64);
                    }
                }
                Err(super::vault::VaultError::Erased) => report.erased += 1,
                Err(_) => report.bad.push(e.seq as u64),
            }
        }
    }
    Ok(report)
}
