//! Profile validation (issue 9, item 2): the FHIR R4 `$validate`
//! operation, and validation of writes on the way in.
//!
//! - `POST [base]/[type]/$validate` with the resource, or a Parameters
//!   body (`resource`, `mode`, `profile`); `mode` and `profile` may also be
//!   query parameters. `GET|POST [base]/[type]/[id]/$validate` without a
//!   resource validates the stored instance, read through the ordinary
//!   authorize → consent path (so a resource the caller may not see is 404,
//!   and the read is audited). The answer is 200 with an OperationOutcome,
//!   valid or not (R4 Resource-validate); a malformed request is 400.
//!   Allowed to a caller whose scopes grant create, read or update on the
//!   type in any context (else 403).
//! - [`on_write`]: with `[validation] on_write` = `warn` or `reject`
//!   ([`config`]), creates and updates (alone, or entries of a batch or
//!   transaction) are checked before they go upstream; `reject` answers 422
//!   with the OperationOutcome and writes nothing.
//!
//! What is checked is in [`check`].

use serde_json::Value;
use smart_launch::{context::AccessContext, scope::Op};

use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::{authorize::forbidden, Disclosure},
    upstream::RequestContext,
    AppState,
};

pub mod check;
pub mod config;

use check::{Mode, Request};
use config::OnWrite;

/// Whether `req` is `$validate`.
pub fn is_validate(req: &FhirRequest) -> bool {
    req.interaction == Interaction::Operation
        && req.compartment.is_none()
        && req.operation.as_deref().map(|o| o.trim_start_matches('$')) == Some("validate")
}

/// `mode`, `profile` and the resource of a `$validate` request.
struct Args {
    resource: Option<Value>,
    mode: Mode,
    profile: Option<String>,
}

fn args(req: &FhirRequest) -> FhirResult<Args> {
    let mut mode: Option<String> = None;
    let mut profile: Option<String> = None;
    for (k, v) in &req.params {
        match k.as_str() {
            "mode" => mode = Some(v.clone()),
            "profile" => profile = Some(v.clone()),
            _ => {}
        }
    }
    let mut resource = None;
    match &req.body {
        Some(b) if b["resourceType"] == "Parameters" => {
            for p in b["parameter"].as_array().into_iter().flatten() {
                match p["name"].as_str() {
                    Some("resource") => resource = Some(p["resource"].clone()),
                    Some("mode") => mode = p["valueCode"].as_str().map(str::to_owned),
                    Some("profile") => {
                        profile = p["valueUri"]
                            .as_str()
                            .or(p["valueCanonical"].as_str())
                            .map(str::to_owned)
                    }
                    _ => {}
                }
            }
            if resource.as_ref().is_some_and(Value::is_null) {
                return Err(FhirError::bad_request(
                    "the resource parameter carries no resource",
                ));
            }
        }
        Some(b) => resource = Some(b.clone()),
        None => {}
    }
    let mode = match mode.as_deref() {
        None => Mode::General,
        Some(m) => Mode::parse(m).ok_or_else(|| {
            FhirError::bad_request(format!(
                "mode '{m}' is not one of create, update, delete, profile"
            ))
        })?,
    };
    if mode == Mode::Profile && profile.is_none() {
        return Err(FhirError::bad_request("mode=profile needs a profile"));
    }
    Ok(Args {
        resource,
        mode,
        profile,
    })
}

/// Runs `$validate` for `caller` (see the module docs).
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    req: FhirRequest,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let rt = req.resource_type.clone().ok_or_else(|| {
        FhirError::bad_request("$validate is invoked on a resource type or instance")
    })?;
    let allowed = [Op::Create, Op::Read, Op::Update]
        .iter()
        .any(|op| !caller.scopes.grants(&rt, *op).is_empty());
    if !allowed {
        return Err(forbidden(format!(
            "$validate on {rt} needs a scope granting create, read or update on {rt}"
        )));
    }
    let a = args(&req)?;
    if matches!(a.mode, Mode::Update | Mode::Delete) && req.id.is_none() {
        return Err(FhirError::bad_request(
            "mode update and delete validate an instance: [type]/[id]/$validate",
        ));
    }
    let resource = match (a.resource, req.id.as_deref()) {
        (Some(r), _) => r,
        (None, Some(id)) => stored(app, caller, &rt, id, ctx, disclosure).await?,
        (None, None) => {
            return Err(FhirError::bad_request(
                "no resource to validate: send it as the body or as the resource parameter",
            ))
        }
    };
    let findings = check::validate(
        &resource,
        &Request {
            resource_type: &rt,
            id: req.id.as_deref(),
            mode: a.mode,
            profile: a.profile.as_deref(),
            required: &app.config.validation.required_profiles,
            advice: true,
        },
    );
    Ok(FhirResponse::ok(check::outcome(&findings)))
}

/// The stored instance, as the caller may see it.
async fn stored(
    app: &AppState,
    caller: &AccessContext,
    rt: &str,
    id: &str,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<Value> {
    let mut read = FhirRequest::new(Interaction::Read);
    read.resource_type = Some(rt.to_owned());
    read.id = Some(id.to_owned());
    let resp = Box::pin(crate::pipeline::authorize::route_as(
        app, caller, read, ctx, disclosure,
    ))
    .await?;
    match resp.body {
        Some(b) if resp.status.is_success() && b["resourceType"] == rt => Ok(b),
        _ => Err(FhirError::not_found(format!("{rt}/{id} is not known"))),
    }
}

/// The resources a write sends: `(type, id, resource)` of a create or
/// update, or of each such entry of a batch or transaction.
fn written(req: &FhirRequest) -> Vec<(String, Option<String>, Value)> {
    let Some(body) = &req.body else {
        return Vec::new();
    };
    match req.interaction {
        Interaction::Create | Interaction::Update | Interaction::ConditionalUpdate => {
            let rt = req
                .resource_type
                .clone()
                .or_else(|| body["resourceType"].as_str().map(str::to_owned))
                .unwrap_or_default();
            vec![(rt, req.id.clone(), body.clone())]
        }
        Interaction::BatchOrTransaction => body["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| matches!(e["request"]["method"].as_str(), Some("POST" | "PUT")))
            .filter(|e| e["resource"].is_object())
            .map(|e| {
                let r = &e["resource"];
                (
                    r["resourceType"].as_str().unwrap_or_default().to_owned(),
                    r["id"].as_str().map(str::to_owned),
                    r.clone(),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `[validation] on_write`: `Some(422 response)` when a write must be
/// refused; `None` to let it through (see the module docs).
pub fn on_write(app: &AppState, req: &FhirRequest) -> Option<FhirResponse> {
    let mode = app.config.validation.on_write;
    if mode == OnWrite::Off || !req.interaction.is_write() {
        return None;
    }
    let mut findings = Vec::new();
    for (rt, id, resource) in written(req) {
        if rt.is_empty() {
            continue;
        }
        let found = check::validate(
            &resource,
            &Request {
                resource_type: &rt,
                id: id.as_deref(),
                mode: Mode::General,
                profile: None,
                required: &app.config.validation.required_profiles,
                advice: false,
            },
        );
        findings.extend(
            found
                .into_iter()
                .filter(|f| f.severity == check::Severity::Error),
        );
    }
    if findings.is_empty() {
        return None;
    }
    match mode {
        OnWrite::Reject => Some(FhirResponse::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            Some(check::outcome(&findings)),
        )),
        _ => {
            for f in &findings {
                tracing::warn!(path = %f.path, code = %f.code, "write breaks a profile: {}", f.message);
            }
            None
        }
    }
}
