//! The truth test's failure-message helpers, with the shared case runner
//! ([`conformance_tests::cases`]) re-exported.

use conformance_tests::Resp;

pub use conformance_tests::cases::{ensure, short, Cases};

/// `METHOD path → status: body excerpt`.
pub fn described(method: &str, path: &str, r: &Resp) -> String {
    format!("{method} {path} → {}: {}", r.status, short(&r.text))
}

/// The status is one of `want`, else an error describing the exchange.
pub fn expect_status(method: &str, path: &str, r: &Resp, want: &[u16]) -> Result<(), String> {
    if want.contains(&r.status) {
        Ok(())
    } else {
        Err(format!(
            "wanted {want:?}, got {}",
            described(method, path, r)
        ))
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
