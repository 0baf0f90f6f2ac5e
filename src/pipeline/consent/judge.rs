//! One request's consent judge ([`Session`]): who asks and why, the Consents
//! and jurisdiction keys of every patient the answer touches (loaded once per
//! answer, [`Session::prepare`]), and the decision for each resource
//! ([`Session::judge`]), shaped for release (tags stripped, obligations
//! added, redaction applied) and recorded in the request's [`Disclosure`].
//!
//! A resource is judged for every patient it is about (its Patient-
//! compartment references; a Patient is about itself); the strictest
//! decision wins (deny > redact > break-the-glass > permit). A resource
//! about nobody is judged as not patient data (jurisdiction rules still
//! apply). Special cases:
//! - `Consent`: readable only by its patient, a delegate named in
//!   `Consent.performer`, and consent administrators (`system/Consent.*`
//!   scopes or the `admin` role);
//! - `Provenance`: inherits the decision on each `target` (any target hidden
//!   or unreadable hides it);
//! - `Binary`: inherits the decision on its `securityContext`.
//!
//! An active Consent the index cannot read makes every decision for its
//! patient a deny (fail closed).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;
use smart_launch::context::AccessContext;

use crate::{
    consent::{
        decide, index::PatientConsents, policy::patient_state, redact, Action, Basis,
        DecisionInput, Effect, Requester, Sensitivity,
    },
    error::FhirResult,
    fhir::{FhirRequest, Reference},
    pipeline::disclosure::{ConsentNote, Disclosure},
    search::{compartment::patient_compartment_params, extract::walk, find_param},
    upstream::RequestContext,
    AppState,
};

/// The outcome for one resource.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The resource as it may be released; `None` = hidden.
    pub released: Option<Value>,
    /// Effect name (`permit`, `deny`, `redact`, `break-the-glass`).
    pub effect: &'static str,
    /// What decided, in words.
    pub basis: String,
    /// The deciding Consent (`Consent/c1 v3`), if one decided.
    pub consent: Option<String>,
    /// The patients the resource is about.
    pub patients: Vec<String>,
    /// Whether the released bytes differ from the stored ones.
    pub changed: bool,
}

/// What [`Session::verdict`] found.
enum Verdict {
    /// Hidden (`released` is `None`): nothing to shape.
    Done(Judged),
    /// Released, once shaped (boxed: a decision is large).
    Release(Box<Release>),
}

/// A released resource's decision, before shaping.
struct Release {
    judged: Judged,
    decision: crate::consent::Decision,
    redact: BTreeSet<Sensitivity>,
}

impl Release {
    /// Shapes `out` for release in place; whether its bytes changed.
    fn shape(&self, out: &mut Value) -> bool {
        let d = &self.decision;
        if let Effect::Redact(_) = d.effect {
            // rare: compare, rather than track every removal of the redaction
            let before = out.clone();
            redact::redact(out, &self.redact);
            redact::strip_sensitivity_tags(out, &d.cleared);
            redact::add_obligations(out, &d.obligations);
            return *out != before;
        }
        let stripped = redact::strip_sensitivity_tags(out, &d.cleared);
        let obliged = redact::add_obligations(out, &d.obligations);
        stripped || obliged
    }

    fn finish(self: Box<Self>, released: Value, changed: bool) -> Judged {
        Judged {
            released: Some(released),
            changed,
            ..self.judged
        }
    }
}

/// One request's judge.
pub struct Session<'a> {
    app: &'a AppState,
    ctx: &'a RequestContext,
    /// Who asks.
    pub requester: Requester,
    /// Stated purpose (request header, else token claim).
    pub purpose: Option<String>,
    /// Break-the-glass reason.
    pub reason: Option<String>,
    consent_admin: bool,
    consents: HashMap<String, Arc<PatientConsents>>,
    states: HashMap<String, Option<String>>,
    /// Resources other resources inherit decisions from (Provenance
    /// targets, Binary security contexts), by `Type/id`.
    targets: HashMap<String, Option<Value>>,
    now: i64,
}

