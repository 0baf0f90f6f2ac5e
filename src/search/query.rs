//! A search request parsed into typed clauses and result controls (R4
//! search.html): each `name[:modifier][.chain]=v1,v2` becomes one `Clause`
//! (values OR-ed, clauses AND-ed); `_has:Type:ref:param` one level; and
//! `_sort`, `_count`, `_offset`, `_total`, `_summary`, `_elements`,
//! `_include`, `_revinclude`, `_type` become fields. Unknown parameters are
//! collected for the caller to report (or reject under `handling=strict`);
//! malformed values are a 400 `processing` error.

use capability::{ParamType, SearchParamDef};

pub use super::filter::{Clause, StrMode, Test};
use super::{
    filter::{bad, parse_filter, Parsed},
    find_param,
};
use crate::{error::FhirResult, fhir::is_resource_type};

/// `_include` / `_revinclude` (§3.1.1.5.4).
#[derive(Debug, Clone)]
pub struct Include {
    /// Source type (`*` for every type).
    pub source: String,
    /// The reference parameter; None for `*`.
    pub param: Option<&'static SearchParamDef>,
    /// Target type restriction.
    pub target: Option<String>,
    /// `:iterate` (also applied to included resources).
    pub iterate: bool,
}

/// What a sort key orders by.
#[derive(Debug, Clone, Copy)]
pub enum SortBy {
    /// Logical id.
    Id,
    /// `meta.lastUpdated`.
    LastUpdated,
    /// A string, date, token, uri or quantity parameter.
    Param(&'static SearchParamDef),
}

/// One `_sort` key.
#[derive(Debug, Clone, Copy)]
pub struct SortKey {
    /// Key.
    pub by: SortBy,
    /// `-` prefix.
    pub desc: bool,
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalMode {
    /// No total.
    None,
    /// An estimate (we give the exact figure).
    Estimate,
    /// The exact count.
    Accurate,
}

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// Full resources.
    False,
    /// Without narrative and large elements.
    True,
    /// Only id, meta, text and mandatory elements.
    Text,
    /// Without the narrative.
    Data,
    /// Only the total.
    Count,
}

/// A parsed search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// AND-ed clauses.
    pub clauses: Vec<Clause>,
    /// `_include`s.
    pub includes: Vec<Include>,
    /// `_revinclude`s.
    pub revincludes: Vec<Include>,
    /// `_sort` keys.
    pub sort: Vec<SortKey>,
    /// `_count`.
    pub count: Option<u32>,
    /// `_offset`: matches before this page (the page's position).
    pub offset: u64,
    /// `_cursor`: the embedded store's keyset cursor (row key of the last
    /// match of the previous page) in its `next` links under the default
    /// order; the page starts after it instead of skipping `offset` rows.
    pub after: Option<i64>,
    /// `_total`.
    pub total: TotalMode,
    /// `_summary`.
    pub summary: Summary,
    /// `_elements`.
    pub elements: Option<Vec<String>>,
    /// `_type` (system search).
    pub types: Vec<String>,
    /// Unknown or unsupported parameters, each with a reason.
    pub ignored: Vec<String>,
    /// The parameters applied, in order, for paging links (without `_count`/`_offset`).
    pub echo: Vec<(String, String)>,
}

