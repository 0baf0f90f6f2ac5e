//! `fhirgate ledger export --since <seq>`: the chained entries as NDJSON,
//! one JSON object per line, in seq order, for SIEM ingestion (e.g.
//! Microsoft Sentinel through the Logs Ingestion API; see README).
//!
//! Each line: `seq`, `created_at` (ms), `time` (RFC 3339), `request_id`,
//! `entry` (the PHI-free chained part, parsed), `leaf_hash`, `chain_hash`.
//! Payloads are not exported (they hold PHI and stay encrypted).

use std::io::Write;

use serde_json::{json, Value};

use super::Ledger;

/// Rows read per page.
const PAGE: u64 = 5_000;

/// One NDJSON line's object.
pub fn line(e: &super::ledger::StoredEntry) -> Value {
    let time =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.created_at) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
    json!({
        "seq": e.seq,
        "created_at": e.created_at,
        "time": time,
        "request_id": e.request_id,
        "entry": serde_json::from_str::<Value>(&e.entry).unwrap_or(Value::String(e.entry.clone())),
        "leaf_hash": e.leaf_hash,
        "chain_hash": e.chain_hash,
    })
}

/// Writes every entry from `since` on; returns how many. A failed write is
/// an error that keeps its `std::io::Error` (a closed pipe stays one).
pub async fn export(ledger: &Ledger, since: u64, out: &mut impl Write) -> anyhow::Result<u64> {
    let mut from = since;
    let mut n = 0;
    loop {
        let page = ledger.entries(from, PAGE).await?;
        let Some(last) = page.last() else { break };
        from = last.seq as u64 + 1;
        for e in &page {
            let text = serde_json::to_string(&line(e)).unwrap_or_default();
            writeln!(out, "{text}")
                .map_err(|e| anyhow::Error::new(e).context("writing the export"))?;
            n += 1;
        }
    }
    Ok(n)
}
