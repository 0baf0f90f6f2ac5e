//! The member matcher of `$member-match` and `$bulk-member-match`: finds the
//! member a requesting payer describes (HRex `MemberPatient` and
//! `CoverageToMatch`) in the upstream, searching as the system (never as the
//! caller, whose scopes and consent do not bound the match).
//!
//! Deterministic, as HRex asks of implementations that require a member id:
//! 1. the member or subscriber id (`CoverageToMatch.subscriberId` and
//!    `identifier[].value`) finds Coverages by `identifier` (no id: no match);
//! 2. each Coverage's `payor` must agree with `CoverageToMatch.payor` when
//!    that names one (reference, identifier value, or name, also through a
//!    contained Organization);
//! 3. the Coverage's beneficiary must agree with `MemberPatient`: family
//!    name and (when given) first given name, case-insensitive, birth date,
//!    gender when given, and no identifier of a shared system with another
//!    value.
//!
//! Exactly one distinct Patient is a match; none or several are not.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, Interaction},
    upstream::RequestContext,
    AppState,
};

/// What the matcher found.
#[derive(Debug, Clone)]
pub enum Found {
    /// Exactly one member: the Patient and the Coverage that matched.
    One {
        /// The member's Patient.
        patient: Value,
        /// The Coverage that matched `CoverageToMatch`.
        coverage: Value,
    },
    /// Nobody.
    None,
    /// This many distinct members.
    Several(usize),
}

/// Validates the demographic minimum of `MemberPatient` (400 naming it).
pub fn validate_patient(patient: &Value, part: &str) -> FhirResult<()> {
    if family_names(patient).is_empty() {
        return Err(FhirError::bad_request(format!(
            "parameter {part}: Patient.name with a family name is required"
        )));
    }
    if patient["birthDate"].as_str().is_none() {
        return Err(FhirError::bad_request(format!(
            "parameter {part}: Patient.birthDate is required"
        )));
    }
    Ok(())
}

/// Member and subscriber ids of a Coverage.
pub fn member_ids(coverage: &Value) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    if let Some(s) = coverage["subscriberId"].as_str() {
        ids.push(s.to_owned());
    }
    for i in coverage["identifier"].as_array().into_iter().flatten() {
        if let Some(v) = i["value"].as_str() {
            ids.push(v.to_owned());
        }
    }
    ids.retain(|s| !s.trim().is_empty());
    ids.sort();
    ids.dedup();
    ids
}

/// Runs the match.
pub async fn find(
    app: &AppState,
    ctx: &RequestContext,
    patient: &Value,
    coverage: &Value,
) -> FhirResult<Found> {
    let mut payors = PayorCache::default();
    let mut found: BTreeMap<String, (Value, Value)> = BTreeMap::new();
    for id in member_ids(coverage) {
        for candidate in search(app, ctx, "Coverage", &[("identifier", id.as_str())]).await? {
            if !payors.agrees(app, ctx, coverage, &candidate).await? {
                continue;
            }
            let Some(member) = candidate["beneficiary"]["reference"].as_str() else {
                continue;
            };
            let Some(pid) = member.strip_prefix("Patient/") else {
                continue;
            };
            if found.contains_key(pid) {
                continue;
            }
            let Some(stored) = read(app, ctx, "Patient", pid).await? else {
                continue;
            };
            if demographics_agree(patient, &stored) {
                found.insert(pid.to_owned(), (stored, candidate.clone()));
            }
        }
    }
    Ok(match found.len() {
        0 => Found::None,
        1 => match found.into_values().next() {
            Some((patient, coverage)) => Found::One { patient, coverage },
            None => Found::None,
        },
        n => Found::Several(n),
    })
}

/// A search in the upstream as the system: the resources of the first page
/// (up to 100 matches; more is "several" for any caller here).
pub async fn search(
    app: &AppState,
    ctx: &RequestContext,
    rtype: &str,
    params: &[(&str, &str)],
) -> FhirResult<Vec<Value>> {
    let mut req = FhirRequest::new(Interaction::SearchType);
    req.resource_type = Some(rtype.to_owned());
    req.params = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    req.params.push(("_count".into(), "100".into()));
    let resp = app.upstream.execute(&req, ctx).await?;
    Ok(resp
        .body
        .and_then(|b| b.get("entry").cloned())
        .and_then(|e| e.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["search"]["mode"] != "include")
        .map(|e| e["resource"].clone())
        .filter(|r| r["resourceType"] == rtype)
        .collect())
}

