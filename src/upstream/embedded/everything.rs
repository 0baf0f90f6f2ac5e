//! `Patient/[id]/$everything` in the embedded store
//! (http://hl7.org/fhir/R4/patient-operation-everything.html): the Patient,
//! every current resource whose indexed references point at it (its
//! compartment), and the resources those refer to (practitioners,
//! organizations, locations, medications), with `_since`, `_type`, `_count`
//! and stable paging.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sqlx::Row;

use super::EmbeddedStore;
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Reference},
    upstream::RequestContext,
};

/// Runs the operation.
pub async fn everything(
    store: &EmbeddedStore,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> FhirResult<FhirResponse> {
    let id = req.id.as_deref().unwrap_or_default();
    let super::paging::Page { count, offset } = super::paging::page(req, ctx)?;
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let since = super::paging::since(req)?;
    let types: Option<BTreeSet<String>> = req.param("_type").map(|t| {
        t.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });

    let patient: Option<(String, i64)> =
        sqlx::query("SELECT body, deleted FROM resource WHERE type = 'Patient' AND id = ?")
            .bind(id)
            .fetch_optional(&store.pool)
            .await?
            .map(|r| (r.get::<Option<String>, _>(0).unwrap_or_default(), r.get(1)));
    match &patient {
        None => return Err(FhirError::not_found(format!("Patient/{id} is not known"))),
        Some((_, deleted)) if *deleted != 0 => {
            return Err(FhirError::gone(format!("Patient/{id} was deleted")))
        }
        _ => {}
    }
    let rows = sqlx::query(
        "SELECT r.type, r.id, r.body, r.last_updated FROM resource r \
         WHERE r.deleted = 0 AND r.res IN \
           (SELECT res FROM idx_reference WHERE target_type = 'Patient' AND target_id = ?) \
         ORDER BY r.type, r.id",
    )
    .bind(id)
    .fetch_all(&store.pool)
    .await?;

    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    seen.insert(("Patient".into(), id.to_owned()));
    let mut resources: Vec<(String, String, Value, String)> = Vec::new();
    if let Some((body, _)) = &patient {
        let v: Value = serde_json::from_str(body)?;
        let lu = v["meta"]["lastUpdated"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        resources.push(("Patient".into(), id.to_owned(), v, lu));
    }
    let mut referenced: BTreeSet<Reference> = BTreeSet::new();
    for r in rows {
        let t: String = r.get(0);
        let rid: String = r.get(1);
        let v: Value = serde_json::from_str(&r.get::<String, _>(2))?;
        collect_references(&v, &mut referenced);
        if seen.insert((t.clone(), rid.clone())) {
            resources.push((t, rid, v, r.get(3)));
        }
    }
    for reference in referenced {
        if reference.resource_type == "Patient"
            || seen.contains(&(reference.resource_type.clone(), reference.id.clone()))
        {
            continue;
        }
        let row = sqlx::query(
            "SELECT body, last_updated FROM resource WHERE type = ? AND id = ? AND deleted = 0",
        )
        .bind(&reference.resource_type)
        .bind(&reference.id)
        .fetch_optional(&store.pool)
        .await?;
        if let Some(row) = row {
            let v: Value = serde_json::from_str(&row.get::<String, _>(0))?;
            seen.insert((reference.resource_type.clone(), reference.id.clone()));
            resources.push((reference.resource_type, reference.id, v, row.get(1)));
        }
    }
    resources.retain(|(t, _, _, lu)| {
        types.as_ref().is_none_or(|ts| ts.contains(t)) && since.as_ref().is_none_or(|s| lu >= s)
    });
    let total = resources.len();
    let base = &ctx.base;
    let entries: Vec<Value> = resources
        .into_iter()
        .skip(offset)
        .take(count as usize)
        .map(|(t, rid, v, _)| json!({"fullUrl": format!("{base}/{t}/{rid}"), "resource": v, "search": {"mode": "match"}}))
        .collect();
    let link = |off: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &since {
            q.append_pair("_since", s);
        }
        if let Some(t) = req.param("_type") {
            q.append_pair("_type", t);
        }
        q.append_pair("_count", &count.to_string());
        q.append_pair("_offset", &off.to_string());
        format!("{base}/Patient/{id}/$everything?{}", q.finish())
    };
    let mut links = vec![json!({"relation": "self", "url": link(offset)})];
    if count > 0 && offset + (count as usize) < total {
        links.push(json!({"relation": "next", "url": link(offset + count as usize)}));
    }
    Ok(FhirResponse::ok(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    })))
}

fn collect_references(v: &Value, out: &mut BTreeSet<Reference>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "reference" {
                    if let Some(r) = child.as_str().and_then(|s| Reference::parse(s, None)) {
                        out.insert(r);
                    }
                } else {
                    collect_references(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}
