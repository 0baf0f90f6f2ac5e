//! Reading and writing FHIR `Parameters` for the payer operations: named
//! parts, resources of the right type (a 400 OperationOutcome naming the
//! part otherwise), and simple values from the body or the query string.

use serde_json::{json, Value};

use crate::error::{FhirError, FhirResult};

/// The request body as a `Parameters` resource, or 400.
pub fn parameters(body: Option<&Value>, operation: &str) -> FhirResult<Vec<Value>> {
    let Some(body) = body.filter(|b| b["resourceType"] == "Parameters") else {
        return Err(FhirError::bad_request(format!(
            "${operation} needs a Parameters resource as its body"
        )));
    };
    match &body["parameter"] {
        Value::Array(parts) => Ok(parts.clone()),
        Value::Null => Ok(Vec::new()),
        _ => Err(FhirError::bad_request(
            "Parameters.parameter must be an array",
        )),
    }
}

/// The parts named `name`.
pub fn named<'a>(parts: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    parts.iter().filter(move |p| p["name"] == name)
}

/// The one resource of type `rtype` in part `name` (required), or 400
/// naming the part.
pub fn resource(parts: &[Value], name: &str, rtype: &str) -> FhirResult<Value> {
    optional_resource(parts, name, rtype)?
        .ok_or_else(|| FhirError::bad_request(format!("parameter {name} ({rtype}) is missing")))
}

/// The resource of type `rtype` in part `name`, if present; 400 naming the
/// part when it repeats or holds something else.
pub fn optional_resource(parts: &[Value], name: &str, rtype: &str) -> FhirResult<Option<Value>> {
    let mut found = named(parts, name);
    let Some(part) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(FhirError::bad_request(format!(
            "parameter {name} must appear once"
        )));
    }
    let r = &part["resource"];
    if r["resourceType"] != rtype {
        return Err(FhirError::bad_request(format!(
            "parameter {name} must hold a {rtype} resource"
        )));
    }
    Ok(Some(r.clone()))
}

/// Simple values of part `name` (any `value[x]` rendered as a string),
/// followed by the same query parameter's comma-separated values.
pub fn values(parts: &[Value], query: &[(String, String)], name: &str) -> Vec<String> {
    let mut out: Vec<String> = named(parts, name)
        .filter_map(|p| {
            p.as_object()?
                .iter()
                .find(|(k, _)| k.starts_with("value"))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        })
        .collect();
    out.extend(
        query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone()),
    );
    out
}

/// A `Parameters` resource from named parts.
pub fn build(parts: Vec<Value>) -> Value {
    json!({"resourceType": "Parameters", "parameter": parts})
}
