//! What one FHIR request disclosed or changed, per patient: the contract
//! between the pipeline (which fills it while it judges the answer) and the
//! audit stage (which turns it into one BALP AuditEvent per patient touched
//! and appends them to the ledger before the response is released).
//!
//! The pipeline fills a [`Disclosure`] even when the request fails, so
//! refusals and denials are audited too.

use std::collections::BTreeMap;

/// The caller, as the access token says (absent when authentication failed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// OAuth client id.
    pub client_id: String,
    /// The signed-in user's FHIR resource, e.g. `Practitioner/7`.
    pub fhir_user: Option<String>,
    /// The user's role (`clinician`, `patient`, `admin`).
    pub role: Option<String>,
    /// Access token id.
    pub jti: String,
    /// Purpose of use the request was judged under (v3-ActReason code).
    pub purpose: Option<String>,
    /// The organization the token acts for (a signed-in user's, or a UDAP
    /// B2B client's stated one), `Organization/x` or a URI.
    pub organization: Option<String>,
    /// The user's authentication context class (`acr`), if the token has one.
    pub acr: Option<String>,
    /// The user's authentication methods (`amr`), step-ups included.
    pub amr: Vec<String>,
}

/// A consent decision that mattered for a patient (a BALP AuthZ-consent event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentNote {
    /// `permit`, `deny`, `redact` or `break-the-glass`.
    pub effect: String,
    /// What decided: `Consent/c1 v3 provision.provision[0]`, `base policy
    /// opt-out`, `42cfr2 rule part2-redisclosure`, ….
    pub basis: String,
    /// The Consent reference with version (`Consent/c1/_history/3`), when a
    /// Consent decided.
    pub consent: Option<String>,
    /// How many resources this decision covered in the answer.
    pub resources: usize,
}

/// What the request did to one patient's record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientTouch {
    /// References (`Type/id`) released to the caller or written.
    pub released: Vec<String>,
    /// References withheld by consent (counted, never shown to the caller).
    pub withheld: usize,
    /// Consent decisions, one per distinct (effect, basis).
    pub decisions: Vec<ConsentNote>,
}

/// Everything the audit stage needs about one FHIR request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disclosure {
    /// The caller, once authenticated.
    pub caller: Option<Caller>,
    /// Per patient (`Patient/<id>`): what was disclosed or changed.
    pub patients: BTreeMap<String, PatientTouch>,
    /// References released that are about no patient.
    pub other: Vec<String>,
    /// Break-the-glass was used; the stated reason.
    pub break_glass: Option<String>,
}

impl Caller {
    /// The caller of a token (the purpose is filled in when judged).
    pub fn of(c: &smart_launch::context::AccessContext) -> Self {
        Self {
            client_id: c.client_id.clone(),
            fhir_user: c.fhir_user.clone(),
            role: c.role.clone(),
            jti: c.jti.clone(),
            purpose: None,
            organization: c.organization.clone(),
            acr: c.assurance.acr.clone(),
            amr: c.assurance.amr.clone(),
        }
    }
}

impl Disclosure {
    /// An empty disclosure of `c`'s.
    pub fn of(c: &smart_launch::context::AccessContext) -> Self {
        Self {
            caller: Some(Caller::of(c)),
            ..Self::default()
        }
    }

    /// The entry for a patient, created on first use.
    pub fn patient(&mut self, patient: &str) -> &mut PatientTouch {
        self.patients.entry(patient.to_owned()).or_default()
    }

    /// Records a consent decision for a patient, merging equal decisions.
    pub fn note(&mut self, patient: &str, note: ConsentNote) {
        let touch = self.patient(patient);
        match touch
            .decisions
            .iter_mut()
            .find(|d| d.effect == note.effect && d.basis == note.basis)
        {
            Some(d) => d.resources += note.resources,
            None => touch.decisions.push(note),
        }
    }
}