impl<'a> Session<'a> {
    /// A judge for one caller and request.
    pub fn new(
        app: &'a AppState,
        ctx: &'a RequestContext,
        caller: &AccessContext,
        req: &FhirRequest,
    ) -> Self {
        let consent_admin = caller.role.as_deref() == Some("admin")
            || caller.scopes.resource_scopes().any(|s| {
                s.context == smart_launch::scope::ScopeContext::System
                    && s.resource_type.as_deref() == Some("Consent")
            });
        Self {
            app,
            ctx,
            // the caller's organization: the token's (the signed-in user's,
            // fixed at issuance), else a Backend Services client mapped to
            // one (`[payer] provider_clients`)
            requester: Requester::from_access(caller, app.organization_of(caller)),
            purpose: req
                .purpose_of_use
                .clone()
                .or_else(|| caller.purpose_of_use.clone()),
            reason: req.break_glass_reason.clone(),
            consent_admin,
            consents: HashMap::new(),
            states: HashMap::new(),
            targets: HashMap::new(),
            now: crate::oauth::now(),
        }
    }

    /// The patient the caller is, when the caller is a patient user.
    pub fn self_patient(&self) -> Option<&str> {
        self.requester
            .fhir_user
            .as_deref()
            .filter(|u| u.starts_with("Patient/"))
    }

