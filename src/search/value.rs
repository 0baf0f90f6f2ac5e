//! Typed search values (R4 search.html §3.1.1.4–5): comma/pipe splitting with
//! `\` escapes, prefixes (`eq ne gt lt ge le sa eb ap`), token forms
//! (`code`, `system|code`, `|code`, `system|`), dates with precision,
//! quantities (`[prefix]number|system|code`) and references (`id`, `Type/id`,
//! absolute URLs under our base, anything else as a URL or canonical).

use super::date::{parse_range, DateRange};
use crate::fhir::{is_valid_id, Reference};

/// A comparison prefix (§3.1.1.5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Equal (the default).
    Eq,
    /// Not equal.
    Ne,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater or equal.
    Ge,
    /// Less or equal.
    Le,
    /// Starts after.
    Sa,
    /// Ends before.
    Eb,
    /// Approximately (±10%).
    Ap,
}

/// Splits off a prefix. Two leading letters that are not a prefix are an error.
pub fn split_prefix(s: &str) -> Result<(Prefix, &str), String> {
    let Some(head) = s.get(..2) else {
        return Ok((Prefix::Eq, s));
    };
    if !head.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok((Prefix::Eq, s));
    }
    let p = match head {
        "eq" => Prefix::Eq,
        "ne" => Prefix::Ne,
        "gt" => Prefix::Gt,
        "lt" => Prefix::Lt,
        "ge" => Prefix::Ge,
        "le" => Prefix::Le,
        "sa" => Prefix::Sa,
        "eb" => Prefix::Eb,
        "ap" => Prefix::Ap,
        _ => return Err(format!("'{head}' in '{s}' is not a search prefix")),
    };
    Ok((p, s.get(2..).unwrap_or_default()))
}

/// Splits on unescaped `sep`, keeping escapes in the parts.
pub fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(last) = parts.last_mut() {
                    last.push('\\');
                    if let Some(n) = chars.next() {
                        last.push(n);
                    }
                }
            }
            c if c == sep => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

/// Removes `\` escapes.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A token value. `system`: `None` = any system, `Some(None)` = no system (`|code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenValue {
    /// System constraint.
    pub system: Option<Option<String>>,
    /// Code; `None` for `system|` (any code in the system).
    pub code: Option<String>,
}

/// Parses `code`, `system|code`, `|code` or `system|`.
pub fn parse_token(raw: &str) -> Result<TokenValue, String> {
    let parts = split_escaped(raw, '|');
    let non_empty = |s: &str| (!s.is_empty()).then(|| unescape(s));
    match parts.as_slice() {
        [code] if !code.is_empty() => Ok(TokenValue {
            system: None,
            code: Some(unescape(code)),
        }),
        [sys, code] if !(sys.is_empty() && code.is_empty()) => Ok(TokenValue {
            system: Some(non_empty(sys)),
            code: non_empty(code),
        }),
        _ => Err(format!(
            "'{raw}' is not a token (code, system|code, |code or system|)"
        )),
    }
}

/// A date search value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateValue {
    /// Comparison.
    pub prefix: Prefix,
    /// The value's implicit range.
    pub range: DateRange,
}

/// Parses `[prefix]date`.
pub fn parse_date(raw: &str) -> Result<DateValue, String> {
    let (prefix, rest) = split_prefix(raw)?;
    let range =
        parse_range(rest).ok_or_else(|| format!("'{raw}' is not a valid date search value"))?;
    Ok(DateValue { prefix, range })
}

/// A number or quantity search value.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberValue {
    /// Comparison.
    pub prefix: Prefix,
    /// The number as given.
    pub value: f64,
    /// Lower edge of its implicit precision range (inclusive).
    pub low: f64,
    /// Upper edge of its implicit precision range (exclusive).
    pub high: f64,
    /// Quantity system (None = any).
    pub system: Option<String>,
    /// Quantity code or unit (None = any).
    pub code: Option<String>,
}

/// Parses `[prefix]number` (a quantity without system/code).
pub fn parse_number(raw: &str) -> Result<NumberValue, String> {
    let (prefix, rest) = split_prefix(raw)?;
    let bad = || format!("'{raw}' is not a valid number");
    let t = rest.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return Err(bad());
    }
    let value: f64 = t.parse().map_err(|_| bad())?;
    if !value.is_finite() {
        return Err(bad());
    }
    let half = if t.contains(['e', 'E']) {
        0.0
    } else {
        let decimals = t.split_once('.').map_or(0, |(_, f)| f.len());
        0.5 * 10f64.powi(-i32::try_from(decimals).unwrap_or(0))
    };
    Ok(NumberValue {
        prefix,
        value,
        low: value - half,
        high: value + half,
        system: None,
        code: None,
    })
}

/// Parses `[prefix]number|system|code`, `number||code` or `number`.
pub fn parse_quantity(raw: &str) -> Result<NumberValue, String> {
    let parts = split_escaped(raw, '|');
    let non_empty = |s: &String| (!s.is_empty()).then(|| unescape(s));
    match parts.as_slice() {
        [n] => parse_number(&unescape(n)),
        [n, sys, code] => {
            let mut v = parse_number(&unescape(n))?;
            v.system = non_empty(sys);
            v.code = non_empty(code);
            Ok(v)
        }
        _ => Err(format!("'{raw}' is not a quantity (number|system|code)")),
    }
}

