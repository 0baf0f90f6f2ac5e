//! Parsing a FHIR R4 `Consent` (`serde_json::Value`) into [`ConsentModel`].
//!
//! Strict about what the engine relies on (status, provision types, codings,
//! references, dates), lenient about the rest: unknown elements are ignored,
//! never echoed. Every error names the element path, e.g.
//! `Consent.provision.provision[1].actor[0].reference`.

use serde_json::Value;

use super::model::{
    Actor, Code, ConsentError, ConsentModel, ConsentScope, ConsentStatus, DataMeaning, DataRef,
    Provision, ProvisionType,
};
use super::time::{parse_period, Period};

fn invalid(path: &str, reason: impl Into<String>) -> ConsentError {
    ConsentError::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Parse a FHIR R4 Consent resource.
pub fn parse_consent(v: &Value) -> Result<ConsentModel, ConsentError> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("Consent", "not a JSON object"))?;
    match obj.get("resourceType").and_then(Value::as_str) {
        Some("Consent") => {}
        _ => return Err(invalid("Consent.resourceType", "expected \"Consent\"")),
    }
    let id = opt_str(v, "id", "Consent.id")?.unwrap_or_default();
    let version = match v.get("meta") {
        Some(m) => opt_str(m, "versionId", "Consent.meta.versionId")?,
        None => None,
    };
    let status = match opt_str(v, "status", "Consent.status")?.as_deref() {
        None => {
            return Err(ConsentError::Missing {
                path: "Consent.status".into(),
            })
        }
        Some("draft") => ConsentStatus::Draft,
        Some("proposed") => ConsentStatus::Proposed,
        Some("active") => ConsentStatus::Active,
        Some("rejected") => ConsentStatus::Rejected,
        Some("inactive") => ConsentStatus::Inactive,
        Some("entered-in-error") => ConsentStatus::EnteredInError,
        Some(other) => {
            return Err(invalid(
                "Consent.status",
                format!("unknown status {other:?}"),
            ))
        }
    };
    let scope_codes = match v.get("scope") {
        Some(s) => codeable(s, "Consent.scope")?,
        None => {
            return Err(ConsentError::Missing {
                path: "Consent.scope".into(),
            })
        }
    };
    let scope = if scope_codes.iter().any(|c| c.code == "patient-privacy") {
        ConsentScope::PatientPrivacy
    } else if scope_codes.iter().any(|c| c.code == "research") {
        ConsentScope::Research
    } else {
        ConsentScope::Other(
            scope_codes
                .first()
                .map(|c| c.code.clone())
                .unwrap_or_default(),
        )
    };
    let patient = match v.get("patient") {
        Some(p) => Some(reference(p, "Consent.patient")?),
        None => None,
    };
    let policy_rule = match v.get("policyRule") {
        Some(p) => codeable(p, "Consent.policyRule")?,
        None => Vec::new(),
    };
    let provision = match v.get("provision") {
        Some(p) => Some(parse_provision(p, "Consent.provision", None)?),
        None => None,
    };
    Ok(ConsentModel {
        id,
        version,
        status,
        scope,
        patient,
        policy_rule,
        provision,
    })
}

