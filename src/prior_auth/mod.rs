//! Da Vinci Prior Authorization Support (PAS 2.0.1, issue 7), answered by
//! the facade itself in the route stage (`pipeline::handle_as` calls
//! [`Operation::of`] and [`run`]):
//!
//! - `POST /fhir/Claim/$submit`: a PAS Request Bundle (or a `Parameters`
//!   with it in `resource`) is validated ([`validate`], against the PAS
//!   profiles of the `profiles` crate), adjudicated by the payer rules
//!   ([`rules`], [`adjudicate`]), stored ([`store`]) and answered with a
//!   PAS Response Bundle ([`response`]); see [`submit`].
//! - `POST /fhir/Claim/$inquire`: the current ClaimResponse of a request
//!   of the caller's ([`inquire`]).
//! - [`decide::decide`]: a reviewer's decision on a pended item (the admin
//!   review queue); [`review`]: timeframe extensions and appeals.
//!
//! The request life cycle is the explicit machine of [`state`]; deadlines
//! (72 h expedited, 7 days standard) are [`timeframe`]'s. What differs with
//! `[prior_auth] pas_version = "2.2"` is [`version`]'s.
//!
//! Authorization: `$submit` needs a `system/` scope granting create on
//! Claim (`system/Claim.c`, `system/Claim.*`, `system/*.cruds`, …);
//! `$inquire` read or search on Claim. Otherwise 403.

use serde_json::Value;
use smart_launch::context::AccessContext;

use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
    payer::require_system,
    pipeline::Disclosure,
    AppState,
};

pub mod adjudicate;
pub mod config;
pub mod decide;
pub mod documentation;
pub mod inquire;
pub mod lookup;
pub mod metrics;
pub mod response;
pub mod retention;
pub mod review;
pub mod review_store;
pub mod rules;
pub mod state;
pub mod store;
pub mod submit;
pub mod timeframe;
pub mod validate;
pub mod version;

/// The operations this module answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `Claim/$submit`.
    Submit,
    /// `Claim/$inquire`.
    Inquire,
}

impl Operation {
    /// The PAS operation a request asks for, if any.
    pub fn of(req: &FhirRequest) -> Option<Self> {
        if req.interaction != Interaction::Operation
            || req.compartment.is_some()
            || req.id.is_some()
            || req.resource_type.as_deref() != Some("Claim")
        {
            return None;
        }
        match req.operation.as_deref()?.trim_start_matches('$') {
            "submit" => Some(Self::Submit),
            "inquire" => Some(Self::Inquire),
            _ => None,
        }
    }
}

/// Runs a PAS operation for `caller`.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    op: Operation,
    req: FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    match op {
        Operation::Submit => {
            require_system(caller, "Claim", |p| p.c, "create (c)")?;
            submit::run(app, caller, &req, disclosure).await
        }
        Operation::Inquire => {
            require_system(caller, "Claim", |p| p.r || p.s, "read (r) or search (s)")?;
            inquire::run(app, caller, &req, disclosure).await
        }
    }
}

/// A PAS operation's Bundle, checked: structure against the profiles of
/// the configured PAS version, then Claim references to QuestionnaireResponses
/// stored here resolved ([`documentation`]). `Err` is the 400
/// OperationOutcome to answer; `Ok` the Bundle, the Questionnaire
/// canonicals it documents, and the version. `$submit` and `$inquire`
/// share it, so an inquiry is validated exactly as a submission.
pub async fn checked_bundle(
    app: &AppState,
    req: &FhirRequest,
    operation: &str,
    kind: validate::Kind,
) -> FhirResult<Result<(Value, Vec<String>, version::PasVersion), FhirResponse>> {
    let bundle = body_bundle(req.body.as_ref(), operation)?;
    let pas = app.config.prior_auth.pas_version();
    let mut issues = validate::check_as(&bundle, kind, pas.rules_for(&bundle));
    let answered = documentation::answered(app, &bundle, &mut issues).await?;
    if !issues.is_empty() {
        return Ok(Err(validate::outcome(&issues)));
    }
    Ok(Ok((bundle, answered, pas)))
}

/// The Bundle a PAS operation was given: the body itself, or the
/// `resource` part of a `Parameters` body; 400 otherwise.
pub fn body_bundle(body: Option<&Value>, operation: &str) -> FhirResult<Value> {
    let Some(body) = body else {
        return Err(FhirError::bad_request(format!(
            "${operation} needs a PAS Bundle as its body"
        )));
    };
    let bundle = if body["resourceType"] == "Parameters" {
        body["parameter"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "resource"))
            .map(|p| p["resource"].clone())
            .unwrap_or(Value::Null)
    } else {
        body.clone()
    };
    if bundle["resourceType"] != "Bundle" {
        return Err(FhirError::bad_request(format!(
            "${operation} needs a PAS Bundle (or Parameters with it in `resource`)"
        )));
    }
    Ok(bundle)
}

/// What identifies a request for matching: Claim identifier, member and
/// requestor identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `Claim.identifier.system` (empty when absent).
    pub claim_system: String,
    /// `Claim.identifier.value`.
    pub claim_value: String,
    /// The Patient's first identifier, `system|value`.
    pub patient_key: String,
    /// The provider's first identifier `system|value` (its reference
    /// when it has none).
    pub provider_key: String,
}

impl Keys {
    /// Reads the keys of a validated PAS Bundle (PAS 2.0.1 rules).
    pub fn of(bundle: &Value) -> Self {
        Self::for_version(bundle, version::PasVersion::V2_0_1)
    }

    /// Reads the keys of a validated PAS Bundle; the member identifier is
    /// chosen by `pas` ([`version::PasVersion::member_identifier`]).
    pub fn for_version(bundle: &Value, pas: version::PasVersion) -> Self {
        let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let claim = &bundle["entry"][0]["resource"];
        let ident = |id: &Value| {
            format!(
                "{}|{}",
                id["system"].as_str().unwrap_or_default(),
                id["value"].as_str().unwrap_or_default()
            )
        };
        let of = |elem: &str| {
            let reference = claim[elem]["reference"].as_str().unwrap_or_default();
            let first = |r: &Value| match elem {
                "patient" => pas.member_identifier(r).cloned(),
                _ => r["identifier"].get(0).cloned(),
            };
            match validate::resolve(entries, reference).and_then(|(_, r)| first(r)) {
                Some(id) if id.is_object() => ident(&id),
                _ => reference.to_owned(),
            }
        };
        let id = &claim["identifier"][0];
        Self {
            claim_system: id["system"].as_str().unwrap_or_default().to_owned(),
            claim_value: id["value"].as_str().unwrap_or_default().to_owned(),
            patient_key: of("patient"),
            provider_key: of("provider"),
        }
    }
}

/// Records what a PAS answer disclosed for the audit stage.
pub fn note(disclosure: &mut Disclosure, bundle: &Value, claim_response: &str) {
    let claim = &bundle["entry"][0]["resource"];
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let pid = claim["patient"]["reference"]
        .as_str()
        .and_then(|r| validate::resolve(entries, r))
        .and_then(|(_, p)| p["id"].as_str().map(str::to_owned));
    match pid {
        Some(pid) => disclosure
            .patient(&format!("Patient/{pid}"))
            .released
            .push(claim_response.to_owned()),
        None => disclosure.other.push(claim_response.to_owned()),
    }
}
