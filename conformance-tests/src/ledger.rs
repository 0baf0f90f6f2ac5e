//! The audit ledger as the black-box suites see it: the receipt a FHIR
//! response carries (`X-Ledger-Seq`, `X-Request-Id`), and the ledger read
//! back with `fhirgate ledger export` and checked with `fhirgate ledger
//! verify` against a [`Process`]'s data.

use serde_json::Value;

use crate::{process::Process, TestResult};

/// A response's receipt: the ledger seq of its request's last entry
/// (`X-Ledger-Seq`) and its request id (`X-Request-Id`).
pub fn receipt(r: &reqwest::blocking::Response) -> (Option<u64>, Option<String>) {
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok());
    (
        header("x-ledger-seq").and_then(|s| s.parse().ok()),
        header("x-request-id").map(str::to_owned),
    )
}

/// `fhirgate ledger verify` must exit 0; returns what it printed.
pub fn verify(p: &Process) -> TestResult<String> {
    let out = p.cli(&["ledger", "verify"])?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("ledger verify failed: {text}").into())
    }
}

/// `fhirgate ledger export`: seq → request id, in the order written.
pub fn export(p: &Process) -> TestResult<Vec<(u64, Option<String>)>> {
    let out = p.cli(&["ledger", "export"])?;
    if !out.status.success() {
        return Err(format!(
            "ledger export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut rows = Vec::new();
    for line in String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| !l.is_empty())
    {
        let v: Value = serde_json::from_str(line)?;
        let seq = v["seq"].as_u64().ok_or("a line without seq")?;
        rows.push((seq, v["request_id"].as_str().map(str::to_owned)));
    }
    Ok(rows)
}
