//! Reading a compact JWS before (or without) trusting it, and the claim
//! checks shared by [`super::KeySet::verify`] and client assertions
//! ([`crate::assertion`]).
//!
//! - RFC 7515 §7.1 (compact serialization: exactly three base64url parts, no padding).
//! - RFC 7519 §4.1.3 (`aud`: a string or an array of strings), §4.1.4 (`exp`),
//!   §4.1.6 (`iat`) and §2 (NumericDate: seconds, possibly non-integer).
//!
//! Nothing here checks a signature: callers pick a key from the header, then
//! let `jsonwebtoken` verify, then check claims with these helpers.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{Map, Value};

/// A JWT split into its decoded, *unverified* header and payload.
pub(crate) struct Unverified {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims set.
    pub claims: Map<String, Value>,
}

impl Unverified {
    /// Splits and decodes `token`; `None` unless it is three base64url
    /// parts whose first two are JSON objects.
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || s.is_empty() {
            return None;
        }
        Some(Self {
            header: object(h)?,
            claims: object(p)?,
        })
    }

    /// The header's `alg`, if it is a string.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// The header's `kid`, if it is a string.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
}

fn object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A NumericDate claim (RFC 7519 §2): `Ok(None)` when absent, `Err(())`
/// when present but not a finite number. Fractions are truncated towards
/// the past, so a bound is never loosened.
pub(crate) fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ()> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match (v.as_i64(), v.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
            _ => Err(()),
        },
    }
}

/// Whether `aud` (a string or an array of strings, RFC 7519 §4.1.3)
/// names `expected` exactly.
pub(crate) fn audience_contains(aud: Option<&Value>, expected: &str) -> bool {
    match aud {
        Some(Value::String(s)) => s == expected,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(expected)),
        _ => false,
    }
}

/// Whether a header `typ` matches the expected media type, comparing
/// case-insensitively and ignoring an `application/` prefix (RFC 7515 §4.1.9).
pub(crate) fn typ_matches(typ: Option<&str>, expected: &str) -> bool {
    fn bare(t: &str) -> String {
        let t = t.to_ascii_lowercase();
        match t.strip_prefix("application/") {
            Some(rest) => rest.to_owned(),
            None => t,
        }
    }
    typ.is_some_and(|t| bare(t) == bare(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn parses_only_three_part_compact_jws() {
        let h = enc(&json!({"alg": "RS256", "kid": "k"}));
        let p = enc(&json!({"iss": "a"}));
        let ok = Unverified::parse(&format!("{h}.{p}.sig")).unwrap();
        assert_eq!(ok.alg(), Some("RS256"));
        assert_eq!(ok.kid(), Some("k"));
        assert!(Unverified::parse(&format!("{h}.{p}.")).is_none());
        assert!(Unverified::parse(&format!("{h}.{p}.s.x")).is_none());
        assert!(Unverified::parse(&format!("{h}.{p}")).is_none());
        assert!(Unverified::parse(&format!("{h}=.{p}.s")).is_none());
        assert!(Unverified::parse(&format!("{}.{p}.s", enc(&json!([1])))).is_none());
    }

    #[test]
    fn numeric_dates_audiences_and_types() {
        let c = json!({"a": 5, "b": 5.9, "c": "5", "d": -1.5})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(numeric_date(&c, "a"), Ok(Some(5)));
        assert_eq!(numeric_date(&c, "b"), Ok(Some(5)));
        assert_eq!(numeric_date(&c, "d"), Ok(Some(-2)));
        assert_eq!(numeric_date(&c, "c"), Err(()));
        assert_eq!(numeric_date(&c, "zz"), Ok(None));
        assert!(audience_contains(Some(&json!("x")), "x"));
        assert!(audience_contains(Some(&json!(["y", "x"])), "x"));
        assert!(!audience_contains(Some(&json!(["y"])), "x"));
        assert!(!audience_contains(Some(&json!("xx")), "x"));
        assert!(!audience_contains(None, "x"));
        assert!(typ_matches(Some("application/AT+JWT"), "at+jwt"));
        assert!(!typ_matches(Some("JWT"), "at+jwt"));
        assert!(!typ_matches(None, "at+jwt"));
    }
}