/// A reference search value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefValue {
    /// A resource on this server; `rtype` None = any type.
    Local {
        /// Target type, if known.
        rtype: Option<String>,
        /// Target id.
        id: String,
    },
    /// An external reference or canonical URL, matched as written.
    Url(String),
}

/// Parses a reference value. `type_hint` comes from a `:Type` modifier or a
/// parameter with a single target type; `base` is this server's FHIR base.
pub fn parse_reference(raw: &str, type_hint: Option<&str>, base: &str) -> Result<RefValue, String> {
    let v = raw.trim();
    if v.is_empty() {
        return Err("empty reference value".into());
    }
    let local = if v.contains("://") {
        Reference::parse(v, Some(base))
    } else {
        Reference::parse(v, None)
    };
    if let Some(r) = local {
        if type_hint.is_some_and(|h| h != r.resource_type) {
            return Err(format!("'{v}' does not match the type modifier"));
        }
        return Ok(RefValue::Local {
            rtype: Some(r.resource_type),
            id: r.id,
        });
    }
    if !v.contains('/') && !v.contains(':') && is_valid_id(v) {
        return Ok(RefValue::Local {
            rtype: type_hint.map(str::to_owned),
            id: v.to_owned(),
        });
    }
    Ok(RefValue::Url(v.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(split_prefix("ge2020").unwrap(), (Prefix::Ge, "2020"));
        assert_eq!(split_prefix("2020").unwrap(), (Prefix::Eq, "2020"));
        assert_eq!(split_prefix("sa5").unwrap(), (Prefix::Sa, "5"));
        assert_eq!(split_prefix("eb5").unwrap(), (Prefix::Eb, "5"));
        assert!(split_prefix("xx2020").is_err());
        assert!(parse_date("zz2020").is_err());
        assert!(parse_date("2020-99").is_err());
        assert_eq!(parse_date("lt2020-01").unwrap().prefix, Prefix::Lt);
    }

    #[test]
    fn token_forms() {
        let t = |s| parse_token(s).unwrap();
        assert_eq!(
            t("abc"),
            TokenValue {
                system: None,
                code: Some("abc".into())
            }
        );
        assert_eq!(
            t("http://loinc.org|1234-5"),
            TokenValue {
                system: Some(Some("http://loinc.org".into())),
                code: Some("1234-5".into())
            }
        );
        assert_eq!(
            t("|abc"),
            TokenValue {
                system: Some(None),
                code: Some("abc".into())
            }
        );
        assert_eq!(
            t("http://x|"),
            TokenValue {
                system: Some(Some("http://x".into())),
                code: None
            }
        );
        assert_eq!(
            t("a\\|b"),
            TokenValue {
                system: None,
                code: Some("a|b".into())
            }
        );
        assert!(parse_token("").is_err());
        assert!(parse_token("|").is_err());
        assert!(parse_token("a|b|c").is_err());
    }

    #[test]
    fn escapes_and_commas() {
        assert_eq!(split_escaped("a,b\\,c", ','), vec!["a", "b\\,c"]);
        assert_eq!(unescape("b\\,c\\\\"), "b,c\\");
    }

    #[test]
    fn numbers_carry_precision() {
        let n = parse_number("5.4").unwrap();
        assert!((n.low - 5.35).abs() < 1e-9 && (n.high - 5.45).abs() < 1e-9);
        let q = parse_quantity("gt5.4|http://unitsofmeasure.org|mg").unwrap();
        assert_eq!(q.prefix, Prefix::Gt);
        assert_eq!(q.code.as_deref(), Some("mg"));
        let q = parse_quantity("100||mmHg").unwrap();
        assert_eq!((q.system, q.code.as_deref()), (None, Some("mmHg")));
        assert!(parse_number("abc").is_err());
        assert!(parse_number("1x").is_err());
        assert!(parse_quantity("1|2").is_err());
    }

    #[test]
    fn reference_forms() {
        let b = "http://h/fhir";
        let local = |t: Option<&str>, id: &str| RefValue::Local {
            rtype: t.map(str::to_owned),
            id: id.into(),
        };
        assert_eq!(parse_reference("123", None, b).unwrap(), local(None, "123"));
        assert_eq!(
            parse_reference("123", Some("Patient"), b).unwrap(),
            local(Some("Patient"), "123")
        );
        assert_eq!(
            parse_reference("Patient/1", None, b).unwrap(),
            local(Some("Patient"), "1")
        );
        assert_eq!(
            parse_reference("http://h/fhir/Patient/1", None, b).unwrap(),
            local(Some("Patient"), "1")
        );
        assert_eq!(
            parse_reference("http://o/fhir/Patient/1", None, b).unwrap(),
            RefValue::Url("http://o/fhir/Patient/1".into())
        );
        assert!(parse_reference("Patient/1", Some("Group"), b).is_err());
    }
}
