//! What a de-identified `$export` adds to the bulk machinery: the kick-off
//! parameters and their gate (secondary-use purpose, the client's allowance,
//! a known profile and key set), and per job the research-consent gate and
//! the de-identification of every released resource before it is written.
//!
//! Order per batch: scopes and consent (the bulk release, with the stated
//! purpose, so `research` Consents apply) → the research gate (whose data
//! enters at all) → de-identification → the NDJSON line. Deletions
//! (`_since` at system level) are not reported by a de-identified export:
//! a deletion names a real resource id.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smart_launch::context::AccessContext;

use super::{
    config::{DeidConfig, ResearchPolicy},
    Deidentifier,
};
use crate::{
    bulk::jobs::Job,
    consent::{
        index::PatientConsents,
        model::{ConsentScope, ConsentStatus, ProvisionType},
    },
    error::{FhirError, FhirResult, IssueType},
    pipeline::{
        consent::judge::patients_of,
        disclosure::{ConsentNote, Disclosure},
    },
    AppState,
};

/// The kick-off parameter naming the profile (as Azure Health Data
/// Services' anonymized export names its configuration).
pub const PROFILE_PARAM: &str = "_anonymizationConfig";
/// The kick-off parameter naming the key set (pseudonyms stable across
/// exports with the same key set); absent: a key of this export only.
pub const KEY_SET_PARAM: &str = "_anonymizationKeySet";
/// The manifest extension naming the profile applied.
pub const PROFILE_EXTENSION: &str = "https://fhirgate.dev/fhir/bulk/deidentification-profile";

/// A de-identified export's request, kept in the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeidSpec {
    /// Profile name.
    pub profile: String,
    /// Named key set (None: a key of this export only).
    #[serde(default)]
    pub key_set: Option<String>,
    /// The secondary-use purpose stated at kick-off.
    pub purpose: String,
    /// The security tag every resource carries: `PSEUDED` under a named
    /// (reused) key set, whose pseudonyms link across exports, else `ANONYED`.
    #[serde(default)]
    pub security: String,
}

fn forbidden(msg: String) -> FhirError {
    FhirError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, msg)
}

/// Checks a de-identified kick-off: the caller states a secondary-use
/// purpose (`X-Purpose-Of-Use`, else the token's) that `[deid] purposes`
/// lists and its `[deid.clients]` entry allows; the profile is loaded (and
/// allowed to it); a named key set is declared and allowed to it. 400 for
/// an unknown profile or key set, 403 for a caller without the purpose.
pub fn authorize(
    app: &AppState,
    caller: &AccessContext,
    stated: Option<&str>,
    profile: &str,
    key_set: Option<&str>,
) -> FhirResult<DeidSpec> {
    let cfg: &DeidConfig = &app.config.deid;
    let registry = &app.bulk.deid;
    if registry.profile(profile).is_none() {
        let known: Vec<&str> = registry.names().collect();
        return Err(FhirError::bad_request(format!(
            "{PROFILE_PARAM} '{profile}' is not a de-identification profile here (known: {})",
            known.join(", ")
        )));
    }
    let purposes = cfg.purposes.join(", ");
    let Some(purpose) = stated.filter(|p| cfg.purposes.iter().any(|q| q == p)) else {
        return Err(forbidden(format!(
            "a de-identified export is for secondary use: state one of {purposes} as the purpose of use (X-Purpose-Of-Use)"
        )));
    };
    let Some(client) = cfg.clients.get(&caller.client_id) else {
        return Err(forbidden(format!(
            "client '{}' is not registered for secondary use ([deid.clients])",
            caller.client_id
        )));
    };
    if !client.purposes.iter().any(|p| p == purpose) {
        return Err(forbidden(format!(
            "client '{}' may not state purpose {purpose}",
            caller.client_id
        )));
    }
    if !client.profiles.is_empty() && !client.profiles.iter().any(|p| p == profile) {
        return Err(forbidden(format!(
            "client '{}' may not use profile '{profile}'",
            caller.client_id
        )));
    }
    if let Some(k) = key_set {
        if !cfg.key_sets.contains_key(k) {
            return Err(FhirError::bad_request(format!(
                "{KEY_SET_PARAM} '{k}' is not a declared key set"
            )));
        }
        if !client.key_sets.iter().any(|c| c == k) {
            return Err(forbidden(format!(
                "client '{}' may not use key set '{k}'",
                caller.client_id
            )));
        }
    }
    Ok(DeidSpec {
        profile: profile.to_owned(),
        key_set: key_set.map(str::to_owned),
        purpose: purpose.to_owned(),
        security: Deidentifier::tag(key_set.is_some()).to_owned(),
    })
}

