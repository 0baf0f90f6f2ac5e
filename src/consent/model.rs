//! Typed model of a FHIR R4 `Consent`; parsing is in `parse`.

use super::time::Period;

/// A malformed Consent: the element path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// A required element is absent.
    #[error("{path}: required element missing")]
    Missing {
        /// Element path, e.g. `Consent.status`.
        path: String,
    },
    /// An element is present but unusable.
    #[error("{path}: {reason}")]
    Invalid {
        /// Element path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// `Consent.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentStatus {
    /// draft
    Draft,
    /// proposed
    Proposed,
    /// active: the only status that is enforced.
    Active,
    /// rejected
    Rejected,
    /// inactive (revoked or superseded)
    Inactive,
    /// entered-in-error
    EnteredInError,
}

/// `Consent.scope` (only `patient-privacy` and `research` are enforced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentScope {
    /// Privacy consent: applies to every purpose of use.
    PatientPrivacy,
    /// Research consent: applies only to purpose `HRESCH`.
    Research,
    /// Any other scope (`adr`, `treatment`, ...): never enforced here.
    Other(String),
}

/// A provision's decision (`Consent.provision.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionType {
    /// deny
    Deny,
    /// permit
    Permit,
}

impl ProvisionType {
    /// The opposite decision (an exception's default).
    pub fn opposite(self) -> Self {
        match self {
            Self::Deny => Self::Permit,
            Self::Permit => Self::Deny,
        }
    }
}

/// A code with its system (system optional, as in FHIR).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Code {
    /// Coding.system
    pub system: Option<String>,
    /// Coding.code
    pub code: String,
}

impl Code {
    /// True when codes are equal and systems are equal or either is absent.
    pub fn matches(&self, other: &Code) -> bool {
        self.code == other.code
            && match (&self.system, &other.system) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// `provision.actor`: a role and a reference to who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `actor.role` codings (recorded, not matched: see module docs).
    pub role: Vec<Code>,
    /// `actor.reference.reference`, e.g. `Practitioner/7`, `Organization/3`.
    pub reference: String,
}

/// `provision.data.meaning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMeaning {
    /// The resource itself.
    Instance,
    /// The resource or anything that references it.
    Related,
    /// Anything that references it.
    Dependents,
    /// Anything authored by the referenced party.
    AuthoredBy,
}

/// `provision.data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRef {
    /// How the reference relates to the resource.
    pub meaning: DataMeaning,
    /// `data.reference.reference`.
    pub reference: String,
}

/// One provision; `provisions` are exceptions to it, to any depth.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provision {
    /// The effective decision: the stated `type`, else the opposite of the
    /// parent's (an exception), else `None` for an untyped root.
    pub kind: Option<ProvisionType>,
    /// `provision.period`.
    pub period: Option<Period>,
    /// `provision.actor`.
    pub actors: Vec<Actor>,
    /// `provision.action` codings.
    pub actions: Vec<Code>,
    /// `provision.securityLabel`.
    pub security_labels: Vec<Code>,
    /// `provision.purpose`.
    pub purposes: Vec<Code>,
    /// `provision.class` (resource types).
    pub classes: Vec<Code>,
    /// `provision.code` codings.
    pub codes: Vec<Code>,
    /// `provision.dataPeriod`.
    pub data_period: Option<Period>,
    /// `provision.data`.
    pub data: Vec<DataRef>,
    /// Nested exceptions.
    pub provisions: Vec<Provision>,
}

/// A parsed Consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentModel {
    /// `Consent.id` (empty when absent, e.g. before create).
    pub id: String,
    /// `Consent.meta.versionId`.
    pub version: Option<String>,
    /// `Consent.status`.
    pub status: ConsentStatus,
    /// `Consent.scope`.
    pub scope: ConsentScope,
    /// `Consent.patient.reference`.
    pub patient: Option<String>,
    /// `Consent.policyRule` codes.
    pub policy_rule: Vec<Code>,
    /// The root provision (None: the Consent decides nothing).
    pub provision: Option<Provision>,
}

impl ConsentModel {
    /// The validity period of the whole Consent: the root `provision.period`.
    pub fn period(&self) -> Option<&Period> {
        self.provision.as_ref().and_then(|p| p.period.as_ref())
    }

    /// `Consent/id` plus ` vN` when versioned, for explanations.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("Consent/{} v{v}", self.id),
            None => format!("Consent/{}", self.id),
        }
    }
}
