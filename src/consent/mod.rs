//! Consent engine core (issue 4): pure policy logic, no HTTP. The pipeline
//! classifies each resource, loads the patient's parsed Consents and calls
//! [`decide`]; then applies the [`Effect`] with the helpers in [`redact`].
//!
//! # Public API
//! - [`parse::parse_consent`]`(&Value) -> Result<ConsentModel, ConsentError>`
//! - [`classify::classify`]`(&Value, &ValueSets) -> Classification`
//!   (a pure function of the bytes: cache it per resource version)
//! - [`decide`]`(&DecisionInput, &[ConsentModel], &Policy) -> Decision`
//! - [`redact::strip_sensitivity_tags`], [`redact::add_obligations`],
//!   [`redact::redact`] to shape a released resource.
//!
//! # Reading a Consent
//! Only `active` Consents apply, and only within the root `provision.period`
//! (R4 has no `Consent.period`; the root period is the Consent's validity).
//! `patient-privacy` Consents apply to every purpose, `research` Consents only
//! to purpose `HRESCH`; other scopes are ignored. A Consent whose `patient`
//! is not the resource's patient is ignored.
//!
//! The root provision's `type` is the Consent's base decision and nested
//! provisions are exceptions to their parent, to any depth (HL7's provision
//! notes, LEAP, R5 `Consent.decision`). A nested provision without a `type`
//! is the opposite of its parent; a root without a `type` decides nothing
//! itself (only its typed children can match). A provision matches when
//! every condition it states holds (absent = any); children are only
//! considered when their parent matches; the deepest matching provision
//! decides; among matching siblings deny overrides permit.
//!
//! Conditions: `period` contains now; `actor.reference` equals the caller's
//! fhirUser, organization or `Device/<client_id>` (`actor.role` is recorded,
//! not matched: our roles are not v3 participation codes); `action` codes
//! `access`/`use`/`disclose` match reads, `collect`/`correct` writes;
//! `purpose` equals the purpose of use; `class` equals the resource type;
//! `code` matches any coding in the resource; `securityLabel`: a
//! confidentiality code matches resources at or above it (high-water mark),
//! a sensitivity code matches resources in that category; `dataPeriod`
//! contains the resource's clinical time (unknown time: a deny matches, a
//! permit does not); `data` instance = the resource itself, related = it or
//! anything referencing it, dependents = anything referencing it,
//! authoredby = author/recorder/asserter/requester/performer/informant.
//!
//! # Combining
//! 1. The patient's own access (fhirUser = the resource's patient) is always
//!    permitted (HIPAA right of access), before any Consent or rule.
//!    A resource about no patient (`DecisionInput::patient` = None) is
//!    permitted by [`Basis::NotPatientData`], subject to step 4 only.
//! 2. Every applicable Consent yields at most one hit; hits combine with
//!    deny-overrides: Deny > Redact > Permit.
//! 3. No hit: the deployment base policy (opt-in = deny, opt-out = permit);
//!    it governs disclosure, so an unmatched write is permitted.
//! 4. Reads: jurisdiction rules may turn a release into a deny (see
//!    [`policy`]).
//! 5. A deny (not a redact) becomes break-the-glass when the purpose is ETREAT or BTG, the
//!    role may break the glass, and a reason is given.
//! 6. Released resources carry the obligations of the rules covering them.
//!
//! Effects: a deny provision whose `securityLabel` matched only DS4P inline
//! labels on sub-elements yields Redact (those elements and the narrative
//! removed, tagged REDACTED); a resource-level label match denies. Purpose
//! of use defaults to TREAT for clinician roles and to none otherwise (so a
//! purpose-restricted provision or a jurisdiction exemption never matches a
//! caller who states no purpose). A Consent without `patient` is applied to
//! the patient it was loaded for.
//!
//! Sensitivity tags: [`Decision::cleared`] is every category for the
//! patient's own access and the role's configured clearance otherwise; the
//! pipeline passes it to [`redact::strip_sensitivity_tags`].

pub mod classify;
pub mod cli;
pub mod codes;
pub mod engine;
pub mod evaluate;
pub mod index;
pub mod matching;
pub mod model;
pub mod parse;
pub mod policy;
pub mod redact;
pub mod time;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_classify;
#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_scenarios;

pub use classify::{classify, Classification, Confidentiality, Sensitivity};
pub use evaluate::{decide, Action, Basis, Decision, DecisionInput, Effect, Requester};
pub use model::{ConsentError, ConsentModel};
pub use parse::parse_consent;
pub use policy::{BasePolicy, Policy};