/// The de-identification of one running job.
pub struct Deidentification {
    engine: Deidentifier,
    policy: ResearchPolicy,
    base: String,
    /// What each batch's audit entry records (profile and key set).
    audit_params: Vec<(String, String)>,
}

impl std::fmt::Debug for Deidentification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deidentification")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Deidentification {
    /// The job's de-identifier (None: a plain export). An error when the
    /// profile or key is gone since kick-off (the job fails, writes nothing).
    pub fn open(app: &AppState, job: &Job) -> Result<Option<Self>, String> {
        let Some(spec) = &job.spec.deid else {
            return Ok(None);
        };
        let registry = &app.bulk.deid;
        let (key, stable) = match &spec.key_set {
            Some(k) => (registry.named_key(k).map_err(|e| e.to_string())?, true),
            None => (registry.job_key(&job.id).map_err(|e| e.to_string())?, false),
        };
        Self::with_key(app, spec, key, stable).map(Some)
    }

    /// The de-identifier of `spec` under `key` (`stable`: reused across
    /// exports or searches, so tagged `PSEUDED`).
    pub fn with_key(
        app: &AppState,
        spec: &DeidSpec,
        key: [u8; 32],
        stable: bool,
    ) -> Result<Self, String> {
        let profile =
            app.bulk.deid.profile(&spec.profile).ok_or_else(|| {
                format!("de-identification profile '{}' is not loaded", spec.profile)
            })?;
        let today = time::OffsetDateTime::now_utc().date();
        let mut audit_params = vec![(PROFILE_PARAM.to_owned(), spec.profile.clone())];
        if let Some(k) = &spec.key_set {
            audit_params.push((KEY_SET_PARAM.to_owned(), k.clone()));
        }
        Ok(Self {
            engine: Deidentifier::new(profile, key, stable, today),
            policy: app.config.deid.research_consent,
            base: app.config.fhir_base(),
            audit_params,
        })
    }

    /// The research gate, then de-identification, in place: drops the
    /// items (`resource_of` finds each one's resource) about patients whose
    /// research choice keeps them out of secondary use, de-identifies the
    /// rest, and corrects the disclosure `d` already filled by the release,
    /// so the ledger records the kept-out patients' resources as withheld
    /// (with the gate as the deciding basis), never as disclosed. Returns
    /// how many were dropped.
    pub async fn process<T>(
        &self,
        app: &AppState,
        items: &mut Vec<T>,
        resource_of: impl Fn(&mut T) -> &mut Value,
        d: &mut Disclosure,
    ) -> Result<u64, String> {
        let about: Vec<Vec<String>> = items
            .iter_mut()
            .map(|i| patients_of(resource_of(i), &self.base))
            .collect();
        let mut patients: Vec<String> = about.iter().flatten().cloned().collect();
        patients.sort();
        patients.dedup();
        let out = self.kept_out(app, &patients).await?;
        let before = items.len();
        let mut kept = Vec::with_capacity(before);
        for (mut item, about) in std::mem::take(items).into_iter().zip(about) {
            if about.iter().any(|p| out.contains(p)) {
                continue;
            }
            let patient = about.first().and_then(|p| p.strip_prefix("Patient/"));
            self.engine.apply(resource_of(&mut item), patient);
            kept.push(item);
        }
        *items = kept;
        let basis = match self.policy {
            ResearchPolicy::OptOut => "research consent: opted out of secondary use",
            ResearchPolicy::OptIn => "research consent: no opt-in to secondary use",
        };
        for p in out {
            let touch = d.patients.entry(p).or_default();
            let n = std::mem::take(&mut touch.released).len();
            touch.withheld += n;
            touch.decisions.push(ConsentNote {
                effect: "deny".into(),
                basis: basis.into(),
                consent: None,
                resources: n,
            });
        }
        Ok((before - items.len()) as u64)
    }

    /// The patients (`Patient/<id>`) among `patients` the research gate
    /// keeps out.
    async fn kept_out(&self, app: &AppState, patients: &[String]) -> Result<Vec<String>, String> {
        if patients.is_empty() {
            return Ok(Vec::new());
        }
        let consents = app
            .consent
            .index
            .for_patients(patients)
            .await
            .map_err(|e| format!("research consent: {e}"))?;
        let now = crate::oauth::now();
        Ok(patients
            .iter()
            .filter(|p| {
                !consents
                    .get(*p)
                    .map_or(self.policy == ResearchPolicy::OptOut, |c| {
                        admits(c, self.policy, now)
                    })
            })
            .cloned()
            .collect())
    }

    /// The parameters each batch's audit entry adds to its query: the
    /// profile and key set (the purpose is the entry's purpose of use).
    pub fn audit_params(&self) -> &[(String, String)] {
        &self.audit_params
    }
}

