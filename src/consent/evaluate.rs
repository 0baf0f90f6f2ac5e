//! The decision for one resource and one request: [`decide`].

use std::collections::BTreeSet;
use std::fmt;

use super::classify::{Classification, Sensitivity};
use super::matching::{combine, evaluate, Facts, Hit, Verdict};
use super::model::{ConsentModel, ConsentScope, ConsentStatus};
use super::policy::{BasePolicy, Policy};

/// Read (access/use/disclose) or write (collect/correct).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Any read interaction.
    Read,
    /// Create, update, patch, delete.
    Write,
}

impl Action {
    fn consent_actions(self) -> &'static [&'static str] {
        match self {
            Self::Read => &["access", "use", "disclose"],
            Self::Write => &["collect", "correct"],
        }
    }
}

/// Who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    /// OAuth client id (matched by provisions as `Device/<client_id>`).
    pub client_id: String,
    /// fhirUser reference, e.g. `Practitioner/7` or `Patient/1`.
    pub fhir_user: Option<String>,
    /// Role (`clinician`, `patient`, `admin`).
    pub role: Option<String>,
    /// Organization reference, if any.
    pub organization: Option<String>,
}

impl Requester {
    /// The requester of a validated access token, acting for `organization`
    /// (the token's, else a configured client mapping; see
    /// `pipeline::consent::judge`).
    pub fn from_access(
        ctx: &smart_launch::context::AccessContext,
        organization: Option<String>,
    ) -> Self {
        Self {
            client_id: ctx.client_id.clone(),
            fhir_user: ctx.fhir_user.clone(),
            role: ctx.role.clone(),
            organization,
        }
    }
}

/// Everything [`decide`] needs about one resource and one request.
#[derive(Debug, Clone)]
pub struct DecisionInput<'a> {
    /// The resource's classification (see `classify`).
    pub class: &'a Classification,
    /// The patient the resource is about, `Patient/<id>`.
    pub patient: Option<&'a str>,
    /// `Patient.address.state` of that patient.
    pub patient_state: Option<&'a str>,
    /// The requester.
    pub requester: &'a Requester,
    /// Stated purpose of use (v3-ActReason code); `None` → default.
    pub purpose: Option<&'a str>,
    /// Break-the-glass reason (mandatory for break-the-glass).
    pub reason: Option<&'a str>,
    /// Read or write.
    pub action: Action,
    /// Now, Unix seconds.
    pub now: i64,
}

/// What happens to the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Release as is (after tag stripping and obligations).
    Permit,
    /// The resource is absent.
    Deny,
    /// Release redacted (`redact::redact` with these categories).
    Redact(BTreeSet<Sensitivity>),
    /// Released under break-the-glass: audit flagged, patient notified.
    BreakTheGlass,
}

/// What produced a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// The patient reading their own record.
    SelfAccess,
    /// The resource is about no patient: Consents and the base policy do
    /// not apply (scopes do); jurisdiction rules still do.
    NotPatientData,
    /// A Consent provision: `Consent/c1 v3` and `provision.provision[1]`.
    Consent {
        /// Consent id and version.
        consent: String,
        /// Provision path.
        path: String,
    },
    /// The deployment base policy.
    BasePolicy(BasePolicy),
    /// A jurisdiction rule.
    Rule {
        /// Pack id.
        pack: String,
        /// Rule id.
        rule: String,
    },
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SelfAccess => write!(f, "patient's own access"),
            Self::NotPatientData => write!(f, "not patient data"),
            Self::Consent { consent, path } => write!(f, "{consent} {path}"),
            Self::BasePolicy(BasePolicy::OptIn) => write!(f, "base policy opt-in"),
            Self::BasePolicy(BasePolicy::OptOut) => write!(f, "base policy opt-out"),
            Self::Rule { pack, rule } => write!(f, "{pack} rule {rule}"),
        }
    }
}

/// The decision and its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The effect.
    pub effect: Effect,
    /// What produced it.
    pub basis: Basis,
    /// Under break-the-glass: the deny that was overridden.
    pub overridden: Option<Basis>,
    /// Purpose of use the decision was made for.
    pub purpose: Option<String>,
    /// Obligation codes to add to the released resource.
    pub obligations: Vec<String>,
    /// Sensitivity tags the caller may see on it.
    pub cleared: BTreeSet<Sensitivity>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} by {}", self.effect, self.basis)?;
        if let Some(o) = &self.overridden {
            write!(f, " (overriding {o})")?;
        }
        Ok(())
    }
}

/// Purposes that ask for break-the-glass.
pub const BREAK_GLASS_PURPOSES: [&str; 2] = ["ETREAT", "BTG"];

