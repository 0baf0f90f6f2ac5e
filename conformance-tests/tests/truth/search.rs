//! Search truth: every declared `searchParam` (per type and rest-level)
//! finds a resource by a value taken from that resource (the element path
//! from [`crate::params`]), every `searchInclude` brings the referenced
//! resource as an `include` entry, every `searchRevInclude` brings a
//! resource referencing the searched one.

use serde_json::Value;

use crate::{
    cases::{described, enc, ensure, Cases},
    fixtures,
    interactions::post,
    params::{expression, search_value, values_at, Expr},
    server::{by_id, entries, Truth},
};

/// The `searchParam` list of a statement element as `(name, type)`.
fn declared_params(holder: &Value) -> Vec<(String, String)> {
    holder["searchParam"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["type"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The expression of `name` on `ty`, or the "declared but not verifiable" failure.
fn expr_of(ty: &str, name: &str) -> Result<Expr, String> {
    expression(ty, name).ok_or_else(|| {
        format!("declared but not verifiable: truth/params.rs has no R4 expression for {ty}.{name}")
    })
}

/// Runs the searchParam, rest-level searchParam, _include and _revinclude cases.
pub fn run(t: &Truth, cases: &mut Cases) {
    for res in t.resources() {
        let ty = res["type"].as_str().unwrap_or_default().to_owned();
        for (name, kind) in declared_params(&res) {
            cases.run(&format!("{ty} search {name} ({kind})"), || {
                type_param(t, &ty, &name, &kind)
            });
        }
    }
    for (name, kind) in declared_params(t.rest()) {
        cases.run(&format!("system search {name} ({kind})"), || {
            system_param(t, &name, &kind)
        });
    }
    for res in t.resources() {
        let ty = res["type"].as_str().unwrap_or_default().to_owned();
        for inc in strings(&res["searchInclude"]) {
            cases.run(&format!("{ty} _include={inc}"), || include(t, &ty, &inc));
        }
        for rev in strings(&res["searchRevInclude"]) {
            cases.run(&format!("{ty} _revinclude={rev}"), || {
                revinclude(t, &ty, &rev)
            });
        }
    }
}

/// A pool resource of `ty` with a value for the parameter, and that value.
fn value_from_data<'a>(
    t: &'a Truth,
    ty: &str,
    name: &str,
    kind: &str,
    expr: &Expr,
) -> Result<(&'a Value, String), String> {
    t.pool
        .get(ty)
        .into_iter()
        .flatten()
        .find_map(|r| search_value(r, kind, expr).map(|v| (r, v)))
        .ok_or_else(|| {
            format!(
                "cannot be exercised: no {ty} in the data (seeded or created) has a value at {:?} for {name}",
                expr.paths
            )
        })
}

/// Each path of the parameter that some resource has a value at finds
/// that resource (so a parameter indexed on only some of its paths fails),
/// and a value nothing has does not (so an ignored parameter fails).
fn type_param(t: &Truth, ty: &str, name: &str, kind: &str) -> Result<(), String> {
    let expr = expr_of(ty, name)?;
    let mut wrong = Vec::new();
    for i in 0..expr.paths.len() {
        let one = Expr {
            paths: &expr.paths[i..=i],
            target: expr.target,
        };
        let Ok((res, value)) = value_from_data(t, ty, name, kind, &one) else {
            continue;
        };
        let id = res["id"].as_str().unwrap_or_default();
        // narrowed to the resource by `_id` (so a value many resources
        // share, such as today's date on AuditEvent, is not paged through);
        // an ignored parameter is still caught by the miss below
        let query = format!("{}&{name}={}", by_id(id), enc(&value));
        if !t.search_finds(ty, &query, id)? {
            wrong.push(format!(
                "GET {ty}?{name}={value}: {ty}/{id} (value at {}) is not among the matches",
                one.paths[0]
            ));
        }
    }
    let (res, value) = value_from_data(t, ty, name, kind, &expr)?;
    let id = res["id"].as_str().unwrap_or_default();
    let miss = non_matching(kind, &value);
    if t.search_finds(ty, &format!("{name}={}", enc(&miss)), id)? {
        wrong.push(format!(
            "GET {ty}?{name}={miss} (a value nothing has) still matches {ty}/{id}: the parameter is ignored"
        ));
    }
    ensure(wrong.is_empty(), || wrong.join("; "))
}

/// A well-formed value of `kind`, shaped like the matching `value`, that
/// no resource has: a search that honours the parameter cannot match.
fn non_matching(kind: &str, value: &str) -> String {
    match kind {
        "reference" if value.contains("://") => "http://example.org/truth/nothing".to_owned(),
        "reference" => {
            let ty = value.split('/').next().unwrap_or_default();
            format!("{ty}/truth-nonexistent")
        }
        "date" => "eq1801-01-01".to_owned(),
        "string" => "zzqxj".to_owned(),
        "quantity" | "number" => "-987654321".to_owned(),
        "uri" => "urn:truth:nothing".to_owned(),
        _ => "urn:truth:nothing|nothing".to_owned(),
    }
}

/// A rest-level parameter, searched at the system level with a value from
/// the Patient fixture (or a seeded Patient), and with a value nothing has.
fn system_param(t: &Truth, name: &str, kind: &str) -> Result<(), String> {
    let expr = expression("Resource", name).ok_or_else(|| {
        format!("declared but not verifiable: truth/params.rs has no R4 expression for rest-level {name}")
    })?;
    let res = t
        .fixture("Patient")
        .or_else(|| t.any("Patient"))
        .ok_or("cannot be exercised: no Patient in the data")?;
    let value = search_value(res, kind, &expr)
        .ok_or_else(|| format!("cannot be exercised: the Patient has no {name}"))?;
    let id = res["id"].as_str().unwrap_or_default();
    let query = format!("{name}={}&_type=Patient", enc(&value));
    let found = t.system_search_finds(&query, "Patient", id)?;
    ensure(found, || {
        format!("GET [base]?{name}={value}&_type=Patient: Patient/{id} is not among the matches")
    })?;
    let miss = non_matching(kind, &value);
    let query = format!("{name}={}&_type=Patient", enc(&miss));
    let found = t.system_search_finds(&query, "Patient", id)?;
    ensure(!found, || {
        format!("GET [base]?{name}={miss}&_type=Patient (a value nothing has) still matches Patient/{id}: the parameter is ignored")
    })
}

/// `T:param[:Target]` split.
fn split_include(s: &str) -> (String, String, Option<String>) {
    let mut it = s.split(':');
    let src = it.next().unwrap_or_default().to_owned();
    let param = it.next().unwrap_or_default().to_owned();
    (src, param, it.next().map(str::to_owned))
}

fn include(t: &Truth, ty: &str, inc: &str) -> Result<(), String> {
    let (src, param, target) = split_include(inc);
    ensure(src == ty, || format!("{inc} is listed under {ty}"))?;
    if param == "*" {
        return include_any(t, ty, inc);
    }
    let expr = expr_of(ty, &param)?;
    let (res, value) = referencing(t, ty, &param, &expr, target.as_deref())?;
    let id = res["id"].as_str().unwrap_or_default();
    let path = format!("{ty}?{}&_include={}", by_id(id), enc(inc));
    let r = t.get(&path)?;
    ensure(r.status == 200, || described("GET", &path, &r))?;
    let included = entries(&r.json, "include")
        .into_iter()
        .any(|e| same_target(e, &value));
    ensure(included, || {
        format!(
            "GET {path}: no include entry for {value} ({ty}/{id}.{param}); {}",
            summary(&r.json)
        )
    })
}

/// `T:*` on the suite's fixture: some include entry comes back.
fn include_any(t: &Truth, ty: &str, inc: &str) -> Result<(), String> {
    let res = t
        .fixture(ty)
        .or_else(|| t.any(ty))
        .ok_or_else(|| format!("cannot be exercised: no {ty} in the data"))?;
    let id = res["id"].as_str().unwrap_or_default();
    let path = format!("{ty}?{}&_include={}", by_id(id), enc(inc));
    let r = t.get(&path)?;
    ensure(r.status == 200, || described("GET", &path, &r))?;
    ensure(
        entries(&r.json, "include").into_iter().next().is_some(),
        || {
            format!(
                "GET {path}: no include entry although {ty}/{id} has references; {}",
                summary(&r.json)
            )
        },
    )
}

/// A pool resource of `ty` whose `param` references an existing resource.
fn referencing<'a>(
    t: &'a Truth,
    ty: &str,
    param: &str,
    expr: &Expr,
    target: Option<&str>,
) -> Result<(&'a Value, String), String> {
    let candidates = t.pool.get(ty).into_iter().flatten();
    for res in candidates {
        let Some(value) = search_value(res, "reference", expr) else {
            continue;
        };
        if target.is_some_and(|want| !value.starts_with(&format!("{want}/"))) {
            continue;
        }
        if !value.contains('/') || value.starts_with("http") || exists(t, &value) {
            return Ok((res, value));
        }
    }
    Err(format!(
        "cannot be exercised: no {ty} in the data has {param} ({:?}) referencing an existing resource",
        expr.paths
    ))
}

fn exists(t: &Truth, reference: &str) -> bool {
    t.get(reference).is_ok_and(|r| r.status == 200)
}

/// An included resource is the one `value` names (`Type/id`, or a canonical URL).
fn same_target(e: &Value, value: &str) -> bool {
    match value.split_once('/') {
        Some((ty, id)) if !value.starts_with("http") => e["resourceType"] == ty && e["id"] == id,
        _ => e["url"].as_str().is_some_and(|u| value.starts_with(u)),
    }
}

/// `T` searched by id with `_revinclude=S:p`, after creating an `S` (its
/// fixture) whose `p` references that `T`.
fn revinclude(t: &Truth, ty: &str, rev: &str) -> Result<(), String> {
    let (src, param, _) = split_include(rev);
    let expr = expr_of(&src, &param)?;
    let target = t
        .any(ty)
        .ok_or_else(|| format!("cannot be exercised: no {ty} in the data"))?;
    let tid = target["id"].as_str().unwrap_or_default();
    let canonical = target["url"].as_str().map(str::to_owned);
    let reference = format!("{ty}/{tid}");
    // the first fixture of S that has the element, pointed at the target
    let body = fixtures::fixtures(&src)
        .into_iter()
        .find_map(|mut body| {
            let set: usize = expr
                .paths
                .iter()
                .map(|p| point_at(&mut body, p, &reference, canonical.as_deref()))
                .sum();
            (set > 0).then_some(body)
        })
        .ok_or_else(|| {
            format!("cannot be exercised: no {src} fixture of the truth test has {:?} to point at {reference}", expr.paths)
        })?;
    let mut body = body;
    fixtures::resolve(&mut body, &|x| t.known_id(x))?;
    let pointing = expr
        .paths
        .iter()
        .find_map(|p| values_at(&body, p).into_iter().next())
        .map(|v| {
            v.as_str()
                .or(v["reference"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    let sid = post(t, &src, &body).map_err(|e| format!("creating the referencing {src}: {e}"))?;
    let path = format!("{ty}?{}&_revinclude={}", by_id(tid), enc(rev));
    let r = t.get(&path)?;
    ensure(r.status == 200, || described("GET", &path, &r))?;
    let found = entries(&r.json, "include")
        .into_iter()
        .any(|e| e["resourceType"] == src.as_str() && e["id"] == sid.as_str());
    ensure(found, || {
        format!(
            "GET {path}: {src}/{sid} (whose {param} is {pointing}) is not an include entry; {}",
            summary(&r.json)
        )
    })
}

/// Points every reference at `path` in `body` to `reference` (a canonical
/// element to `canonical`); returns how many it changed.
fn point_at(body: &mut Value, path: &str, reference: &str, canonical: Option<&str>) -> usize {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let head = head.split('[').next().unwrap_or(head);
    let Some(child) = body.get_mut(head) else {
        return 0;
    };
    let items: Vec<&mut Value> = match child {
        Value::Array(a) => a.iter_mut().collect(),
        other => vec![other],
    };
    let mut n = 0;
    for item in items {
        n += match rest {
            Some(rest) => point_at(item, rest, reference, canonical),
            None => match item {
                Value::String(s) => canonical.map_or(0, |c| {
                    *s = c.to_owned();
                    1
                }),
                Value::Object(o) if o.contains_key("reference") => {
                    o.insert("reference".into(), Value::String(reference.to_owned()));
                    1
                }
                _ => 0,
            },
        };
    }
    n
}

/// The entries of a Bundle as `mode Type/id`, for failure messages.
fn summary(b: &Value) -> String {
    let list: Vec<String> = b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} {}/{}",
                e["search"]["mode"].as_str().unwrap_or("?"),
                e["resource"]["resourceType"].as_str().unwrap_or("?"),
                e["resource"]["id"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!("entries: [{}]", crate::cases::short(list.join(", ")))
}
