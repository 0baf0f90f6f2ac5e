//! What the indexer stores for one resource: walks each parameter's paths in
//! the JSON body and turns the values found into typed index rows (token,
//! string, date, reference, quantity, uri), deduplicated. Pure: the store's
//! `index` module writes the rows inside the write transaction.

use capability::{ParamType, SearchParamDef};
use serde_json::Value;

use super::{date::parse_range, date::MAX_MS, date::MIN_MS, indexed_params, text::normalize};
use crate::fhir::Reference;

/// A token row: Coding, CodeableConcept, Identifier, ContactPoint, code, boolean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Parameter name.
    pub param: &'static str,
    /// Code system (Identifier.system); None when absent.
    pub system: Option<String>,
    /// Code (Identifier.value, ContactPoint.value); None for a text-only concept.
    pub code: Option<String>,
    /// Normalised display / text, for `:text`.
    pub display: Option<String>,
}

/// A string row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringRow {
    /// Parameter name.
    pub param: &'static str,
    /// Lower-cased, accent-folded.
    pub norm: String,
    /// As written.
    pub exact: String,
}

/// A date row: the value's inclusive range in epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRow {
    /// Parameter name.
    pub param: &'static str,
    /// First millisecond.
    pub low: i64,
    /// Last millisecond.
    pub high: i64,
}

/// A reference row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefRow {
    /// Parameter name.
    pub param: &'static str,
    /// Target type for local `Type/id` references.
    pub target_type: Option<String>,
    /// Target id for local references.
    pub target_id: Option<String>,
    /// The reference as written when it is not local (absolute URL, canonical, urn).
    pub url: Option<String>,
    /// `Reference.identifier.system` (for `:identifier`).
    pub ident_system: Option<String>,
    /// `Reference.identifier.value` (for `:identifier`).
    pub ident_value: Option<String>,
}

/// A quantity (or number) row.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityRow {
    /// Parameter name.
    pub param: &'static str,
    /// The value.
    pub value: f64,
    /// Unit system.
    pub system: Option<String>,
    /// Coded unit.
    pub code: Option<String>,
    /// Human unit.
    pub unit: Option<String>,
}

/// A uri row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriRow {
    /// Parameter name.
    pub param: &'static str,
    /// The uri as written.
    pub value: String,
}

/// Every index row of one resource.
#[derive(Debug, Default)]
pub struct Rows {
    /// Token rows.
    pub tokens: Vec<TokenRow>,
    /// String rows.
    pub strings: Vec<StringRow>,
    /// Date rows.
    pub dates: Vec<DateRow>,
    /// Reference rows.
    pub refs: Vec<RefRow>,
    /// Quantity and number rows.
    pub quantities: Vec<QuantityRow>,
    /// Uri rows.
    pub uris: Vec<UriRow>,
}

/// Extracts the index rows of a resource of type `rtype`.
pub fn extract(rtype: &str, body: &Value) -> Rows {
    let mut rows = Rows::default();
    for def in indexed_params(rtype) {
        for path in def.paths {
            for v in walk(body, path) {
                add(&mut rows, def, v);
            }
        }
    }
    dedup(&mut rows.tokens);
    dedup(&mut rows.strings);
    dedup(&mut rows.dates);
    dedup(&mut rows.refs);
    dedup(&mut rows.uris);
    rows
}