/// Whether a Consent is in force for this request (status, scope, patient,
/// root period).
pub fn consent_applies(c: &ConsentModel, input: &DecisionInput<'_>, purpose: Option<&str>) -> bool {
    c.status == ConsentStatus::Active
        && match c.scope {
            ConsentScope::PatientPrivacy => true,
            ConsentScope::Research => purpose == Some("HRESCH"),
            ConsentScope::Other(_) => false,
        }
        && (c.patient.is_none() || c.patient.as_deref() == input.patient)
        && c.period().is_none_or(|p| p.contains(input.now))
}

/// Decide one resource for one request. See the module docs for the rules.
pub fn decide(input: &DecisionInput<'_>, consents: &[ConsentModel], policy: &Policy) -> Decision {
    let r = input.requester;
    let role = r.role.as_deref();
    let purpose = input.purpose.or_else(|| {
        role.filter(|x| policy.clinician_roles.iter().any(|c| c == x))
            .map(|_| "TREAT")
    });
    let mut d = Decision {
        effect: Effect::Permit,
        basis: Basis::SelfAccess,
        overridden: None,
        purpose: purpose.map(str::to_owned),
        obligations: Vec::new(),
        cleared: policy.clearance(role),
    };
    if input.patient.is_some() && r.fhir_user.as_deref() == input.patient {
        d.cleared = Sensitivity::ALL.into_iter().collect();
        return d;
    }
    let mut identities: Vec<String> = r
        .fhir_user
        .iter()
        .chain(r.organization.iter())
        .cloned()
        .collect();
    identities.push(format!("Device/{}", r.client_id));
    let facts = Facts {
        class: input.class,
        identities,
        actions: input.action.consent_actions(),
        purpose,
        now: input.now,
        sets: &policy.value_sets,
    };
    let hits: Vec<Hit> = consents
        .iter()
        .filter(|c| consent_applies(c, input, purpose))
        .filter_map(|c| {
            let root = c.provision.as_ref()?;
            let mut h = evaluate(root, &facts, &mut Vec::new(), &BTreeSet::new())?;
            h.consent = c.label();
            Some(h)
        })
        .collect();
    let mut named = BTreeSet::new();
    match combine(hits) {
        _ if input.patient.is_none() => d.basis = Basis::NotPatientData,
        Some(h) => {
            d.basis = Basis::Consent {
                consent: h.consent,
                path: h.path,
            };
            named = h.named;
            d.effect = match h.verdict {
                Verdict::Permit => Effect::Permit,
                Verdict::Deny => Effect::Deny,
                Verdict::Redact(c) => Effect::Redact(c),
            };
        }
        None => {
            d.basis = Basis::BasePolicy(policy.base);
            // The base policy governs disclosure; unmatched writes pass.
            d.effect = match (policy.base, input.action) {
                (BasePolicy::OptIn, Action::Read) => Effect::Deny,
                _ => Effect::Permit,
            };
        }
    }
    let mut cats = input.class.categories();
    cats.extend(input.class.inline.iter().copied());
    if input.action == Action::Read {
        apply_rules(&mut d, input.patient_state, purpose, &cats, &named, policy);
    }
    let may_break = role.is_some_and(|x| policy.break_glass_roles.iter().any(|b| b == x));
    if d.effect == Effect::Deny
        && purpose.is_some_and(|p| BREAK_GLASS_PURPOSES.contains(&p))
        && may_break
        && input.reason.is_some_and(|s| !s.trim().is_empty())
    {
        d.effect = Effect::BreakTheGlass;
        d.overridden = Some(d.basis.clone());
    }
    if d.effect != Effect::Deny {
        for pack in policy.packs_for(input.patient_state) {
            for rule in &pack.rules {
                if !rule.categories.is_empty() && rule.categories.iter().any(|c| cats.contains(c)) {
                    for o in &rule.obligations {
                        if !d.obligations.contains(o) {
                            d.obligations.push(o.clone());
                        }
                    }
                }
            }
        }
    }
    d
}

/// Jurisdiction rules: a release not backed by a (naming) Consent permit
/// becomes a deny for non-exempt purposes.
fn apply_rules(
    d: &mut Decision,
    state: Option<&str>,
    purpose: Option<&str>,
    cats: &BTreeSet<Sensitivity>,
    named: &BTreeSet<Sensitivity>,
    policy: &Policy,
) {
    if d.effect == Effect::Deny {
        return;
    }
    let by_consent = matches!(d.basis, Basis::Consent { .. });
    for pack in policy.packs_for(state) {
        for rule in &pack.rules {
            let covered =
                rule.categories.is_empty() || rule.categories.iter().any(|c| cats.contains(c));
            let exempt = purpose.is_some_and(|p| rule.exempt_purposes.iter().any(|e| e == p));
            if !covered || exempt {
                continue;
            }
            let names =
                !rule.consent_must_name || rule.categories.iter().any(|c| named.contains(c));
            if !(by_consent && names) {
                d.effect = Effect::Deny;
                d.basis = Basis::Rule {
                    pack: pack.id.clone(),
                    rule: rule.id.clone(),
                };
                return;
            }
        }
    }
}