/// A read in the upstream as the system; None when missing or deleted.
pub async fn read(
    app: &AppState,
    ctx: &RequestContext,
    rtype: &str,
    id: &str,
) -> FhirResult<Option<Value>> {
    let mut req = FhirRequest::new(Interaction::Read);
    req.resource_type = Some(rtype.to_owned());
    req.id = Some(id.to_owned());
    match app.upstream.execute(&req, ctx).await {
        Ok(r) => Ok(r.body),
        Err(e) if matches!(e.status.as_u16(), 404 | 410) => Ok(None),
        Err(e) => Err(e),
    }
}

fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

fn family_names(p: &Value) -> Vec<(String, Option<String>)> {
    p["name"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let family = lower(n["family"].as_str()?);
            let given = n["given"][0].as_str().map(lower);
            (!family.is_empty()).then_some((family, given))
        })
        .collect()
}

/// Whether the stored Patient agrees with the described one.
pub fn demographics_agree(described: &Value, stored: &Value) -> bool {
    let theirs = family_names(described);
    let ours = family_names(stored);
    let name_ok = theirs.iter().any(|(f, g)| {
        ours.iter().any(|(of, og)| {
            of == f
                && match (g, og) {
                    (Some(g), Some(og)) => g == og,
                    (Some(_), None) => false,
                    (None, _) => true,
                }
        })
    });
    let birth_ok =
        described["birthDate"].as_str().is_some() && described["birthDate"] == stored["birthDate"];
    let gender_ok = described["gender"].as_str().is_none_or(|g| {
        stored["gender"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(g))
    });
    name_ok && birth_ok && gender_ok && identifiers_agree(described, stored)
}

/// No identifier system both sides use carries different values.
fn identifiers_agree(described: &Value, stored: &Value) -> bool {
    let ours: Vec<(&str, &str)> = pairs(stored);
    pairs(described).iter().all(|(sys, val)| {
        let same_system: Vec<&&str> = ours
            .iter()
            .filter(|(s, _)| s == sys)
            .map(|(_, v)| v)
            .collect();
        same_system.is_empty() || same_system.iter().any(|v| **v == *val)
    })
}

fn pairs(r: &Value) -> Vec<(&str, &str)> {
    r["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((i["system"].as_str()?, i["value"].as_str()?)))
        .collect()
}

/// What the described Coverage says about its payor: references,
/// identifier values and names (contained Organizations resolved).
fn described_payors(coverage: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut refs, mut ids, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for p in coverage["payor"].as_array().into_iter().flatten() {
        if let Some(r) = p["reference"].as_str() {
            if let Some(local) = r.strip_prefix('#') {
                let contained = coverage["contained"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["id"] == local);
                if let Some(org) = contained {
                    ids.extend(pairs(org).into_iter().map(|(_, v)| v.to_owned()));
                    if let Some(n) = org["name"].as_str() {
                        names.push(lower(n));
                    }
                }
            } else {
                refs.push(r.to_owned());
            }
        }
        if let Some(v) = p["identifier"]["value"].as_str() {
            ids.push(v.to_owned());
        }
        if let Some(d) = p["display"].as_str() {
            names.push(lower(d));
        }
    }
    (refs, ids, names)
}

/// Payor Organizations read once per match.
#[derive(Default)]
struct PayorCache {
    orgs: BTreeMap<String, Option<Value>>,
}

impl PayorCache {
    /// Whether `candidate`'s payor is the one `described` names (true when
    /// `described` names none).
    async fn agrees(
        &mut self,
        app: &AppState,
        ctx: &RequestContext,
        described: &Value,
        candidate: &Value,
    ) -> FhirResult<bool> {
        let (refs, ids, names) = described_payors(described);
        if refs.is_empty() && ids.is_empty() && names.is_empty() {
            return Ok(true);
        }
        for p in candidate["payor"].as_array().into_iter().flatten() {
            let Some(r) = p["reference"].as_str() else {
                continue;
            };
            if refs.iter().any(|x| x == r || x.ends_with(&format!("/{r}"))) {
                return Ok(true);
            }
            if p["display"]
                .as_str()
                .is_some_and(|d| names.contains(&lower(d)))
            {
                return Ok(true);
            }
            let Some(("Organization", id)) = r.split_once('/') else {
                continue;
            };
            if !self.orgs.contains_key(id) {
                let org = read(app, ctx, "Organization", id).await?;
                self.orgs.insert(id.to_owned(), org);
            }
            if let Some(Some(org)) = self.orgs.get(id) {
                if pairs(org).iter().any(|(_, v)| ids.iter().any(|i| i == v)) {
                    return Ok(true);
                }
                if org["name"]
                    .as_str()
                    .is_some_and(|n| names.contains(&lower(n)))
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}
