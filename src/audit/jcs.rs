//! RFC 8785 JSON Canonicalization Scheme (JCS) for a [`serde_json::Value`].
//!
//! - Objects: members sorted by their names compared as arrays of UTF-16
//!   code units (RFC 8785 §3.2.3); no whitespace anywhere (§3.2.1).
//! - Strings: ECMAScript `JSON.stringify` escaping (§3.2.2.2): `"` and `\`
//!   escaped, `\b \t \n \f \r` in short form, other controls below U+0020 as
//!   `\u00xx` (lowercase hex), everything else (including `/`, DEL and all
//!   non-ASCII) literal UTF-8.
//! - Numbers: ECMAScript `Number.prototype.toString` (§3.2.2.3): the
//!   shortest digit string that round-trips, the closer one on a tie and
//!   then the even one (the `ryu` crate's digits; Rust's own `{:e}` rounds
//!   ties up), laid out per ECMA-262 `Number::toString`
//!   (plain notation for exponents in -6..21, else `d.ddde±n`); `-0` is `0`.
//!
//! Limits: serde_json keeps each number's digits (`arbitrary_precision`,
//! which fhirbolt turns on for the workspace, so FHIR decimals keep theirs);
//! a number is read here as `i64`, `u64` or, else, the `f64` its digits
//! parse to exactly; integers whose magnitude exceeds 2^53 are converted to
//! the nearest IEEE 754 double first, as an ECMAScript parser would, so they canonicalize like RFC 8785 says (e.g.
//! `18446744073709551615` → `18446744073709552000`). NaN and ±Infinity
//! cannot occur in a `Value`. Duplicate member names cannot occur either
//! (the map keeps one), so I-JSON's "no duplicates" rule holds trivially.

use serde_json::{Number, Value};

/// The canonical UTF-8 bytes of `value` (RFC 8785 §3).
pub fn canonicalize(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(value, &mut out);
    out.into_bytes()
}

/// The canonical form as a `String` (always valid UTF-8).
pub fn canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Objects built in canonical member order (the audit events'
            // are) are written as they are, without collecting and sorting.
            let mut names = map.keys();
            let sorted = match names.next() {
                Some(first) => names
                    .try_fold(first, |prev, name| {
                        (utf16_cmp(prev, name) == std::cmp::Ordering::Less).then_some(name)
                    })
                    .is_some(),
                None => true,
            };
            out.push('{');
            if sorted {
                write_members(map.iter(), out);
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| utf16_cmp(a.0, b.0));
                write_members(members.into_iter(), out);
            }
            out.push('}');
        }
    }
}

fn write_members<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut String) {
    for (i, (name, item)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(name, out);
        out.push(':');
        write_value(item, out);
    }
}

/// Member names in the order of RFC 8785 §3.2.3 (UTF-16 code units). UTF-8
/// bytes sort like code points, which is the same order as UTF-16 code
/// units unless a character at or above U+E000 is involved (surrogates sort
/// below it): ASCII names, nearly all of them, are compared as bytes.
fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Appends the canonical form of the string `s` (quoted and escaped).
pub fn push_string(s: &str, out: &mut String) {
    write_string(s, out);
}

/// Appends the canonical form of the number `n`.
pub fn push_number(n: &Number, out: &mut String) {
    write_number(n, out);
}

/// Whether a byte is written escaped: `"`, backslash and controls below U+0020.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn write_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Nearly every string needs no escape: one branch-free scan (no early
    // exit, so it vectorizes), then one copy.
    if !s.bytes().fold(false, |any, b| any | needs_escape(b)) {
        out.push_str(s);
        out.push('"');
        return;
    }
    // Runs of characters written as they are are copied in one piece; only
    // `"`, `\` and controls below U+0020 (all ASCII) are escaped, so a run
    // never ends inside a multi-byte character.
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            c if c < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// 2^53: integers up to this magnitude are exact doubles.
const MAX_SAFE: u64 = 1 << 53;

fn write_number(n: &Number, out: &mut String) {
    use std::fmt::Write as _;
    if let Some(u) = n.as_u64() {
        if u <= MAX_SAFE {
            let _ = write!(out, "{u}");
            return;
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= MAX_SAFE {
            let _ = write!(out, "{i}");
            return;
        }
    }
    // Large integers and floats: through the double an ECMAScript parser makes.
    out.push_str(&es_number(n.as_f64().unwrap_or(0.0)));
}

/// ECMA-262 `Number::toString(x)` for a finite double.
pub fn es_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        // -0 serializes as 0; non-finite values cannot come from a `Value`.
        return "0".to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Ryu gives the shortest round-tripping digits, ties to even as
    // ECMA-262 asks ("1.4249539237812062e15", "1e30", "0.002", …).
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(x.abs());
    let (mantissa, exp) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let point = mantissa.find('.').unwrap_or(mantissa.len()) as i64;
    let all: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_start_matches('0').trim_end_matches('0');
    let e: i64 = exp.parse().unwrap_or(0);
    let k = digits.len() as i64;
    // ECMA-262: value = 0.digits × 10^n.
    let n = point + e - leading as i64;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let exp_sign = if n > 0 { "+" } else { "-" };
        let exp_abs = (n - 1).abs();
        if k == 1 {
            format!("{digits}e{exp_sign}{exp_abs}")
        } else {
            let (first, rest) = digits.split_at(1);
            format!("{first}.{rest}e{exp_sign}{exp_abs}")
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, want) in cases {
            assert_eq!(es_number(f64::from_bits(*bits)), *want, "{bits:016x}");
        }
    }

    /// RFC 8785 §3.2.2: the worked example (numbers, string escapes, literals).
    #[test]
    fn rfc8785_section_3_2_2_example() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            canonical_string(&v),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 §3.2.3: sorting by UTF-16 code units (the emoji's surrogate
    /// pair sorts before U+FB33, unlike a code point or UTF-8 sort).
    #[test]
    fn rfc8785_section_3_2_3_sorting() {
        let input = r#"{
            "\u20ac": "Euro Sign", "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let want = concat!(
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",",
            "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",",
            "\"\u{1f600}\":\"Emoji: Grinning Face\",",
            "\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(canonical_string(&v), want);
    }

    #[test]
    fn integers_nesting_and_big_values() {
        let v =
            json!({"b": [1, -2, {"z": 0, "a": 9007199254740993_u64}], "a": u64::MAX, "c": -0.0});
        assert_eq!(
            canonical_string(&v),
            r#"{"a":18446744073709552000,"b":[1,-2,{"a":9007199254740992,"z":0}],"c":0}"#
        );
        assert_eq!(
            canonical_string(&json!("\u{7f}\u{1f}/")),
            "\"\u{7f}\\u001f/\""
        );
        assert_eq!(canonicalize(&json!({})), b"{}");
    }
}