/// Parses `params` for a search over `rtype` (`"Resource"` for system search).
pub fn parse(rtype: &str, params: &[(String, String)], base: &str) -> FhirResult<SearchQuery> {
    let mut q = SearchQuery {
        clauses: Vec::new(),
        includes: Vec::new(),
        revincludes: Vec::new(),
        sort: Vec::new(),
        count: None,
        offset: 0,
        after: None,
        total: TotalMode::Accurate,
        summary: Summary::False,
        elements: None,
        types: Vec::new(),
        ignored: Vec::new(),
        echo: Vec::new(),
    };
    for (key, raw) in params {
        let echo =
            match key.as_str() {
                "_format" | "_pretty" => false,
                "_count" => {
                    q.count = Some(raw.trim().parse().map_err(|_| {
                        bad(format!("_count '{raw}' is not a non-negative integer"))
                    })?);
                    false
                }
                "_offset" => {
                    q.offset = raw.trim().parse().map_err(|_| {
                        bad(format!("_offset '{raw}' is not a non-negative integer"))
                    })?;
                    false
                }
                "_cursor" => {
                    q.after = Some(
                        raw.trim()
                            .parse()
                            .map_err(|_| bad(format!("_cursor '{raw}' is not a paging cursor")))?,
                    );
                    false
                }
                "_total" => {
                    q.total = match raw.as_str() {
                        "none" => TotalMode::None,
                        "estimate" => TotalMode::Estimate,
                        "accurate" => TotalMode::Accurate,
                        _ => {
                            return Err(bad(format!(
                                "_total must be none, estimate or accurate, not '{raw}'"
                            )))
                        }
                    };
                    true
                }
                "_summary" => {
                    q.summary = match raw.as_str() {
                        "true" => Summary::True,
                        "false" => Summary::False,
                        "text" => Summary::Text,
                        "data" => Summary::Data,
                        "count" => Summary::Count,
                        _ => {
                            return Err(bad(format!(
                                "_summary must be true, false, text, data or count, not '{raw}'"
                            )))
                        }
                    };
                    true
                }
                "_elements" => {
                    let list = raw.split(',').map(|e| e.trim()).filter(|e| !e.is_empty());
                    let list = list.map(|e| e.rsplit('.').next().unwrap_or(e).to_owned());
                    q.elements.get_or_insert_with(Vec::new).extend(list);
                    true
                }
                "_sort" => {
                    q.sort = parse_sort(rtype, raw)?;
                    true
                }
                "_type" if rtype == "Resource" => {
                    for t in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        if !is_resource_type(t) {
                            return Err(bad(format!("_type: '{t}' is not a resource type")));
                        }
                        q.types.push(t.to_owned());
                    }
                    true
                }
                "_include" | "_include:iterate" | "_revinclude" | "_revinclude:iterate" => {
                    let rev = key.starts_with("_revinclude");
                    match parse_include(raw, key.ends_with(":iterate"), rev) {
                        Ok(inc) if rev => q.revincludes.push(inc),
                        Ok(inc) => q.includes.push(inc),
                        Err(reason) => {
                            q.ignored.push(format!("{key}={raw}: {reason}"));
                            continue;
                        }
                    }
                    true
                }
                _ if raw.is_empty() => false,
                _ => match parse_filter(rtype, key, raw, base, true)? {
                    Parsed::Clause(c) => {
                        q.clauses.push(c);
                        true
                    }
                    Parsed::Unknown(reason) => {
                        q.ignored.push(format!("{key}: {reason}"));
                        false
                    }
                },
            };
        if echo {
            q.echo.push((key.clone(), raw.clone()));
        }
    }
    Ok(q)
}

fn parse_sort(rtype: &str, raw: &str) -> FhirResult<Vec<SortKey>> {
    let mut keys = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (desc, name) = match part.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, part),
        };
        let by = match name {
            "_id" => SortBy::Id,
            "_lastUpdated" => SortBy::LastUpdated,
            _ => match find_param(rtype, name) {
                Some(def) if !matches!(def.kind, ParamType::Reference) => SortBy::Param(def),
                _ => {
                    return Err(bad(format!(
                        "_sort: '{name}' is not a sortable parameter of {rtype}"
                    )))
                }
            },
        };
        keys.push(SortKey { by, desc });
    }
    Ok(keys)
}