fn parse_provision(
    v: &Value,
    path: &str,
    parent: Option<ProvisionType>,
) -> Result<Provision, ConsentError> {
    if !v.is_object() {
        return Err(invalid(path, "not a JSON object"));
    }
    let kind = match opt_str(v, "type", &format!("{path}.type"))?.as_deref() {
        Some("deny") => Some(ProvisionType::Deny),
        Some("permit") => Some(ProvisionType::Permit),
        Some(other) => {
            return Err(invalid(
                &format!("{path}.type"),
                format!("unknown type {other:?}"),
            ))
        }
        None => parent.map(ProvisionType::opposite),
    };
    let period = opt_period(v, "period", path)?;
    let data_period = opt_period(v, "dataPeriod", path)?;
    let actors = each(v, "actor", path, |a, p| {
        let role = match a.get("role") {
            Some(r) => codeable(r, &format!("{p}.role"))?,
            None => Vec::new(),
        };
        let r = a.get("reference").ok_or_else(|| ConsentError::Missing {
            path: format!("{p}.reference"),
        })?;
        Ok(Actor {
            role,
            reference: reference(r, &format!("{p}.reference"))?,
        })
    })?;
    let actions = each(v, "action", path, codeable)?.concat();
    let security_labels = each(v, "securityLabel", path, coding)?;
    let purposes = each(v, "purpose", path, coding)?;
    let classes = each(v, "class", path, coding)?;
    let codes = each(v, "code", path, codeable)?.concat();
    let data = each(v, "data", path, |d, p| {
        let meaning = match opt_str(d, "meaning", &format!("{p}.meaning"))?.as_deref() {
            Some("instance") => DataMeaning::Instance,
            Some("related") => DataMeaning::Related,
            Some("dependents") => DataMeaning::Dependents,
            Some("authoredby") => DataMeaning::AuthoredBy,
            Some(o) => {
                return Err(invalid(
                    &format!("{p}.meaning"),
                    format!("unknown meaning {o:?}"),
                ))
            }
            None => {
                return Err(ConsentError::Missing {
                    path: format!("{p}.meaning"),
                })
            }
        };
        let r = d.get("reference").ok_or_else(|| ConsentError::Missing {
            path: format!("{p}.reference"),
        })?;
        Ok(DataRef {
            meaning,
            reference: reference(r, &format!("{p}.reference"))?,
        })
    })?;
    let mut provisions = Vec::new();
    if let Some(children) = v.get("provision") {
        let arr = children
            .as_array()
            .ok_or_else(|| invalid(&format!("{path}.provision"), "expected an array"))?;
        for (i, c) in arr.iter().enumerate() {
            let cp = format!("{path}.provision[{i}]");
            if kind.is_none() && c.get("type").is_none() {
                return Err(ConsentError::Missing {
                    path: format!("{cp}.type"),
                });
            }
            provisions.push(parse_provision(c, &cp, kind)?);
        }
    }
    Ok(Provision {
        kind,
        period,
        actors,
        actions,
        security_labels,
        purposes,
        classes,
        codes,
        data_period,
        data,
        provisions,
    })
}

fn opt_str(v: &Value, key: &str, path: &str) -> Result<Option<String>, ConsentError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(path, "expected a string")),
    }
}

fn opt_period(v: &Value, key: &str, path: &str) -> Result<Option<Period>, ConsentError> {
    match v.get(key) {
        None => Ok(None),
        Some(p) => parse_period(p)
            .map(Some)
            .map_err(|reason| invalid(&format!("{path}.{key}"), reason)),
    }
}

/// Apply `f` to each element of the array at `key` (absent = empty).
fn each<T>(
    v: &Value,
    key: &str,
    path: &str,
    f: impl Fn(&Value, &str) -> Result<T, ConsentError>,
) -> Result<Vec<T>, ConsentError> {
    match v.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| f(item, &format!("{path}.{key}[{i}]")))
            .collect(),
        Some(_) => Err(invalid(&format!("{path}.{key}"), "expected an array")),
    }
}

/// A `Coding`.
pub(crate) fn coding(v: &Value, path: &str) -> Result<Code, ConsentError> {
    let code =
        opt_str(v, "code", &format!("{path}.code"))?.ok_or_else(|| ConsentError::Missing {
            path: format!("{path}.code"),
        })?;
    let system = opt_str(v, "system", &format!("{path}.system"))?;
    Ok(Code { system, code })
}

/// A `CodeableConcept`'s codings (at least one required).
fn codeable(v: &Value, path: &str) -> Result<Vec<Code>, ConsentError> {
    let codes = each(v, "coding", path, coding)?;
    if codes.is_empty() {
        return Err(ConsentError::Missing {
            path: format!("{path}.coding"),
        });
    }
    Ok(codes)
}

/// A `Reference`'s literal `reference`.
fn reference(v: &Value, path: &str) -> Result<String, ConsentError> {
    opt_str(v, "reference", &format!("{path}.reference"))?.ok_or_else(|| ConsentError::Missing {
        path: format!("{path}.reference"),
    })
}