    /// Loads what judging `resources` needs: inherited targets, then every
    /// patient's Consents (one index query) and jurisdiction key.
    pub async fn prepare(&mut self, resources: &[&Value]) -> FhirResult<()> {
        let mut wanted: Vec<String> = Vec::new();
        for r in resources {
            for t in inherited_targets(r, &self.ctx.base) {
                if !self.targets.contains_key(&t) && !wanted.contains(&t) {
                    wanted.push(t);
                }
            }
        }
        for t in wanted {
            let body = self.read(&t).await?;
            self.targets.insert(t, body);
        }
        let mut patients: BTreeSet<String> = BTreeSet::new();
        for r in resources {
            patients.extend(patients_of(r, &self.ctx.base));
            if is_patient(r) {
                if let Some(id) = r["id"].as_str() {
                    let key = format!("Patient/{id}");
                    let st = patient_state(r);
                    self.app.consent.remember_state(&key, st.clone());
                    self.states.insert(key, st);
                }
            }
        }
        for t in self.targets.values().flatten() {
            patients.extend(patients_of(t, &self.ctx.base));
        }
        let missing: Vec<String> = patients
            .iter()
            .filter(|p| !self.consents.contains_key(*p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let loaded = self.app.consent.index.for_patients(&missing).await?;
            self.consents.extend(loaded);
        }
        for p in &patients {
            if self.states.contains_key(p) {
                continue;
            }
            let st = match self.app.consent.cached_state(p) {
                Some(s) => s,
                None => {
                    let s = self.read(p).await?.as_ref().and_then(patient_state);
                    self.app.consent.remember_state(p, s.clone());
                    s
                }
            };
            self.states.insert(p.clone(), st);
        }
        Ok(())
    }

    /// Reads `Type/id` from the upstream; missing or gone is `None`.
    async fn read(&self, reference: &str) -> FhirResult<Option<Value>> {
        match Reference::parse(reference, None) {
            Some(r) => super::write::current(self.app, self.ctx, &r.resource_type, &r.id).await,
            None => Ok(None),
        }
    }

    /// Judges one resource for reading (after [`Self::prepare`]).
    pub fn judge(&self, resource: &Value) -> Judged {
        self.judge_as(resource, Action::Read, 0)
    }

    /// [`Self::judge`] for counting: the same decision, but a released
    /// resource is not shaped for release (`released` is `Some(Null)`,
    /// `changed` false): a count needs the decision, not the bytes.
    pub fn judge_count(&self, resource: &Value) -> Judged {
        self.judge_shaped(resource, Action::Read, 0, false)
    }

    /// Judges one resource for writing (the body about to be stored).
    pub fn judge_write(&self, resource: &Value) -> Judged {
        self.judge_as(resource, Action::Write, 0)
    }

    fn judge_as(&self, resource: &Value, action: Action, depth: u8) -> Judged {
        self.judge_shaped(resource, action, depth, true)
    }

    fn judge_shaped(&self, resource: &Value, action: Action, depth: u8, shape: bool) -> Judged {
        match self.verdict(resource, action, depth) {
            Verdict::Done(j) => j,
            Verdict::Release(r) if !shape => r.finish(Value::Null, false),
            Verdict::Release(r) => {
                let mut out = resource.clone();
                let changed = r.shape(&mut out);
                r.finish(out, changed)
            }
        }
    }

    /// [`Self::judge`] of a resource the caller hands over: shaped in place
    /// and released without a copy (a search page's matches).
    pub fn release(&self, resource: Value) -> Judged {
        match self.verdict(&resource, Action::Read, 0) {
            Verdict::Done(j) => j,
            Verdict::Release(r) => {
                let mut out = resource;
                let changed = r.shape(&mut out);
                r.finish(out, changed)
            }
        }
    }

    /// The decision about one resource: hidden, or released (to be shaped).
    fn verdict(&self, resource: &Value, action: Action, depth: u8) -> Verdict {
        let patients = patients_of(resource, &self.ctx.base);
        let rtype = resource["resourceType"].as_str().unwrap_or_default();
        if rtype == "Consent" && !self.may_see_consent(resource, &patients) {
            return Verdict::Done(hidden(
                patients,
                "consent resources are private to the patient",
            ));
        }
        let inherited = inherited_targets(resource, &self.ctx.base);
        if !inherited.is_empty() && depth == 0 {
            for t in &inherited {
                let verdict = match self.targets.get(t) {
                    Some(Some(body)) => self.judge_as(body, action, depth + 1),
                    _ => hidden(Vec::new(), "what it points to is not available"),
                };
                if verdict.released.is_none() {
                    return Verdict::Done(hidden(
                        patients,
                        &format!("inherits from {}", verdict.basis),
                    ));
                }
            }
        }
        let class = self.app.consent.classify(resource);
        let subjects: Vec<Option<&str>> = if patients.is_empty() {
            vec![None]
        } else {
            patients.iter().map(|p| Some(p.as_str())).collect()
        };
        let mut worst: Option<(u8, crate::consent::Decision)> = None;
        let mut redact_cats: BTreeSet<Sensitivity> = BTreeSet::new();
        for p in subjects {
            let consents = p.and_then(|p| self.consents.get(p));
            if let Some(pc) = consents {
                if let Some(u) = pc.unreadable.iter().find(|u| u.may_be_active()) {
                    return Verdict::Done(hidden(
                        patients.clone(),
                        &format!("Consent/{} cannot be read (fail closed)", u.consent_id),
                    ));
                }
            }
            let models = consents.map(|c| c.consents.as_slice()).unwrap_or(&[]);
            let input = DecisionInput {
                class: &class,
                patient: p,
                patient_state: p
                    .and_then(|p| self.states.get(p))
                    .and_then(|s| s.as_deref()),
                requester: &self.requester,
                purpose: self.purpose.as_deref(),
                reason: self.reason.as_deref(),
                action,
                now: self.now,
            };
            let d = decide(&input, models, &self.app.consent.policy);
            let rank = match &d.effect {
                Effect::Deny => 3,
                Effect::Redact(c) => {
                    redact_cats.extend(c.iter().copied());
                    2
                }
                Effect::BreakTheGlass => 1,
                Effect::Permit => 0,
            };
            if worst.as_ref().is_none_or(|(r, _)| rank > *r) {
                worst = Some((rank, d));
            }
        }
        let Some((_, d)) = worst else {
            return Verdict::Done(hidden(patients, "no decision"));
        };
        let (basis, consent) = describe(&d.basis);
        let effect = match &d.effect {
            Effect::Permit => "permit",
            Effect::Deny => "deny",
            Effect::Redact(_) => "redact",
            Effect::BreakTheGlass => "break-the-glass",
        };
        let judged = Judged {
            released: None,
            effect,
            basis,
            consent,
            patients,
            changed: false,
        };
        if d.effect == Effect::Deny {
            return Verdict::Done(judged);
        }
        Verdict::Release(Box::new(Release {
            judged,
            decision: d,
            redact: redact_cats,
        }))
    }

    fn may_see_consent(&self, consent: &Value, patients: &[String]) -> bool {
        if self.consent_admin {
            return true;
        }
        if let Some(me) = self.self_patient() {
            if patients.iter().any(|p| p == me) {
                return true;
            }
        }
        let Some(user) = self.requester.fhir_user.as_deref() else {
            return false;
        };
        consent["performer"].as_array().is_some_and(|ps| {
            ps.iter()
                .filter_map(|p| p["reference"].as_str())
                .any(|r| normalize(r, &self.ctx.base).as_deref() == Some(user))
        })
    }
}

/// Records a judgement in the request's disclosure.
pub fn record(d: &mut Disclosure, j: &Judged, reference: Option<&str>) {
    crate::observability::metrics::registry().consent_decision(j.effect);
    let note = |resources| ConsentNote {
        effect: j.effect.to_owned(),
        basis: j.basis.clone(),
        consent: j.consent.clone(),
        resources,
    };
    if j.patients.is_empty() {
        if let (Some(r), Some(_)) = (reference, &j.released) {
            d.other.push(r.to_owned());
        }
        return;
    }
    for p in &j.patients {
        match (&j.released, reference) {
            (Some(_), Some(r)) => d.patient(p).released.push(r.to_owned()),
            (Some(_), None) => {}
            (None, _) => d.patient(p).withheld += 1,
        }
        d.note(p, note(1));
    }
}

/// Hidden, about nobody known (a deletion whose resource cannot be read).
pub fn hidden_public() -> Judged {
    hidden(Vec::new(), "no readable version")
}

fn hidden(patients: Vec<String>, why: &str) -> Judged {
    Judged {
        released: None,
        effect: "deny",
        basis: why.to_owned(),
        consent: None,
        patients,
        changed: false,
    }
}

/// The basis in words, and the deciding Consent as a versioned reference
/// (`Consent/c1/_history/3`) when a Consent decided.
fn describe(b: &Basis) -> (String, Option<String>) {
    match b {
        Basis::Consent { consent, .. } => {
            let reference = match consent.split_once(" v") {
                Some((c, v)) => format!("{c}/_history/{v}"),
                None => consent.clone(),
            };
            (b.to_string(), Some(reference))
        }
        other => (other.to_string(), None),
    }
}

fn is_patient(r: &Value) -> bool {
    r["resourceType"] == "Patient"
}

/// `Type/id` of a reference, relative or under the facade base; other
/// absolute references and `urn:` references give `None`.
pub fn normalize(reference: &str, base: &str) -> Option<String> {
    let rel = match reference.strip_prefix(base.trim_end_matches('/')) {
        Some(rest) => rest.trim_start_matches('/'),
        None if reference.contains("://") || reference.starts_with("urn:") => return None,
        None => reference,
    };
    let rel = rel.split("/_history/").next().unwrap_or(rel);
    Reference::parse(rel, None).map(|r| format!("{}/{}", r.resource_type, r.id))
}

/// The patients (`Patient/<id>`) a resource is about: itself for a Patient,
/// else the Patient references in its Patient-compartment parameters, or in
/// `subject`/`patient`/`beneficiary` for compartment types without search
/// parameters in our table.
pub fn patients_of(resource: &Value, base: &str) -> Vec<String> {
    let rtype = resource["resourceType"].as_str().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    if rtype == "Patient" {
        if let Some(id) = resource["id"].as_str() {
            out.push(format!("Patient/{id}"));
        }
        return out;
    }
    let mut push = |v: &Value| {
        let r = v.as_str().or_else(|| v["reference"].as_str());
        if let Some(n) = r.and_then(|r| normalize(r, base)) {
            if n.starts_with("Patient/") && !out.contains(&n) {
                out.push(n);
            }
        }
    };
    let params = patient_compartment_params(rtype);
    if params.is_empty() {
        for key in ["subject", "patient", "beneficiary"] {
            match &resource[key] {
                Value::Array(items) => items.iter().for_each(&mut push),
                Value::Null => {}
                v => push(v),
            }
        }
    } else {
        for def in params.iter().filter_map(|p| find_param(rtype, p)) {
            for path in def.paths {
                walk(resource, path).into_iter().for_each(&mut push);
            }
        }
    }
    out
}

/// What a resource inherits its decision from: Provenance targets, a
/// Binary's securityContext (`Type/id`, normalised).
pub fn inherited_targets(resource: &Value, base: &str) -> Vec<String> {
    let refs: Vec<&Value> = match resource["resourceType"].as_str() {
        Some("Provenance") => resource["target"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some("Binary") => vec![&resource["securityContext"]],
        _ => Vec::new(),
    };
    refs.into_iter()
        .filter_map(|v| v["reference"].as_str())
        .filter_map(|r| normalize(r, base))
        .collect()
}
