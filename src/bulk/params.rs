//! Kick-off parameters (Bulk Data Access 2.0 §"Query Parameters"): from the
//! query string (GET) or a `Parameters` body (POST), validated into a
//! [`Spec`]. Unsupported values are 400 with an OperationOutcome unless the
//! client sent `Prefer: handling=lenient`, in which case they are ignored.
//! `_anonymizationConfig` (a de-identification profile) and
//! `_anonymizationKeySet` ask for a de-identified export (`src/deid/`).

use serde_json::Value;

use super::jobs::{Level, Spec};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{types::is_resource_type, FhirRequest, PreferHandling},
};

/// `_outputFormat` values accepted (all mean FHIR NDJSON). A `+` sent
/// unencoded in a query arrives as a space; that spelling is accepted too.
const FORMATS: &[&str] = &[
    "application/fhir+ndjson",
    "application/fhir ndjson",
    "application/ndjson",
    "ndjson",
];

/// `includeAssociatedData` values recognised (and ignored: no associated
/// data is added).
const ASSOCIATED: &[&str] = &["LatestProvenanceResources", "RelevantProvenanceResources"];

/// The parameters as `(name, value)` pairs, from the query and the body.
fn pairs(req: &FhirRequest, is_post: bool) -> FhirResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = req.params.clone();
    let Some(body) = &req.body else {
        return Ok(out);
    };
    if !is_post {
        return Ok(out);
    }
    if body["resourceType"] != "Parameters" {
        return Err(FhirError::bad_request(
            "the kick-off body must be a Parameters resource",
        ));
    }
    for p in body["parameter"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let value = p
            .as_object()
            .and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.starts_with("value"))
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or(Value::Null);
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Object(o) => o
                .get("reference")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        out.push((name, text));
    }
    Ok(out)
}

/// Validates the kick-off into a spec.
pub fn parse(req: &FhirRequest, level: Level, is_post: bool) -> FhirResult<Spec> {
    let lenient = req.prefer.handling == Some(PreferHandling::Lenient);
    let refuse = |msg: String| -> FhirResult<()> {
        if lenient {
            Ok(())
        } else {
            Err(FhirError::bad_request(msg))
        }
    };
    let mut spec = Spec {
        level,
        types: Vec::new(),
        since: None,
        elements: Vec::new(),
        type_filters: Vec::new(),
        patients: Vec::new(),
        task: Default::default(),
        deid: None,
    };
    let (mut deid_profile, mut deid_key_set) = (None::<String>, None::<String>);
    for (name, value) in pairs(req, is_post)? {
        let list = || {
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        match name.as_str() {
            "_outputFormat" => {
                if !FORMATS.contains(&value.as_str()) {
                    refuse(format!(
                        "_outputFormat '{value}' is not supported; use application/fhir+ndjson"
                    ))?;
                }
            }
            "_since" => {
                if time::OffsetDateTime::parse(
                    &value,
                    &time::format_description::well_known::Rfc3339,
                )
                .is_err()
                {
                    return Err(FhirError::bad_request(format!(
                        "_since '{value}' is not a FHIR instant (e.g. 2024-01-01T00:00:00Z)"
                    )));
                }
                spec.since = Some(value.clone());
            }
            "_type" => {
                for t in list() {
                    if is_resource_type(&t) {
                        if !spec.types.contains(&t) {
                            spec.types.push(t);
                        }
                    } else {
                        refuse(format!("_type '{t}' is not a FHIR R4 resource type"))?;
                    }
                }
            }
            "_elements" => spec.elements.extend(list()),
            "_typeFilter" => {
                for f in list_filters(&value) {
                    match f.split_once('?') {
                        Some((t, q)) if is_resource_type(t) && !q.is_empty() => {
                            spec.type_filters.push((t.to_owned(), q.to_owned()));
                        }
                        _ => refuse(format!(
                            "_typeFilter '{f}' must be [type]?[search parameters]"
                        ))?,
                    }
                }
            }
            "patient" => {
                if !is_post {
                    return Err(FhirError::bad_request(
                        "the patient parameter is only accepted in a POST kick-off",
                    ));
                }
                if spec.level == Level::System {
                    refuse("the patient parameter applies to Patient and Group exports".into())?;
                    continue;
                }
                let id = value.strip_prefix("Patient/").unwrap_or(&value).to_owned();
                if id.is_empty() || id.contains('/') {
                    refuse(format!("patient '{value}' is not a Patient reference"))?;
                } else {
                    spec.patients.push(id);
                }
            }
            "includeAssociatedData" => {
                for v in list() {
                    if !ASSOCIATED.contains(&v.as_str()) && !v.starts_with('_') {
                        refuse(format!("includeAssociatedData '{v}' is not supported"))?;
                    }
                }
            }
            crate::deid::export::PROFILE_PARAM => {
                deid_profile = Some(value.trim().to_owned());
            }
            crate::deid::export::KEY_SET_PARAM => {
                deid_key_set = Some(value.trim().to_owned());
            }
            other => refuse(format!("the $export parameter '{other}' is not supported"))?,
        }
    }
    // a de-identified export (the purpose is checked and set at kick-off)
    match (deid_profile, deid_key_set) {
        (Some(profile), key_set) if !profile.is_empty() => {
            spec.deid = Some(crate::deid::export::DeidSpec {
                profile,
                key_set: key_set.filter(|k| !k.is_empty()),
                purpose: String::new(),
                security: String::new(),
            });
        }
        (_, Some(_)) => {
            return Err(FhirError::bad_request(format!(
                "{} names a key set for a de-identified export: name the profile in {}",
                crate::deid::export::KEY_SET_PARAM,
                crate::deid::export::PROFILE_PARAM
            )))
        }
        (Some(_), None) => {
            return Err(FhirError::bad_request(format!(
                "{} needs a profile name",
                crate::deid::export::PROFILE_PARAM
            )))
        }
        (None, None) => {}
    }
    // A filter for a type outside `_type` would export nothing: refuse it.
    if !spec.types.is_empty() {
        for (t, _) in &spec.type_filters {
            if !spec.types.contains(t) {
                refuse(format!("_typeFilter names {t}, which is not in _type"))?;
            }
        }
    }
    Ok(spec)
}

/// `_typeFilter` values are comma separated, but a query may itself hold
/// commas (OR'd values): split only before `Type?`.
fn list_filters(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in value.split(',') {
        let starts_type = part
            .split_once('?')
            .map(|(t, _)| is_resource_type(t.trim()))
            .unwrap_or(false);
        match out.last_mut() {
            Some(last) if !starts_type => {
                last.push(',');
                last.push_str(part);
            }
            _ => out.push(part.trim().to_owned()),
        }
    }
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// The search parameters of a `_typeFilter` query.
pub fn filter_params(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `_elements` for one type: the unprefixed ones plus `Type.x` of that type.
pub fn elements_for(elements: &[String], type_: &str) -> Vec<String> {
    elements
        .iter()
        .filter_map(|e| match e.split_once('.') {
            Some((t, rest)) if t == type_ => Some(rest.to_owned()),
            Some(_) => None,
            None => Some(e.clone()),
        })
        .collect()
}
