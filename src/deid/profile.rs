//! De-identification profiles: the TOML file format, its validation, and the
//! built-in profiles (`safe-harbor`, `safe-harbor-shifted`, compiled in).
//!
//! # File format
//! ```toml
//! name = "my-profile"
//! description = "what it is for"
//!
//! [[rule]]
//! type = "HumanName"                 # or a list: type = ["date", "dateTime"]
//! method = "redact"
//!
//! [[rule]]
//! path = "Patient.address.postalCode"
//! method = "generalize"
//! ```
//! Rules are tried in order for every node of a resource; the first rule
//! that matches a node decides it, and a node a rule handled is not
//! descended into, except that `dateShift`, `generalize` and `perturb` on a
//! complex node (a Period, Quantity, any object a path names) apply to the
//! date (resp. number) leaves inside it while its other members go through
//! the rules as usual. A node no rule matches is kept (objects and arrays
//! are descended into).
//!
//! A rule selects by `path`, by `type`, or both (then both must match):
//! - `path`: the dotted element path from the resource type, `*` matching
//!   any one segment (also the type: `*.meta.lastUpdated`). Arrays are
//!   transparent (`Patient.name.given` is every given name); choice
//!   elements by their JSON name (`Observation.valueString`); contained
//!   resources start at their own type.
//! - `type`: node kinds, inferred from the JSON (see `kinds.rs`):
//!   `HumanName`, `Address`, `ContactPoint`, `Identifier`, `Attachment`,
//!   `Narrative`, `Annotation`, `Reference`, `Extension`, `Period`, `Age`,
//!   `Quantity`, `id`, `date`, `dateTime`, `instant`, `code`, `uri`,
//!   `url`, `string`, `decimal`, `integer`, `boolean`.
//!
//! Methods and their options:
//! - `redact`: remove the node (an object or array left empty goes too).
//! - `keep`: keep it as is, rules stop there (not on `id`/`Reference`:
//!   resource ids and references are always pseudonymized).
//! - `dateShift`, `range_days = N` (1..=3650): shift dates by the subject's
//!   keyed offset, ±1..=N days (never 0). Every dateShift rule of a profile
//!   uses the same range, so one patient has one offset.
//! - `cryptoHash`: keyed HMAC-SHA256 pseudonym of a string (an Identifier's
//!   value; a Reference loses its display).
//! - `generalize`, optional `round_to = D`: dates to the year, instants
//!   removed, a `postalCode` to its 3-digit ZIP (`000` for the restricted
//!   ones), an Address to state/country/use/type/ZIP-3/period years, an
//!   age over 89 to 90 (`>=`), numbers rounded to `round_to` decimals.
//! - `perturb`, `span = S`, optional `absolute = true`, `round_to = D`:
//!   keyed deterministic noise within ±S (a fraction of the value unless
//!   absolute); integers stay integers, decimals keep their decimals
//!   unless `round_to`.
//! - `substitute`, `value = <any TOML value>`: replace the node.
//!
//! Not subject to rules: `resourceType`; resource ids and every
//! `Reference.reference` (always pseudonymized); `meta` (reduced to
//! profile/security/tag; `lastUpdated` kept only as a path rule naming it
//! says, e.g. `path = "*.meta.lastUpdated"`, `method = "keep"`); contained
//! resources and Bundle entry resources (walked as resources).
//!
//! Any `birthDate` a rule generalizes or date-shifts is removed when the
//! person is 90 or older at the export date (Safe Harbor: ages over 89).
//! A method a path rule meets on a node it cannot apply to (a `dateShift`
//! on text) removes the node: fail closed. Unknown keys, methods, kinds,
//! options of another method, and methods a named kind cannot take are
//! errors naming the rule.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::kinds::Kind;
use super::rules::{parse_path, Method, Rule, METHODS};

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read de-identification profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("de-identification profile {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("de-identification profile {origin}, rule {rule}: {message}")]
    Rule {
        origin: String,
        /// 1-based position of the `[[rule]]`.
        rule: usize,
        message: String,
    },
}

/// A validated de-identification profile.
#[derive(Debug, Clone)]
pub struct Profile {
    name: String,
    description: String,
    rules: Vec<Rule>,
    shift_range: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path: Option<String>,
    #[serde(rename = "type")]
    kinds: Option<OneOrMany>,
    method: String,
    range_days: Option<i64>,
    span: Option<f64>,
    absolute: Option<bool>,
    round_to: Option<u32>,
    value: Option<toml::Value>,
}

const SAFE_HARBOR: &str = include_str!("safe-harbor.toml");
const SAFE_HARBOR_SHIFTED: &str = include_str!("safe-harbor-shifted.toml");
const MAX_RANGE_DAYS: i64 = 3650;
const MAX_ROUND_TO: u32 = 12;