fn dedup<T: PartialEq>(v: &mut Vec<T>) {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v.drain(..) {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    *v = out;
}

/// Every value at `path`, arrays flattened at each step.
pub fn walk<'a>(body: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![body];
    for seg in path.split('.') {
        let (name, filter) = match seg.split_once('[') {
            Some((n, f)) => (n, f.strip_suffix(']').and_then(|f| f.split_once('='))),
            None => (seg, None),
        };
        let mut next = Vec::new();
        for v in cur {
            let Some(child) = v.get(name) else { continue };
            let items: Vec<&Value> = match child {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                if let Some((k, want)) = filter {
                    if item.get(k).and_then(Value::as_str) != Some(want) {
                        continue;
                    }
                }
                next.push(item);
            }
        }
        cur = next;
    }
    cur
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

const CONTACT_SYSTEMS: &[&str] = &["phone", "fax", "email", "pager", "url", "sms", "other"];
const STRING_PARTS: &[&str] = &[
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

fn add(rows: &mut Rows, def: &SearchParamDef, v: &Value) {
    let param = def.name;
    match def.kind {
        ParamType::Token => add_token(rows, param, v),
        ParamType::String => {
            let mut push = |x: &str| {
                if !x.is_empty() {
                    rows.strings.push(StringRow {
                        param,
                        norm: normalize(x),
                        exact: x.to_owned(),
                    });
                }
            };
            match v {
                Value::String(x) => push(x),
                Value::Object(_) => {
                    for k in STRING_PARTS {
                        match v.get(k) {
                            Some(Value::String(x)) => push(x),
                            Some(Value::Array(a)) => {
                                a.iter().filter_map(Value::as_str).for_each(&mut push)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        ParamType::Date => {
            let range = match v {
                Value::String(x) => parse_range(x).map(|r| (r.low, r.high)),
                Value::Object(_) => {
                    let low = v
                        .get("start")
                        .and_then(Value::as_str)
                        .and_then(parse_range)
                        .map(|r| r.low);
                    let high = v
                        .get("end")
                        .and_then(Value::as_str)
                        .and_then(parse_range)
                        .map(|r| r.high);
                    (low.is_some() || high.is_some())
                        .then(|| (low.unwrap_or(MIN_MS), high.unwrap_or(MAX_MS)))
                }
                _ => None,
            };
            if let Some((low, high)) = range {
                rows.dates.push(DateRow { param, low, high });
            }
        }
        ParamType::Reference => add_reference(rows, def, v),
        ParamType::Quantity | ParamType::Number => {
            let (value, q) = match v {
                Value::Number(n) => (n.as_f64(), None),
                Value::Object(_) => (v.get("value").and_then(Value::as_f64), Some(v)),
                _ => (None, None),
            };
            if let Some(value) = value {
                rows.quantities.push(QuantityRow {
                    param,
                    value,
                    system: q.and_then(|q| s(q, "system")),
                    code: q.and_then(|q| s(q, "code").or_else(|| s(q, "currency"))),
                    unit: q.and_then(|q| s(q, "unit")),
                });
            }
        }
        ParamType::Uri => {
            if let Some(x) = v.as_str() {
                rows.uris.push(UriRow {
                    param,
                    value: x.to_owned(),
                });
            }
        }
    }
}

fn add_token(rows: &mut Rows, param: &'static str, v: &Value) {
    let mut push = |system: Option<String>, code: Option<String>, display: Option<String>| {
        rows.tokens.push(TokenRow {
            param,
            system,
            code,
            display: display.map(|d| normalize(&d)),
        });
    };
    match v {
        Value::String(x) => push(None, Some(x.clone()), None),
        Value::Bool(b) => push(None, Some(b.to_string()), None),
        Value::Number(n) => push(None, Some(n.to_string()), None),
        Value::Object(o) => {
            if let Some(codings) = o.get("coding").and_then(Value::as_array) {
                for c in codings {
                    push(s(c, "system"), s(c, "code"), s(c, "display"));
                }
            }
            if o.contains_key("coding") || o.contains_key("text") {
                if let Some(t) = s(v, "text") {
                    push(None, None, Some(t));
                }
            } else if o.contains_key("code") {
                push(s(v, "system"), s(v, "code"), s(v, "display"));
            } else if let Some(value) = s(v, "value") {
                let sys = s(v, "system");
                if sys.as_deref().is_some_and(|x| CONTACT_SYSTEMS.contains(&x)) {
                    push(None, Some(value), None);
                } else {
                    let label = v.get("type").and_then(|t| s(t, "text"));
                    push(sys, Some(value), label);
                }
            }
        }
        _ => {}
    }
}

fn add_reference(rows: &mut Rows, def: &SearchParamDef, v: &Value) {
    let mut row = RefRow {
        param: def.name,
        ..RefRow::default()
    };
    let text = match v {
        Value::String(x) => Some(x.as_str()),
        Value::Object(_) => v.get("reference").and_then(Value::as_str),
        _ => None,
    };
    if let Some(ident) = v.get("identifier") {
        row.ident_system = s(ident, "system");
        row.ident_value = s(ident, "value");
    }
    let mut kind = v.get("type").and_then(Value::as_str).map(str::to_owned);
    match text {
        Some(t) if t.starts_with('#') => return,
        Some(t) => match Reference::parse(t, None) {
            Some(r) => {
                kind = Some(r.resource_type.clone());
                row.target_type = Some(r.resource_type);
                row.target_id = Some(r.id);
            }
            None => {
                if t.contains("://") {
                    let mut segs = t.split('|').next().unwrap_or(t).rsplit('/');
                    let _id = segs.next();
                    if let Some(seg) = segs.next().filter(|x| crate::fhir::is_resource_type(x)) {
                        kind.get_or_insert_with(|| seg.to_owned());
                    }
                }
                row.url = Some(t.to_owned());
            }
        },
        None if row.ident_value.is_some() => {}
        None => return,
    }
    if let Some(k) = &kind {
        if !def.targets.contains(&k.as_str()) {
            return;
        }
    }
    rows.refs.push(row);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_arrays_and_filters() {
        let p = json!({"telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}]});
        let got: Vec<&Value> = walk(&p, "telecom[system=email]");
        assert_eq!(got.len(), 1);
        assert_eq!(walk(&p, "telecom").len(), 2);
        assert!(walk(&p, "name.family").is_empty());
    }

    #[test]
    fn patient_rows() {
        let p = json!({
            "resourceType": "Patient", "id": "1",
            "meta": {"tag": [{"system": "s", "code": "t"}], "profile": ["http://p"]},
            "identifier": [{"system": "http://mrn", "value": "M1"}],
            "name": [{"family": "Núñez", "given": ["Ann", "B"]}],
            "gender": "female", "birthDate": "1980-05-01", "active": true,
            "telecom": [{"system": "email", "value": "a@b.c"}],
            "managingOrganization": {"reference": "Organization/o1"},
            "generalPractitioner": [{"reference": "http://elsewhere/fhir/Practitioner/9"}, {"reference": "#c1"}]
        });
        let r = extract("Patient", &p);
        assert!(r.tokens.iter().any(|t| t.param == "identifier"
            && t.system.as_deref() == Some("http://mrn")
            && t.code.as_deref() == Some("M1")));
        assert!(r.tokens.iter().any(|t| t.param == "email"
            && t.system.is_none()
            && t.code.as_deref() == Some("a@b.c")));
        assert!(r
            .tokens
            .iter()
            .any(|t| t.param == "active" && t.code.as_deref() == Some("true")));
        assert!(r
            .tokens
            .iter()
            .any(|t| t.param == "_tag" && t.code.as_deref() == Some("t")));
        assert!(r
            .strings
            .iter()
            .any(|s| s.param == "family" && s.norm == "nunez" && s.exact == "Núñez"));
        assert_eq!(r.strings.iter().filter(|s| s.param == "name").count(), 3);
        assert!(r.dates.iter().any(|d| d.param == "birthdate"));
        assert!(r
            .uris
            .iter()
            .any(|u| u.param == "_profile" && u.value == "http://p"));
        let org = r.refs.iter().find(|x| x.param == "organization").unwrap();
        assert_eq!(
            (org.target_type.as_deref(), org.target_id.as_deref()),
            (Some("Organization"), Some("o1"))
        );
        let gp: Vec<_> = r
            .refs
            .iter()
            .filter(|x| x.param == "general-practitioner")
            .collect();
        assert_eq!(gp.len(), 1);
        assert_eq!(
            gp[0].url.as_deref(),
            Some("http://elsewhere/fhir/Practitioner/9")
        );
    }

    #[test]
    fn observation_rows_respect_reference_targets() {
        let o = json!({
            "resourceType": "Observation",
            "subject": {"reference": "Group/g"},
            "category": [{"coding": [{"system": "http://cat", "code": "laboratory", "display": "Laboratory"}], "text": "Lab"}],
            "effectivePeriod": {"start": "2020-01-01"},
            "valueQuantity": {"value": 5.5, "system": "http://unitsofmeasure.org", "code": "mg", "unit": "mg"}
        });
        let r = extract("Observation", &o);
        assert!(r.refs.iter().all(|x| x.param != "patient"));
        assert!(r.refs.iter().any(|x| x.param == "subject"));
        assert!(r
            .tokens
            .iter()
            .any(|t| t.param == "category" && t.display.as_deref() == Some("lab")));
        let d = r.dates.iter().find(|d| d.param == "date").unwrap();
        assert_eq!(d.high, MAX_MS);
        assert_eq!(r.quantities.len(), 1);
    }
}
