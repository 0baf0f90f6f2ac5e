//! Renders a search answer as a `searchset` Bundle (R4 bundle.html, search.html
//! §3.1.1.6): `total` unless `_total=none`, `self`/`first`/`previous`/`next`/`last`
//! links on the facade's base carrying `_count` and `_offset` (and, under the
//! default order, the keyset `_cursor` on `self` and `next`), entries with
//! `fullUrl` and `search.mode` (match, include, and one outcome entry naming
//! ignored parameters), and `_elements` / `_summary` subsetting with the
//! `SUBSETTED` tag (R4 search.html §3.1.1.5.9–10).

use serde_json::{json, Map, Value};

use super::{parse_body, Hit};
use crate::{error::FhirResult, search::query::SearchQuery};

/// Paging facts of one page.
pub(crate) struct Page<'a> {
    /// FHIR base.
    pub base: &'a str,
    /// Path below the base (`Observation`, `Patient/1/Observation`, or empty).
    pub path: &'a str,
    /// Page size.
    pub count: u32,
    /// Offset of this page.
    pub offset: u64,
    /// Total matches, when counted.
    pub total: Option<i64>,
    /// Whether more matches follow this page.
    pub has_more: bool,
    /// The keyset cursor this page started after (default order only).
    pub cursor: Option<i64>,
    /// The cursor of the next page: this page's last row (default order only).
    pub next_cursor: Option<i64>,
}

fn link(p: &Page<'_>, q: &SearchQuery, offset: u64) -> String {
    link_at(p, q, offset, None)
}

fn link_at(p: &Page<'_>, q: &SearchQuery, offset: u64, cursor: Option<i64>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &q.echo {
        s.append_pair(k, v);
    }
    s.append_pair("_count", &p.count.to_string());
    s.append_pair("_offset", &offset.to_string());
    if let Some(c) = cursor {
        s.append_pair("_cursor", &c.to_string());
    }
    let base = p.base.trim_end_matches('/');
    if p.path.is_empty() {
        format!("{base}?{}", s.finish())
    } else {
        format!("{base}/{}?{}", p.path, s.finish())
    }
}

/// Builds the Bundle.
pub(crate) fn render(
    p: &Page<'_>,
    q: &SearchQuery,
    matches: &[Hit],
    included: &[Hit],
    notes: &[String],
) -> FhirResult<Value> {
    let mut links = vec![json!({"relation": "self", "url": link_at(p, q, p.offset, p.cursor)})];
    if p.count > 0 {
        let c = u64::from(p.count);
        links.push(json!({"relation": "first", "url": link(p, q, 0)}));
        if p.offset > 0 {
            links.push(
                json!({"relation": "previous", "url": link(p, q, p.offset.saturating_sub(c))}),
            );
        }
        if p.has_more {
            let next = link_at(p, q, p.offset + c, p.next_cursor);
            links.push(json!({"relation": "next", "url": next}));
        }
        if let Some(t) = p
            .total
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
        {
            links.push(json!({"relation": "last", "url": link(p, q, ((t - 1) / c) * c)}));
        }
    }
    let base = p.base.trim_end_matches('/');
    let mut entries = Vec::with_capacity(matches.len() + included.len() + 1);
    for (hits, mode) in [(matches, "match"), (included, "include")] {
        for h in hits {
            let mut resource = parse_body(&h.body)?;
            if mode == "match" {
                crate::fhir::subset::apply(&mut resource, q.elements.as_deref(), q.summary);
            }
            entries.push(json!({
                "fullUrl": format!("{base}/{}/{}", h.rtype, h.id),
                "resource": resource,
                "search": {"mode": mode},
            }));
        }
    }
    if !notes.is_empty() {
        let issues: Vec<Value> = notes
            .iter()
            .map(|n| json!({"severity": "warning", "code": "not-supported", "diagnostics": format!("ignored: {n}")}))
            .collect();
        entries.push(json!({
            "resource": {"resourceType": "OperationOutcome", "issue": issues},
            "search": {"mode": "outcome"},
        }));
    }
    let mut b = Map::new();
    b.insert("resourceType".into(), json!("Bundle"));
    b.insert("type".into(), json!("searchset"));
    if let Some(t) = p.total {
        b.insert("total".into(), json!(t));
    }
    b.insert("link".into(), Value::Array(links));
    if !entries.is_empty() {
        b.insert("entry".into(), Value::Array(entries));
    }
    Ok(Value::Object(b))
}