impl Profile {
    /// The built-in profile names.
    pub const BUILTIN: &'static [&'static str] = &["safe-harbor", "safe-harbor-shifted"];

    /// Parses and validates a profile.
    pub fn parse_toml(text: &str) -> Result<Profile, ProfileError> {
        Self::parse_named(text, "(inline)")
    }

    /// Reads and validates a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_named(&text, &path.display().to_string())
    }

    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<Profile> {
        let text = match name {
            "safe-harbor" => SAFE_HARBOR,
            "safe-harbor-shifted" => SAFE_HARBOR_SHIFTED,
            _ => return None,
        };
        Self::parse_named(text, &format!("built-in {name}")).ok()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the profile uses `cryptoHash` or `dateShift` anywhere:
    /// pseudonyms a stable key makes linkable across exports.
    pub fn keyed(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.method, Method::CryptoHash | Method::DateShift { .. }))
    }

    pub(crate) fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The date-shift range of the profile's dateShift rules, if any.
    pub(crate) fn shift_range(&self) -> Option<i64> {
        self.shift_range
    }

    fn parse_named(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let invalid = |message: String| ProfileError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let raw: RawProfile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if raw.name.trim().is_empty() {
            return Err(invalid("`name` must not be empty".into()));
        }
        let mut rules = Vec::with_capacity(raw.rules.len());
        let mut shift_range = None;
        for (i, raw_rule) in raw.rules.into_iter().enumerate() {
            let rule_err = |message: String| ProfileError::Rule {
                origin: origin.to_owned(),
                rule: i + 1,
                message,
            };
            let rule = build_rule(raw_rule).map_err(rule_err)?;
            if let Method::DateShift { range_days } = rule.method {
                match shift_range {
                    Some(r) if r != range_days => {
                        return Err(rule_err(format!(
                            "range_days = {range_days} differs from an earlier dateShift rule's \
                             {r}: one profile shifts a patient's dates by one offset"
                        )))
                    }
                    _ => shift_range = Some(range_days),
                }
            }
            rules.push(rule);
        }
        Ok(Profile {
            name: raw.name,
            description: raw.description,
            rules,
            shift_range,
        })
    }
}

fn build_rule(raw: RawRule) -> Result<Rule, String> {
    let method = build_method(&raw)?;
    let path = raw.path.as_deref().map(parse_path).transpose()?;
    let names = match raw.kinds {
        None => Vec::new(),
        Some(OneOrMany::One(n)) => vec![n],
        Some(OneOrMany::Many(ns)) => ns,
    };
    if path.is_none() && names.is_empty() {
        return Err("a rule needs a `path` or a `type`".into());
    }
    let mut kinds = Vec::with_capacity(names.len());
    for n in &names {
        let kind = Kind::from_name(n).ok_or_else(|| {
            let all: Vec<&str> = super::kinds::KINDS.iter().map(|(n, _)| *n).collect();
            format!("unknown type `{n}` (known: {})", all.join(", "))
        })?;
        if !method.applies_to(kind) {
            return Err(format!(
                "method `{}` cannot be applied to type `{}`",
                method.name(),
                kind.name()
            ));
        }
        kinds.push(kind);
    }
    if method == Method::Keep {
        let last = path.as_ref().and_then(|p| p.last()).map(String::as_str);
        if matches!(last, Some("id" | "reference")) {
            return Err(
                "`keep` is not allowed on ids and references: they are always pseudonymized".into(),
            );
        }
    }
    Ok(Rule {
        path,
        kinds,
        method,
    })
}

fn build_method(raw: &RawRule) -> Result<Method, String> {
    let name = raw.method.as_str();
    if !METHODS.contains(&name) {
        return Err(format!(
            "unknown method `{name}` (expected one of {})",
            METHODS.join(", ")
        ));
    }
    let allowed: &[&str] = match name {
        "dateShift" => &["range_days"],
        "generalize" => &["round_to"],
        "perturb" => &["span", "absolute", "round_to"],
        "substitute" => &["value"],
        _ => &[],
    };
    let given = [
        ("range_days", raw.range_days.is_some()),
        ("span", raw.span.is_some()),
        ("absolute", raw.absolute.is_some()),
        ("round_to", raw.round_to.is_some()),
        ("value", raw.value.is_some()),
    ];
    if let Some((opt, _)) = given.iter().find(|(o, set)| *set && !allowed.contains(o)) {
        return Err(format!("`{opt}` is not an option of method `{name}`"));
    }
    if let Some(d) = raw.round_to.filter(|d| *d > MAX_ROUND_TO) {
        return Err(format!("round_to = {d}: at most {MAX_ROUND_TO} decimals"));
    }
    Ok(match name {
        "redact" => Method::Redact,
        "keep" => Method::Keep,
        "cryptoHash" => Method::CryptoHash,
        "dateShift" => {
            let range_days = raw
                .range_days
                .ok_or("method `dateShift` needs `range_days` (e.g. 365)")?;
            if !(1..=MAX_RANGE_DAYS).contains(&range_days) {
                return Err(format!(
                    "range_days = {range_days}: must be between 1 and {MAX_RANGE_DAYS}"
                ));
            }
            Method::DateShift { range_days }
        }
        "generalize" => Method::Generalize {
            round_to: raw.round_to,
        },
        "perturb" => {
            let span = raw
                .span
                .ok_or("method `perturb` needs `span` (e.g. 0.05)")?;
            let absolute = raw.absolute.unwrap_or(false);
            if !(span.is_finite() && span > 0.0) || (!absolute && span > 1.0) {
                return Err(format!(
                    "span = {span}: must be positive (and at most 1 unless `absolute = true`)"
                ));
            }
            Method::Perturb {
                span,
                absolute,
                round_to: raw.round_to,
            }
        }
        _ => {
            let value = raw
                .value
                .as_ref()
                .ok_or("method `substitute` needs a `value`")?;
            Method::Substitute(toml_to_json(value))
        }
    })
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
