//! One search parameter parsed into a typed clause (R4 search.html §3.1.1.4):
//! `name[:modifier][.chain]=v1,v2` with the value grammar of its type, one
//! level of chaining (`subject:Patient.family`) and one level of
//! `_has:Type:reference:parameter`. Unknown parameters come back as
//! [`Parsed::Unknown`] for the caller to report; malformed values are a 400.

use capability::{ParamType, SearchParamDef};

use super::{find_param, text::normalize, value::*};
use crate::error::{FhirError, FhirResult};
/// One AND-ed condition on a parameter.
#[derive(Debug, Clone)]
pub struct Clause {
    /// The parameter (for chains and `_has`: the reference parameter followed).
    pub def: &'static SearchParamDef,
    /// What is tested.
    pub test: Test,
}

/// How a string value matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrMode {
    /// Case/accent-insensitive prefix (the default).
    Starts,
    /// `:exact`.
    Exact,
    /// `:contains`.
    Contains,
}

/// The test of a clause; every `Vec` is OR-ed.
#[derive(Debug, Clone)]
pub enum Test {
    /// `:missing=true|false`.
    Missing(bool),
    /// `_id`.
    Id(Vec<String>),
    /// `_lastUpdated`.
    LastUpdated(Vec<DateValue>),
    /// Token; `not` for `:not` (matches none of the values).
    Token {
        /// Values.
        values: Vec<TokenValue>,
        /// `:not`.
        not: bool,
    },
    /// Token `:text` (normalised text, prefix of display or concept text).
    Text(Vec<String>),
    /// String.
    Str {
        /// Values (normalised unless `Exact`).
        values: Vec<String>,
        /// Match mode.
        mode: StrMode,
    },
    /// Date.
    Date(Vec<DateValue>),
    /// Quantity or number.
    Number(Vec<NumberValue>),
    /// Uri; `below` for `:below` (prefix).
    Uri {
        /// Values.
        values: Vec<String>,
        /// `:below`.
        below: bool,
    },
    /// Reference.
    Reference(Vec<RefValue>),
    /// Reference `:identifier`.
    RefIdentifier(Vec<TokenValue>),
    /// Chain: the reference points at a resource of one of these types matching the inner clause.
    Chain(Vec<(&'static str, Clause)>),
    /// `_has:rtype:def:…`: some `rtype` resource whose `def` points here matches `inner`.
    Has {
        /// The referring type.
        rtype: String,
        /// Its condition.
        inner: Box<Clause>,
    },
}

/// A parameter parsed into a clause, or the reason it is unknown.
pub(crate) enum Parsed {
    /// Known and well-formed.
    Clause(Clause),
    /// Unknown or unsupported here, with the reason.
    Unknown(String),
}

pub(crate) fn bad(msg: impl Into<String>) -> FhirError {
    FhirError::processing(msg)
}

fn values(raw: &str) -> Vec<String> {
    split_escaped(raw, ',')
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect()
}

fn each<T>(raw: &str, f: impl Fn(&str) -> Result<T, String>) -> FhirResult<Vec<T>> {
    values(raw).iter().map(|v| f(v).map_err(bad)).collect()
}

pub(crate) fn parse_filter(
    rtype: &str,
    key: &str,
    raw: &str,
    base: &str,
    top: bool,
) -> FhirResult<Parsed> {
    if let Some(rest) = key.strip_prefix("_has:") {
        let mut it = rest.splitn(3, ':');
        let (Some(t), Some(p), Some(inner_key)) = (it.next(), it.next(), it.next()) else {
            return Ok(Parsed::Unknown(
                "_has needs _has:Type:reference:parameter".into(),
            ));
        };
        if !top || inner_key.starts_with("_has") {
            return Ok(Parsed::Unknown("nested _has is not supported".into()));
        }
        let Some(def) = find_param(t, p).filter(|d| {
            d.kind == ParamType::Reference && (rtype == "Resource" || d.targets.contains(&rtype))
        }) else {
            return Ok(Parsed::Unknown(format!(
                "{t} has no reference parameter '{p}' pointing at {rtype}"
            )));
        };
        return Ok(match parse_filter(t, inner_key, raw, base, false)? {
            Parsed::Clause(inner) => Parsed::Clause(Clause {
                def,
                test: Test::Has {
                    rtype: t.into(),
                    inner: Box::new(inner),
                },
            }),
            u => u,
        });
    }
    let (head, chain) = match key.split_once('.') {
        Some((h, c)) => (h, Some(c)),
        None => (key, None),
    };
    let (name, modifier) = match head.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (head, None),
    };
    let Some(def) = find_param(rtype, name) else {
        return Ok(Parsed::Unknown(format!(
            "unknown search parameter for {rtype}"
        )));
    };
    if let Some(chain) = chain {
        return parse_chain(def, modifier, chain, raw, base, top);
    }
    let unsupported = |m: &str| bad(format!("modifier ':{m}' is not supported on {name}"));
    let test = match (def.kind, modifier) {
        (_, Some("missing")) => match raw {
            "true" => Test::Missing(true),
            "false" => Test::Missing(false),
            _ => return Err(bad(format!("{key} must be true or false"))),
        },
        (_, Some(m)) if super::is_resource_column(name) => return Err(unsupported(m)),
        (_, None) if name == "_id" => Test::Id(values(raw).iter().map(|v| unescape(v)).collect()),
        (_, None) if name == "_lastUpdated" => Test::LastUpdated(each(raw, parse_date)?),
        (ParamType::Token, None) => Test::Token {
            values: each(raw, parse_token)?,
            not: false,
        },
        (ParamType::Token, Some("not")) => Test::Token {
            values: each(raw, parse_token)?,
            not: true,
        },
        (ParamType::Token, Some("text")) => Test::Text(
            values(raw)
                .iter()
                .map(|v| normalize(&unescape(v)))
                .collect(),
        ),
        (ParamType::String, m @ (None | Some("exact") | Some("contains"))) => {
            let mode = match m {
                Some("exact") => StrMode::Exact,
                Some("contains") => StrMode::Contains,
                _ => StrMode::Starts,
            };
            let vals = values(raw)
                .iter()
                .map(|v| unescape(v))
                .map(|v| {
                    if mode == StrMode::Exact {
                        v
                    } else {
                        normalize(&v)
                    }
                })
                .collect();
            Test::Str { values: vals, mode }
        }
        (ParamType::Date, None) => Test::Date(each(raw, parse_date)?),
        (ParamType::Quantity, None) => Test::Number(each(raw, parse_quantity)?),
        (ParamType::Number, None) => Test::Number(each(raw, |v| parse_number(&unescape(v)))?),
        (ParamType::Uri, m @ (None | Some("below"))) => Test::Uri {
            values: values(raw).iter().map(|v| unescape(v)).collect(),
            below: m.is_some(),
        },
        (ParamType::Reference, Some("identifier")) => Test::RefIdentifier(each(raw, parse_token)?),
        (ParamType::Reference, m) => {
            let hint = match m {
                Some(t) if def.targets.contains(&t) => Some(t),
                Some(t) => return Err(unsupported(t)),
                None if def.targets.len() == 1 => def.targets.first().copied(),
                None => None,
            };
            Test::Reference(each(raw, |v| parse_reference(&unescape(v), hint, base))?)
        }
        (_, Some(m)) => return Err(unsupported(m)),
    };
    Ok(Parsed::Clause(Clause { def, test }))
}

fn parse_chain(
    def: &'static SearchParamDef,
    modifier: Option<&str>,
    chain: &str,
    raw: &str,
    base: &str,
    top: bool,
) -> FhirResult<Parsed> {
    if def.kind != ParamType::Reference {
        return Err(bad(format!(
            "{} is not a reference parameter and cannot be chained",
            def.name
        )));
    }
    if !top || chain.contains('.') {
        return Ok(Parsed::Unknown(
            "only one level of chaining is supported".into(),
        ));
    }
    let types: Vec<&'static str> = match modifier {
        Some(t) => match def.targets.iter().find(|x| **x == t) {
            Some(x) => vec![*x],
            None => return Err(bad(format!("{} cannot point at '{t}'", def.name))),
        },
        None => def.targets.to_vec(),
    };
    let chained_name = chain.split(':').next().unwrap_or(chain);
    let mut branches = Vec::new();
    for t in types {
        if find_param(t, chained_name).is_none() {
            continue;
        }
        if let Parsed::Clause(c) = parse_filter(t, chain, raw, base, false)? {
            branches.push((t, c));
        }
    }
    if branches.is_empty() {
        return Ok(Parsed::Unknown(format!(
            "no target of {} has a parameter '{chained_name}'",
            def.name
        )));
    }
    Ok(Parsed::Clause(Clause {
        def,
        test: Test::Chain(branches),
    }))
}
