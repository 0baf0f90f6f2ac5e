//! A profile's validated rules: what a rule selects (element path and/or
//! node kinds), its method with the method's options, and the check that
//! a method applies to the kinds a rule names.

use serde_json::Value;

use super::kinds::Kind;

/// A method with its options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Method {
    Redact,
    Keep,
    DateShift {
        range_days: i64,
    },
    CryptoHash,
    Generalize {
        round_to: Option<u32>,
    },
    Perturb {
        span: f64,
        absolute: bool,
        round_to: Option<u32>,
    },
    Substitute(Value),
}

/// The method names a profile may use.
pub(crate) const METHODS: &[&str] = &[
    "redact",
    "keep",
    "dateShift",
    "cryptoHash",
    "generalize",
    "perturb",
    "substitute",
];

impl Method {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Method::Redact => "redact",
            Method::Keep => "keep",
            Method::DateShift { .. } => "dateShift",
            Method::CryptoHash => "cryptoHash",
            Method::Generalize { .. } => "generalize",
            Method::Perturb { .. } => "perturb",
            Method::Substitute(_) => "substitute",
        }
    }

    /// Whether this method can be applied to nodes of `kind`.
    pub(crate) fn applies_to(&self, kind: Kind) -> bool {
        match self {
            Method::Redact | Method::Substitute(_) => true,
            Method::Keep => !matches!(kind, Kind::Id | Kind::Reference),
            Method::CryptoHash => {
                kind.is_text() || matches!(kind, Kind::Identifier | Kind::Reference)
            }
            Method::DateShift { .. } => kind.is_date() || kind == Kind::Period,
            Method::Generalize { .. } => {
                kind.is_date()
                    || kind.is_number()
                    || matches!(
                        kind,
                        Kind::Period | Kind::Address | Kind::Age | Kind::Quantity
                    )
            }
            Method::Perturb { .. } => {
                kind.is_number() || matches!(kind, Kind::Age | Kind::Quantity)
            }
        }
    }
}

/// One rule: it matches a node when its path (if any) matches the node's
/// element path and the node's kind is one of its kinds (if any).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// Dotted path segments from the resource type; `*` matches any one.
    pub(crate) path: Option<Vec<String>>,
    /// Empty: any kind.
    pub(crate) kinds: Vec<Kind>,
    pub(crate) method: Method,
}

impl Rule {
    pub(crate) fn matches(&self, path: &[String], kind: Option<Kind>) -> bool {
        let path_ok = self.path.as_ref().is_none_or(|p| path_matches(p, path));
        let kind_ok = self.kinds.is_empty() || kind.is_some_and(|k| self.kinds.contains(&k));
        path_ok && kind_ok
    }
}

/// Whether a pattern (`*` = any one segment) matches an element path.
pub(crate) fn path_matches(pattern: &[String], path: &[String]) -> bool {
    pattern.len() == path.len() && pattern.iter().zip(path).all(|(p, s)| p == "*" || p == s)
}

/// Parses and checks a dotted rule path.
pub(crate) fn parse_path(text: &str) -> Result<Vec<String>, String> {
    let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
    if segments.len() < 2 {
        return Err(format!(
            "path `{text}` must name an element inside a resource (`Type.element`)"
        ));
    }
    for seg in &segments {
        let ok = seg == "*"
            || (!seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if !ok {
            return Err(format!(
                "path `{text}`: segment `{seg}` is not an element name or `*`"
            ));
        }
    }
    let first = segments.first().map_or("", String::as_str);
    if first != "*" && !first.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Err(format!(
            "path `{text}` must start with a resource type or `*` (e.g. `Patient.name`)"
        ));
    }
    if segments.get(1).is_some_and(|s| s == "resourceType") {
        return Err(format!("path `{text}`: resourceType is always kept"));
    }
    Ok(segments)
}
