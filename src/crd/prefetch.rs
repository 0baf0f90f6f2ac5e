//! Prefetch resolution (CDS Hooks 2.0 "Prefetch" and "FHIR Resource
//! Access"): what the client sent is used as is (a `null` means the client
//! found nothing); a template the client left out is filled from `context`
//! and fetched from `fhirServer` with the `fhirAuthorization` Bearer token.
//! Also fetches orders named by reference (`order-dispatch`).

use std::time::Duration;

use serde_json::{Map, Value};

use super::request::HookRequest;

/// `template` with its `{{context.X}}` tokens filled, or None when a
/// token has no string value in `context`.
pub fn fill(template: &str, context: &Map<String, Value>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let token = after[..end].trim();
        let field = token.strip_prefix("context.")?;
        let value = context.get(field)?.as_str()?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// The prefetch data of `templates` for `req`: sent, or fetched.
pub async fn resolve(req: &HookRequest, templates: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, template) in templates {
        if let Some(sent) = req.prefetch.get(key) {
            out.insert(key.clone(), sent.clone());
            continue;
        }
        let Some(query) = template.as_str().and_then(|t| fill(t, &req.context)) else {
            continue;
        };
        if let Some(v) = fetch(req, &query).await {
            out.insert(key.clone(), v);
        }
    }
    out
}

/// GET `{fhirServer}/{query}` with the request's token; None when there
/// is no server or token, or the read fails.
pub async fn fetch(req: &HookRequest, query: &str) -> Option<Value> {
    let (base, token) = (req.fhir_server.as_deref()?, req.access_token.as_deref()?);
    let url = format!("{}/{}", base.trim_end_matches('/'), query);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let res = client
        .get(&url)
        .bearer_auth(token)
        .header("accept", "application/fhir+json")
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
        Ok(r) => {
            tracing::info!(status = %r.status(), "CRD prefetch read refused by fhirServer");
            None
        }
        Err(e) => {
            tracing::info!(error = %e, "CRD prefetch read failed");
            None
        }
    }
}

/// The resources of a search Bundle (or the resource itself).
pub fn resources(v: &Value) -> Vec<&Value> {
    if v["resourceType"] == "Bundle" {
        v["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|x| &x["resource"])
                    .filter(|r| r.is_object())
                    .collect()
            })
            .unwrap_or_default()
    } else if v.is_object() {
        vec![v]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_are_filled_from_context() {
        let ctx = json!({"patientId": "p1"});
        let ctx = ctx.as_object().cloned().unwrap_or_default();
        assert_eq!(
            fill("Coverage?patient={{context.patientId}}&status=active", &ctx).as_deref(),
            Some("Coverage?patient=p1&status=active")
        );
        assert_eq!(fill("Encounter/{{context.encounterId}}", &ctx), None);
    }
}
