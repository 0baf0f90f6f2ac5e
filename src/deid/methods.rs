//! Applying one rule's method to one node: redact, keep, substitute,
//! cryptoHash (strings, Identifier, Reference), dateShift, generalize
//! (dates, ZIP codes, Address, ages over 89, rounding) and perturb. A
//! method meeting a node it cannot apply to removes it (fail closed).

use serde_json::{Map, Value};

use super::dates;
use super::kinds::Kind;
use super::rules::Method;
use super::walk::{descend, Ctx, Fate, Here};

/// The 3-digit ZIP prefixes of 20,000 people or fewer (Safe Harbor,
/// 2000 Census): generalized to `000`.
const RESTRICTED_ZIP3: &[&str] = &[
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878",
    "879", "884", "890", "893",
];

/// Address members a generalization keeps (postalCode and period are
/// generalized).
const ADDRESS_KEPT: &[&str] = &["state", "country", "use", "type", "postalCode", "period"];

const AGE_UNITS: &[&str] = &["a", "yr", "yrs", "year", "years", "y"];

/// Whether an inherited method (from a complex node a rule matched) takes
/// this descendant: date leaves for dateShift/generalize, number leaves for
/// perturb (and generalize with round_to), postal codes for generalize.
pub(crate) fn inherited_applies(
    method: &Method,
    key: &str,
    value: &Value,
    kind: Option<Kind>,
) -> bool {
    let is_date = kind.is_some_and(Kind::is_date);
    let is_number = value.is_number();
    match method {
        Method::DateShift { .. } => is_date,
        Method::Perturb { .. } => is_number,
        Method::Generalize { round_to } => {
            is_date
                || (value.is_string() && key == "postalCode")
                || (is_number && round_to.is_some())
        }
        _ => false,
    }
}

/// Applies `method` to the node `value` (found under `key`).
pub(crate) fn apply_method(
    ctx: &Ctx<'_>,
    method: &Method,
    key: &str,
    value: &mut Value,
    kind: Option<Kind>,
    here: &mut Here<'_>,
) -> Fate {
    match method {
        Method::Redact => Fate::Remove,
        Method::Keep => Fate::Keep,
        Method::Substitute(v) => {
            *value = v.clone();
            Fate::Keep
        }
        Method::CryptoHash => crypto_hash(ctx, value),
        Method::DateShift { .. } => match value {
            Value::String(s) => {
                if key == "birthDate" && over_89(ctx, s) {
                    return Fate::Remove;
                }
                replace_or_remove(value_string(dates::shift(s, ctx.shift)), value)
            }
            Value::Object(_) => descend(ctx, value, kind, Some(method), here),
            _ => Fate::Remove,
        },
        Method::Generalize { round_to } => {
            generalize(ctx, method, *round_to, key, value, kind, here)
        }
        Method::Perturb {
            span,
            absolute,
            round_to,
        } => match value {
            Value::Number(n) => {
                let noise = ctx.keyed.noise(&ctx.resource, here.loc);
                let text = n.to_string();
                let Ok(v) = text.parse::<f64>() else {
                    return Fate::Remove;
                };
                let delta = noise * span * if *absolute { 1.0 } else { v.abs() };
                replace_or_remove(number_like(&text, v + delta, *round_to), value)
            }
            Value::Object(_) => descend(ctx, value, kind, Some(method), here),
            _ => Fate::Remove,
        },
    }
}

fn replace_or_remove(new: Option<Value>, value: &mut Value) -> Fate {
    match new {
        Some(v) => {
            *value = v;
            Fate::Keep
        }
        None => Fate::Remove,
    }
}

fn value_string(s: Option<String>) -> Option<Value> {
    s.map(Value::String)
}

fn over_89(ctx: &Ctx<'_>, birth: &str) -> bool {
    dates::is_90_or_over(birth, ctx.today).unwrap_or(true)
}

/// A number shaped like `original`: an integer stays an integer, a
/// decimal keeps its decimals unless `round_to` says otherwise.
pub(crate) fn number_like(original: &str, v: f64, round_to: Option<u32>) -> Option<Value> {
    if !v.is_finite() {
        return None;
    }
    let integer = !original.contains(['.', 'e', 'E']);
    let decimals = match round_to {
        _ if integer => 0,
        Some(d) => d as usize,
        None => original
            .split_once('.')
            .map_or(0, |(_, f)| f.bytes().take_while(u8::is_ascii_digit).count()),
    };
    let text = format!("{v:.decimals$}");
    let text = if text == "-0" { "0".to_owned() } else { text };
    serde_json::from_str::<Value>(&text)
        .ok()
        .filter(Value::is_number)
}

