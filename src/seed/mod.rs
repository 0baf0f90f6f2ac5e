//! Deterministic synthetic population generator (the demo data of `serve`
//! and `fhirgate seed --patients N`).
//!
//! Owns the public API only: [`generate`], [`generate_batches`] and the ids of
//! the two demo users' records. The content lives in the submodules:
//!
//! - `rng`, `time`, `fhir`: a tiny SplitMix64 PRNG, calendar arithmetic from a
//!   fixed anchor date (2026-01-01, never the clock) and JSON building helpers.
//! - `catalog`, `places`: code tables (SNOMED, ICD-10-CM, LOINC, RxNorm, CVX,
//!   CPT) and demographic tables (names, US cities across many states).
//! - `shared`: Organizations, Practitioners, PractitionerRoles, Locations and
//!   Medications that every patient references.
//! - `record`: the per-patient driver; `person`, `visits`, `vitals`, `labs`,
//!   `clinical`, `care`, `documents`, `sensitive` build the patient's
//!   resources (about 90 per patient on average, 30 to 160 each).
//! - `attribution`: the Provider Access attribution Groups, written by the
//!   demo seed after the patients ([`attribution_groups`]).
//!
//! Determinism: patient `k` is generated from its own PRNG stream seeded by a
//! constant and `k`, so patient `k` is byte-identical whatever the population
//! size, and `generate(5).resources` is a prefix of `generate(50).resources`.
//! All JSON numbers come from integer arithmetic or IEEE basic operations (no
//! `ln`/`cos`), so output is identical on every platform.
//!
//! Sensitive content: roughly 1 patient in 10 has HIV, 1 in 8 a depression
//! diagnosis, 1 in 12 a substance use disorder and 1 in 20 adults a genetic test
//! result. Those records carry `meta.security` labels (v3-ActCode `HIV`,
//! `PSY`/`MH`/`BH`, `SUD`/`ETH`, `GDIS`, plus confidentiality `R`), except a
//! few that are deliberately left unlabelled (about 1 in 10 sensitive
//! resources, and always the opioid-use Condition of patient 1) so that
//! code-based classification has something to find.

mod attribution;
mod care;
mod catalog;
mod clinical;
mod documents;
mod fhir;
mod labs;
mod person;
mod places;
mod record;
mod rng;
mod sensitive;
mod shared;
mod time;
mod visits;
mod vitals;

#[cfg(test)]
mod tests;

use serde_json::Value;

/// Patient id of the portal user `pat.jones` (patient index 0, "Pat Jones").
pub const PAT_JONES_PATIENT_ID: &str = "patient-00001";
/// Practitioner id of the clinician `dr.lee` ("Dr. Morgan Lee").
pub const DR_LEE_PRACTITIONER_ID: &str = shared::DR_LEE_ID;
/// The organization `dr.lee` works for (their PractitionerRole's).
pub const DR_LEE_ORGANIZATION: &str = shared::CLINIC;
/// The hospital: the organization of the demo provider Backend Services
/// client (`demo::DEMO_PROVIDER_CLIENT`).
pub const HOSPITAL_ORGANIZATION: &str = shared::HOSPITAL;

/// A whole generated population.
#[derive(Debug, Clone)]
pub struct Population {
    /// Resources in dependency order (Organizations, Practitioners,
    /// PractitionerRoles, Locations, Medications first, then per patient).
    /// Every resource has a deterministic `id`; no `meta.versionId` or
    /// `meta.lastUpdated`.
    pub resources: Vec<Value>,
    /// Patient id linked to the portal user `pat.jones` (a seeded Patient
    /// named Pat Jones).
    pub pat_jones_patient: String,
    /// Practitioner id of clinician `dr.lee` (a seeded Practitioner named Lee).
    pub dr_lee_practitioner: String,
}

/// The demo users' record ids, returned by [`generate_batches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopulationIds {
    /// Patient id linked to the portal user `pat.jones`.
    pub pat_jones_patient: String,
    /// Practitioner id of clinician `dr.lee`.
    pub dr_lee_practitioner: String,
}

impl PopulationIds {
    fn demo() -> Self {
        Self {
            pat_jones_patient: PAT_JONES_PATIENT_ID.to_owned(),
            dr_lee_practitioner: DR_LEE_PRACTITIONER_ID.to_owned(),
        }
    }
}

/// Generates `patients` patients plus the shared resources, all in memory.
///
/// Deterministic: the same `patients` gives byte-identical output on every
/// machine and run. At least one patient (Pat Jones) is always generated, so
/// the demo user's record exists. Use [`generate_batches`] for large N.
pub fn generate(patients: u32) -> Population {
    let mut resources = shared::resources();
    for k in 0..patients.max(1) {
        resources.extend(record::patient_resources(k));
    }
    let ids = PopulationIds::demo();
    Population {
        resources,
        pat_jones_patient: ids.pat_jones_patient,
        dr_lee_practitioner: ids.dr_lee_practitioner,
    }
}

/// Streaming variant of [`generate`] for large populations (10,000 patients
/// is about a million resources).
///
/// Calls `sink` first with one batch holding only the shared resources
/// (Organizations, Practitioners, PractitionerRoles, Locations, Medications),
/// then with one batch per `batch_patients` patients (at least 1). Every
/// patient batch is self-contained apart from references to the shared
/// resources. Concatenating the batches gives exactly
/// `generate(patients).resources`. Only one batch is held in memory at a
/// time; the first error from `sink` stops generation and is returned.
pub fn generate_batches<F>(
    patients: u32,
    batch_patients: u32,
    mut sink: F,
) -> anyhow::Result<PopulationIds>
where
    F: FnMut(Vec<Value>) -> anyhow::Result<()>,
{
    let patients = patients.max(1);
    let per_batch = batch_patients.max(1);
    sink(shared::resources())?;
    let mut start = 0;
    while start < patients {
        let end = start.saturating_add(per_batch).min(patients);
        let mut batch = Vec::new();
        for k in start..end {
            batch.extend(record::patient_resources(k));
        }
        sink(batch)?;
        start = end;
    }
    Ok(PopulationIds::demo())
}

/// The resources of patient `k` alone (0-based; patient 0 is Pat Jones), in
/// dependency order. Identical to that patient's slice of [`generate`].
pub fn patient_resources(k: u32) -> Vec<Value> {
    record::patient_resources(k)
}

/// The Provider Access attribution Groups of a population of `patients`
/// (one per provider organization; see `attribution`). Not part of
/// [`generate`]: the demo seed writes them after the patients.
pub fn attribution_groups(patients: u32) -> Vec<Value> {
    attribution::groups(patients)
}

/// Ids of the attribution Groups: (clinic, hospital).
pub const ATTRIBUTION_GROUPS: (&str, &str) =
    (attribution::CLINIC_GROUP, attribution::HOSPITAL_GROUP);

/// The Patient id of patient `k` (0-based).
pub fn patient_id(k: u32) -> String {
    record::patient_id(k)
}
