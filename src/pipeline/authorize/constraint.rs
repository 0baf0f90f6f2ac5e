//! Granular scope constraints (SMART App Launch 2.2 §"Finer-grained resource
//! constraints using search parameters") judged on a resource in memory, with
//! the same parameter table and value grammar the search uses (`crate::search`).
//! Supported tests: token (incl. `:not`, `:text`), string, uri, reference,
//! `_id` and `:missing`; any other constraint (date, quantity, chains, result
//! controls such as `_count`, or parameters the table lacks) matches nothing,
//! so an unsupported constraint fails closed.

use serde_json::Value;

use crate::search::{
    extract::{extract, Rows, TokenRow},
    query::{self, Clause, StrMode, Test},
    value::{RefValue, TokenValue},
};

/// The constraint pairs as search clauses, if every pair is one clause the
/// search engine understands (else `None`: not expressible, never widened).
pub(crate) fn clauses(rtype: &str, constraints: &[(String, String)]) -> Option<Vec<Clause>> {
    let q = query::parse(rtype, constraints, "").ok()?;
    (q.ignored.is_empty() && q.clauses.len() == constraints.len()).then_some(q.clauses)
}

/// Whether `body` (of type `rtype`) matches every constraint.
pub(crate) fn matches(rtype: &str, body: &Value, constraints: &[(String, String)]) -> bool {
    if constraints.is_empty() {
        return true;
    }
    let Some(cls) = clauses(rtype, constraints) else {
        return false;
    };
    let rows = extract(rtype, body);
    cls.iter().all(|c| eval(c, &rows, body))
}

fn token_matches(v: &TokenValue, t: &TokenRow) -> bool {
    let system_ok = match &v.system {
        None => true,
        Some(None) => t.system.is_none(),
        Some(Some(s)) => t.system.as_deref() == Some(s.as_str()),
    };
    let code_ok = match &v.code {
        None => true,
        Some(c) => t.code.as_deref() == Some(c.as_str()),
    };
    system_ok && code_ok
}

fn eval(c: &Clause, rows: &Rows, body: &Value) -> bool {
    let name = c.def.name;
    match &c.test {
        Test::Id(ids) => body["id"]
            .as_str()
            .is_some_and(|id| ids.iter().any(|x| x == id)),
        Test::Missing(missing) => {
            let present = rows.tokens.iter().any(|r| r.param == name)
                || rows.strings.iter().any(|r| r.param == name)
                || rows.refs.iter().any(|r| r.param == name)
                || rows.uris.iter().any(|r| r.param == name)
                || rows.dates.iter().any(|r| r.param == name)
                || rows.quantities.iter().any(|r| r.param == name);
            *missing != present
        }
        Test::Token { values, not } => {
            let hit = rows
                .tokens
                .iter()
                .filter(|t| t.param == name)
                .any(|t| values.iter().any(|v| token_matches(v, t)));
            hit != *not
        }
        Test::Text(values) => rows
            .tokens
            .iter()
            .filter(|t| t.param == name)
            .filter_map(|t| t.display.as_deref())
            .any(|d| values.iter().any(|v| d.starts_with(v.as_str()))),
        Test::Str { values, mode } => rows.strings.iter().filter(|s| s.param == name).any(|s| {
            values.iter().any(|v| match mode {
                StrMode::Starts => s.norm.starts_with(v.as_str()),
                StrMode::Exact => s.exact == *v,
                StrMode::Contains => s.norm.contains(v.as_str()),
            })
        }),
        Test::Uri { values, below } => rows.uris.iter().filter(|u| u.param == name).any(|u| {
            values.iter().any(|v| {
                if *below {
                    u.value.starts_with(v.as_str())
                } else {
                    u.value == *v
                }
            })
        }),
        Test::Reference(values) => rows.refs.iter().filter(|r| r.param == name).any(|r| {
            values.iter().any(|v| match v {
                RefValue::Local { rtype, id } => {
                    r.target_id.as_deref() == Some(id.as_str())
                        && rtype
                            .as_deref()
                            .is_none_or(|t| r.target_type.as_deref() == Some(t))
                }
                RefValue::Url(u) => r.url.as_deref() == Some(u.as_str()),
            })
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CAT: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

    fn c(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn token_constraints_match_system_and_code() {
        let lab = json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "category": [{"coding": [{"system": CAT, "code": "laboratory"}]}],
            "subject": {"reference": "Patient/1"}});
        let lab_c = format!("{CAT}|laboratory");
        assert!(matches("Observation", &lab, &c(&[("category", &lab_c)])));
        assert!(matches(
            "Observation",
            &lab,
            &c(&[("category", "laboratory")])
        ));
        assert!(!matches(
            "Observation",
            &lab,
            &c(&[("category", "vital-signs")])
        ));
        assert!(!matches(
            "Observation",
            &lab,
            &c(&[("category", "http://other|laboratory")])
        ));
        assert!(matches(
            "Observation",
            &lab,
            &c(&[("category", &lab_c), ("status", "final")])
        ));
        assert!(!matches(
            "Observation",
            &lab,
            &c(&[("category", &lab_c), ("status", "amended")])
        ));
        assert!(matches(
            "Observation",
            &lab,
            &c(&[("category", "vital-signs,laboratory")])
        ));
        assert!(matches("Observation", &lab, &c(&[("patient", "1")])));
        assert!(!matches("Observation", &lab, &c(&[("patient", "12")])));
        // unsupported or unknown constraints fail closed
        assert!(!matches("Observation", &lab, &c(&[("date", "ge2000")])));
        assert!(!matches("Observation", &lab, &c(&[("nope", "x")])));
        assert!(!matches("Observation", &lab, &c(&[("_count", "1")])));
        assert!(clauses("Observation", &c(&[("_count", "1")])).is_none());
        assert!(clauses("Observation", &c(&[("category", "x")])).is_some());
    }
}