fn crypto_hash(ctx: &Ctx<'_>, value: &mut Value) -> Fate {
    match value {
        Value::String(s) => {
            *s = ctx.keyed.pseudonym(s);
            Fate::Keep
        }
        Value::Object(obj) if obj.contains_key("reference") => {
            let mut out = Map::new();
            copy(obj, &mut out, &["reference", "type"]);
            if let Some(Value::Object(ident)) = obj.get("identifier") {
                if let Some(h) = hash_identifier(ctx, ident) {
                    out.insert("identifier".into(), Value::Object(h));
                }
            }
            *obj = out;
            Fate::Keep
        }
        Value::Object(obj) => match hash_identifier(ctx, obj) {
            Some(h) => {
                *obj = h;
                Fate::Keep
            }
            None => Fate::Remove,
        },
        _ => Fate::Remove,
    }
}

/// An Identifier with its value hashed: system/type/use kept, assigner
/// reduced to its reference (pseudonymized later), the rest dropped.
fn hash_identifier(ctx: &Ctx<'_>, ident: &Map<String, Value>) -> Option<Map<String, Value>> {
    let value = ident.get("value")?.as_str()?;
    let mut out = Map::new();
    copy(ident, &mut out, &["use", "type", "system"]);
    out.insert("value".into(), Value::String(ctx.keyed.pseudonym(value)));
    if let Some(Value::Object(assigner)) = ident.get("assigner") {
        let mut a = Map::new();
        copy(assigner, &mut a, &["reference", "type"]);
        if !a.is_empty() {
            out.insert("assigner".into(), Value::Object(a));
        }
    }
    Some(out)
}

fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k) {
            to.insert((*k).to_owned(), v.clone());
        }
    }
}

fn generalize(
    ctx: &Ctx<'_>,
    method: &Method,
    round_to: Option<u32>,
    key: &str,
    value: &mut Value,
    kind: Option<Kind>,
    here: &mut Here<'_>,
) -> Fate {
    match value {
        Value::String(s) => {
            if key == "postalCode" {
                return replace_or_remove(value_string(zip3(s)), value);
            }
            if kind == Some(Kind::Instant) || dates::shape(s).is_none() {
                return Fate::Remove;
            }
            if key == "birthDate" && over_89(ctx, s) {
                return Fate::Remove;
            }
            replace_or_remove(value_string(dates::year(s)), value)
        }
        Value::Number(n) => match round_to {
            Some(_) => {
                let text = n.to_string();
                let v = text.parse::<f64>().ok();
                replace_or_remove(v.and_then(|v| number_like(&text, v, round_to)), value)
            }
            None => Fate::Keep,
        },
        Value::Object(obj) => {
            if kind == Some(Kind::Address) {
                return generalize_address(obj);
            }
            if let Some(fate) = cap_age(obj) {
                return fate;
            }
            descend(ctx, value, kind, Some(method), here)
        }
        _ => Fate::Remove,
    }
}

/// An Address reduced to state, country, use, type, the 3-digit ZIP and
/// the years of its period.
fn generalize_address(obj: &mut Map<String, Value>) -> Fate {
    obj.retain(|k, _| ADDRESS_KEPT.contains(&k.as_str()));
    if let Some(code) = obj.get("postalCode").and_then(Value::as_str) {
        match zip3(code) {
            Some(z) => {
                obj.insert("postalCode".into(), Value::String(z));
            }
            None => {
                obj.shift_remove("postalCode");
            }
        }
    }
    if let Some(Value::Object(period)) = obj.get_mut("period") {
        period.retain(|k, _| k == "start" || k == "end");
        for v in period.values_mut() {
            *v = v
                .as_str()
                .and_then(dates::year)
                .map_or(Value::Null, Value::String);
        }
        period.retain(|_, v| v.is_string());
        if period.is_empty() {
            obj.shift_remove("period");
        }
    }
    obj.retain(|k, v| (k == "period" && v.is_object()) || v.is_string());
    if obj.is_empty() {
        Fate::Remove
    } else {
        Fate::Keep
    }
}

/// An age (a quantity in years) over 89 becomes `>= 90`; `Some` when the
/// object was an age over 89.
fn cap_age(obj: &mut Map<String, Value>) -> Option<Fate> {
    let years = ["unit", "code"].iter().any(|k| {
        obj.get(*k)
            .and_then(Value::as_str)
            .is_some_and(|u| AGE_UNITS.contains(&u.to_ascii_lowercase().as_str()))
    });
    let value = obj.get("value")?.as_f64()?;
    if !years || value <= 89.0 {
        return None;
    }
    obj.insert("value".into(), Value::from(90));
    obj.insert("comparator".into(), Value::String(">=".into()));
    Some(Fate::Keep)
}

/// The 3-digit ZIP of a US postal code, `000` for the restricted ones;
/// `None` (removed) when it does not start with 3 digits.
pub(crate) fn zip3(code: &str) -> Option<String> {
    let prefix = code.trim().get(..3)?;
    if !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(if RESTRICTED_ZIP3.contains(&prefix) {
        "000".to_owned()
    } else {
        prefix.to_owned()
    })
}
