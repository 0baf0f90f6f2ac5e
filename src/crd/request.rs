//! The CDS Hooks 2.0 request of one service call, validated: `hook` is the
//! service's, `hookInstance` a UUID, `context` has the fields the hook
//! requires, `fhirAuthorization` (if any) is a Bearer token with a
//! `fhirServer` beside it. A bad request is answered 400 with the reasons.

use serde_json::{Map, Value};

use super::services::Service;

/// A validated hook request.
#[derive(Debug, Clone)]
pub struct HookRequest {
    /// `hookInstance`.
    pub hook_instance: String,
    /// `context`.
    pub context: Map<String, Value>,
    /// `fhirServer`.
    pub fhir_server: Option<String>,
    /// `fhirAuthorization.access_token` (Bearer).
    pub access_token: Option<String>,
    /// `prefetch` as sent (keys may be missing or null).
    pub prefetch: Map<String, Value>,
}

impl HookRequest {
    /// The `context.patientId`.
    pub fn patient_id(&self) -> Option<&str> {
        self.context.get("patientId").and_then(Value::as_str)
    }
}

/// Context fields each hook requires (CDS Hooks hook definitions).
fn required_context(hook: &str) -> &'static [&'static str] {
    match hook {
        "order-sign" => &["userId", "patientId", "draftOrders"],
        "order-select" => &["userId", "patientId", "selections", "draftOrders"],
        "order-dispatch" => &["patientId", "dispatchedOrders", "performer"],
        "appointment-book" => &["userId", "patientId", "appointments"],
        "encounter-start" | "encounter-discharge" => &["userId", "patientId", "encounterId"],
        _ => &[],
    }
}

/// Validates `body` as a call to `service`; the errors list every problem.
pub fn validate(service: &Service, body: &Value) -> Result<HookRequest, Vec<String>> {
    let mut errors = Vec::new();
    let str_of = |name: &str| body.get(name).and_then(Value::as_str);
    match str_of("hook") {
        Some(h) if h == service.hook => {}
        Some(h) => errors.push(format!(
            "hook is {h} but this service answers {}",
            service.hook
        )),
        None => errors.push("hook is required".into()),
    }
    let hook_instance = str_of("hookInstance").unwrap_or_default().to_owned();
    if uuid::Uuid::parse_str(&hook_instance).is_err() {
        errors.push("hookInstance must be a UUID".into());
    }
    let context = body
        .get("context")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if body.get("context").and_then(Value::as_object).is_none() {
        errors.push("context is required".into());
    }
    for field in required_context(service.hook) {
        if context.get(*field).is_none_or(Value::is_null) {
            errors.push(format!("context.{field} is required for {}", service.hook));
        }
    }
    for bundle in ["draftOrders", "appointments"] {
        if let Some(v) = context.get(bundle) {
            if v["resourceType"] != "Bundle" {
                errors.push(format!("context.{bundle} must be a FHIR Bundle"));
            }
        }
    }
    let fhir_server = str_of("fhirServer").map(str::to_owned);
    if let Some(s) = &fhir_server {
        if url::Url::parse(s).is_err() {
            errors.push("fhirServer must be an absolute URL".into());
        }
    }
    let mut access_token = None;
    if let Some(auth) = body.get("fhirAuthorization").filter(|v| !v.is_null()) {
        if fhir_server.is_none() {
            errors.push("fhirAuthorization needs a fhirServer".into());
        }
        if !auth["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            errors.push("fhirAuthorization.token_type must be Bearer".into());
        }
        for field in ["expires_in", "scope", "subject"] {
            if auth.get(field).is_none() {
                errors.push(format!("fhirAuthorization.{field} is required"));
            }
        }
        match auth["access_token"].as_str().filter(|t| !t.is_empty()) {
            Some(t) => access_token = Some(t.to_owned()),
            None => errors.push("fhirAuthorization.access_token is required".into()),
        }
    }
    let prefetch = body
        .get("prefetch")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(HookRequest {
        hook_instance,
        context,
        fhir_server,
        access_token,
        prefetch,
    })
}