fn parse_include(raw: &str, iterate: bool, rev: bool) -> Result<Include, String> {
    if raw == "*" && !rev {
        return Ok(Include {
            source: "*".into(),
            param: None,
            target: None,
            iterate,
        });
    }
    let mut parts = raw.split(':');
    let (Some(source), Some(name)) = (parts.next(), parts.next()) else {
        return Err("expected Type:param[:Target]".into());
    };
    let target = parts.next().map(str::to_owned);
    if parts.next().is_some() || !is_resource_type(source) {
        return Err("expected Type:param[:Target]".into());
    }
    if name == "*" && !rev {
        return Ok(Include {
            source: source.into(),
            param: None,
            target,
            iterate,
        });
    }
    let def = find_param(source, name)
        .filter(|d| d.kind == ParamType::Reference)
        .ok_or_else(|| format!("{source} has no reference parameter '{name}'"))?;
    if let Some(t) = &target {
        if !def.targets.contains(&t.as_str()) {
            return Err(format!("{source}:{name} cannot point at {t}"));
        }
    }
    Ok(Include {
        source: source.into(),
        param: Some(def),
        target,
        iterate,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::search::value::RefValue;

    fn p(rtype: &str, pairs: &[(&str, &str)]) -> FhirResult<SearchQuery> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        parse(rtype, &v, "http://h/fhir")
    }

    #[test]
    fn clauses_modifiers_and_controls() {
        let q = p(
            "Observation",
            &[
                ("patient", "1"),
                ("code", "http://loinc.org|1,2"),
                ("category:not", "lab"),
                ("date", "ge2020"),
                ("_count", "5"),
                ("_sort", "-date,_id"),
                ("_total", "none"),
                ("_include", "Observation:patient"),
                ("_revinclude", "Provenance:target"),
                ("bogus", "x"),
            ],
        )
        .unwrap();
        assert_eq!(q.clauses.len(), 4);
        assert!(
            matches!(&q.clauses[0].test, Test::Reference(v) if v[0] == RefValue::Local { rtype: Some("Patient".into()), id: "1".into() })
        );
        assert!(
            matches!(&q.clauses[1].test, Test::Token { values, not: false } if values.len() == 2)
        );
        assert!(matches!(&q.clauses[2].test, Test::Token { not: true, .. }));
        assert_eq!(q.count, Some(5));
        assert_eq!(q.sort.len(), 2);
        assert!(q.sort[0].desc);
        assert_eq!(q.total, TotalMode::None);
        assert_eq!(q.includes.len(), 1);
        assert_eq!(q.revincludes.len(), 1);
        assert_eq!(q.ignored.len(), 1);
        assert!(q.ignored[0].starts_with("bogus"));
        assert!(!q.echo.iter().any(|(k, _)| k == "bogus" || k == "_count"));
    }

    #[test]
    fn strings_missing_and_chains() {
        let q = p(
            "Observation",
            &[
                ("patient.name", "Smi"),
                ("subject:Patient.family:exact", "Smith"),
                ("value-quantity:missing", "true"),
            ],
        )
        .unwrap();
        assert!(
            matches!(&q.clauses[0].test, Test::Chain(b) if b.len() == 1 && b[0].0 == "Patient")
        );
        assert!(
            matches!(&q.clauses[1].test, Test::Chain(b) if matches!(&b[0].1.test, Test::Str { mode: StrMode::Exact, .. }))
        );
        assert!(matches!(q.clauses[2].test, Test::Missing(true)));
        let q = p(
            "Patient",
            &[
                ("name:contains", "ÑA"),
                ("_has:Observation:patient:code", "1234"),
            ],
        )
        .unwrap();
        assert!(
            matches!(&q.clauses[0].test, Test::Str { values, mode: StrMode::Contains } if values[0] == "na")
        );
        assert!(matches!(&q.clauses[1].test, Test::Has { rtype, .. } if rtype == "Observation"));
        let q = p(
            "Observation",
            &[
                ("patient.organization.name", "x"),
                ("_include", "Observation:nope"),
            ],
        )
        .unwrap();
        assert_eq!(q.ignored.len(), 2);
    }

    #[test]
    fn malformed_values_are_400() {
        for (k, v) in [
            ("date", "xx2020"),
            ("date", "2020-13"),
            ("value-quantity", "abc"),
            ("_count", "-1"),
            ("_sort", "patient"),
            ("_sort", "nope"),
            ("_total", "some"),
            ("_summary", "maybe"),
            ("code:exact", "x"),
            ("status:missing", "perhaps"),
            ("_id:not", "x"),
            ("subject:Organization", "1"),
            ("code", "a|b|c"),
        ] {
            let e = p("Observation", &[(k, v)]).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{k}={v}");
        }
    }

    #[test]
    fn system_search_knows_only_common_params() {
        let q = p(
            "Resource",
            &[
                ("_type", "Patient,Observation"),
                ("_id", "a,b"),
                ("_lastUpdated", "gt2020"),
                ("name", "x"),
            ],
        )
        .unwrap();
        assert_eq!(q.types, vec!["Patient", "Observation"]);
        assert_eq!(q.clauses.len(), 2);
        assert_eq!(q.ignored.len(), 1);
        assert!(p("Resource", &[("_type", "Nope")]).is_err());
        let q = p("Patient", &[("_type", "Patient")]).unwrap();
        assert_eq!(q.ignored.len(), 1);
    }
}