/// Whether a patient's data may enter a de-identified export: an active
/// `research` Consent in force whose root decision is deny keeps it out
/// (deny overrides permit), a permitting one lets it in, none leaves it to
/// the deployment's policy. A research Consent that cannot be read but may
/// be active keeps it out (fail closed).
pub fn admits(c: &PatientConsents, policy: ResearchPolicy, now: i64) -> bool {
    if c.has_unreadable_active() {
        return false;
    }
    let mut permit = false;
    for m in &c.consents {
        let in_force = m.status == ConsentStatus::Active
            && m.scope == ConsentScope::Research
            && m.period().is_none_or(|p| p.contains(now));
        if !in_force {
            continue;
        }
        match m.provision.as_ref().and_then(|p| p.kind) {
            Some(ProvisionType::Deny) => return false,
            Some(ProvisionType::Permit) => permit = true,
            None => {}
        }
    }
    permit || policy == ResearchPolicy::OptOut
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;
    use crate::consent::parse::parse_consent;

    fn consents(list: &[Value]) -> PatientConsents {
        PatientConsents {
            patient: "Patient/p1".into(),
            generation: 1,
            consents: list.iter().map(|c| parse_consent(c).unwrap()).collect(),
            unreadable: Vec::new(),
        }
    }

    fn research(kind: &str, status: &str) -> Value {
        json!({"resourceType": "Consent", "id": format!("r-{kind}"), "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "57016-8"}]}],
            "patient": {"reference": "Patient/p1"},
            "provision": {"type": kind}})
    }

    #[test]
    fn research_gate_per_policy() {
        let now = 1_700_000_000;
        let none = consents(&[]);
        assert!(admits(&none, ResearchPolicy::OptOut, now));
        assert!(!admits(&none, ResearchPolicy::OptIn, now));
        let yes = consents(&[research("permit", "active")]);
        assert!(admits(&yes, ResearchPolicy::OptIn, now));
        let no = consents(&[research("deny", "active")]);
        assert!(!admits(&no, ResearchPolicy::OptOut, now));
        let both = consents(&[research("permit", "active"), research("deny", "active")]);
        assert!(!admits(&both, ResearchPolicy::OptIn, now), "deny overrides");
        let inactive = consents(&[research("deny", "inactive")]);
        assert!(admits(&inactive, ResearchPolicy::OptOut, now));
    }
}
