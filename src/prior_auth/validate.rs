//! Structural validation of PAS Request and Inquiry Bundles, before any
//! adjudication: the Bundle profile; the Claim as the first entry; every
//! reference in the Claim resolving to exactly one entry; the PAS profile
//! of every entry (Claim, Beneficiary, Coverage, Insurer, Requestor
//! Organization / PractitionerRole, Service/Device/MedicationRequest).
//! Each problem is one [`profiles::Issue`] naming its element path; the
//! caller answers them as one 400 OperationOutcome ([`outcome`]).

use axum::http::StatusCode;
use profiles::Issue;
use serde_json::{json, Value};

use super::version::PasVersion;
use crate::fhir::FhirResponse;

/// Root of issue paths for the Claim.
pub const CLAIM_ROOT: &str = "Bundle.entry[0].resource.ofType(Claim)";

/// Which kind of Bundle is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `$submit`: PAS Request Bundle with a PAS Claim.
    Request,
    /// `$inquire`: PAS Inquiry Request Bundle with a PAS Claim Inquiry.
    Inquiry,
}

/// All issues of a Bundle (empty: valid), against the PAS 2.0.1 profiles.
pub fn check(bundle: &Value, kind: Kind) -> Vec<Issue> {
    check_as(bundle, kind, PasVersion::V2_0_1)
}

/// All issues of a Bundle against the profiles of PAS `version` (a Claim
/// Update with 2.2).
pub fn check_as(bundle: &Value, kind: Kind, version: PasVersion) -> Vec<Issue> {
    let pas = version.profiles();
    let mut issues = Vec::new();
    if let Some(p) = pas.get("PASRequestBundle") {
        issues.extend(p.check(bundle, "Bundle"));
    }
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let Some(claim) = entries.first().map(|e| &e["resource"]) else {
        return issues;
    };
    if claim["resourceType"] != "Claim" {
        issues.push(Issue {
            code: "structure",
            path: "Bundle.entry[0].resource".into(),
            message: "the Claim must be the first entry of the Bundle".into(),
        });
        return issues;
    }
    let claim_profile = version.claim_profile(claim, kind);
    if let Some(p) = pas.get(claim_profile) {
        issues.extend(p.check(claim, CLAIM_ROOT));
    }
    if claim_profile == "PASClaimUpdate"
        && !version.is_cancellation(claim)
        && claim["item"].as_array().is_none_or(Vec::is_empty)
    {
        issues.push(Issue {
            code: "required",
            path: format!("{CLAIM_ROOT}.item"),
            message: "PASClaimUpdate: item is required unless the update cancels the request (certificationType 3)".into(),
        });
    }
    issues.extend(duplicate_full_urls(entries));
    let mut refs = Vec::new();
    references(claim, CLAIM_ROOT, &mut refs);
    for (path, reference) in &refs {
        let found = resolve_all(entries, reference);
        match found.len() {
            1 => {}
            0 => issues.push(Issue {
                code: "not-found",
                path: path.clone(),
                message: format!(
                    "reference {reference} does not resolve to an entry of the Bundle"
                ),
            }),
            n => issues.push(Issue {
                code: "structure",
                path: path.clone(),
                message: format!(
                    "reference {reference} resolves to {n} entries; it must resolve to exactly one"
                ),
            }),
        }
    }
    let target = |elem: &str| {
        claim[elem]["reference"]
            .as_str()
            .and_then(|r| resolve(entries, r))
            .map(|(i, _)| i)
    };
    let insurer = target("insurer");
    let provider = target("provider");
    for (i, e) in entries.iter().enumerate().skip(1) {
        let r = &e["resource"];
        let Some(rtype) = r["resourceType"].as_str() else {
            continue;
        };
        let profile = match rtype {
            "Patient" => Some("PASBeneficiary"),
            "Coverage" => Some("PASCoverage"),
            "Organization" if Some(i) == insurer => Some("PASInsurer"),
            "Organization" if Some(i) == provider => Some("PASRequestor"),
            "PractitionerRole" => Some("PASPractitionerRole"),
            "ServiceRequest" => Some("PASServiceRequest"),
            "DeviceRequest" => Some("PASDeviceRequest"),
            "MedicationRequest" => Some("PASMedicationRequest"),
            _ => None,
        };
        if let Some(p) = profile.and_then(|n| pas.get(n)) {
            issues.extend(p.check(r, &format!("Bundle.entry[{i}].resource.ofType({rtype})")));
        }
    }
    issues
}

/// Every `reference` string in `v`, with the path of the Reference holding it.
fn references(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("reference") {
                if !r.starts_with('#') {
                    out.push((path.to_owned(), r.clone()));
                }
            }
            for (k, x) in m {
                if k != "reference" {
                    references(x, &format!("{path}.{k}"), out);
                }
            }
        }
        Value::Array(xs) => {
            for (i, x) in xs.iter().enumerate() {
                references(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Entries a reference resolves to: by `fullUrl`, by a `fullUrl` ending in
/// `/Type/id`, or by the resource's own `Type/id`.
fn resolve_all<'a>(entries: &'a [Value], reference: &str) -> Vec<(usize, &'a Value)> {
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            let full = e["fullUrl"].as_str().unwrap_or_default();
            let own = match (
                e["resource"]["resourceType"].as_str(),
                e["resource"]["id"].as_str(),
            ) {
                (Some(t), Some(id)) => format!("{t}/{id}"),
                _ => String::new(),
            };
            full == reference
                || (!reference.contains("://")
                    && (own == reference || full.ends_with(&format!("/{reference}"))))
        })
        .map(|(i, e)| (i, &e["resource"]))
        .collect()
}

/// The one entry a reference resolves to (index and resource).
pub fn resolve<'a>(entries: &'a [Value], reference: &str) -> Option<(usize, &'a Value)> {
    let found = resolve_all(entries, reference);
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

fn duplicate_full_urls(entries: &[Value]) -> Vec<Issue> {
    let mut seen = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(u) = e["fullUrl"].as_str() {
            if let Some(first) = seen.insert(u.to_owned(), i) {
                out.push(Issue {
                    code: "structure",
                    path: format!("Bundle.entry[{i}].fullUrl"),
                    message: format!(
                        "fullUrl {u} repeats entry {first}; each resource must be present once"
                    ),
                });
            }
        }
    }
    out
}

/// 400 OperationOutcome with one issue per problem.
pub fn outcome(issues: &[Issue]) -> FhirResponse {
    let issue: Vec<Value> = issues
        .iter()
        .map(|i| {
            json!({
                "severity": "error",
                "code": i.code,
                "diagnostics": format!("{}: {}", i.path, i.message),
                "expression": [i.path],
            })
        })
        .collect();
    FhirResponse::new(
        StatusCode::BAD_REQUEST,
        Some(json!({"resourceType": "OperationOutcome", "issue": issue})),
    )
}
