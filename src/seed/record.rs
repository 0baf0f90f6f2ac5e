//! The per-patient driver: a generation context (`Ctx`) that hands out ids,
//! holds the patient's PRNG and collects resources by type, and
//! [`patient_resources`], which builds one patient's whole record in
//! dependency order (Patient, Coverage, Encounters, Conditions,
//! Observations, DiagnosticReports, DocumentReferences, MedicationRequests,
//! AllergyIntolerances, Immunizations, Procedures, Provenance).

use serde_json::{json, Map, Value};

use super::fhir::{cc, reference, resource, sys, Label};
use super::person::Person;
use super::rng::{Rng, Stream};
use super::time::Instant;
use super::visits::Visit;
use super::{care, clinical, documents, person, sensitive, visits, vitals};

/// Resource types of a patient record, in emission (dependency) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Patient = 0,
    Coverage,
    Encounter,
    Condition,
    Observation,
    DiagnosticReport,
    DocumentReference,
    MedicationRequest,
    AllergyIntolerance,
    Immunization,
    Procedure,
    Provenance,
}

const KINDS: usize = 12;

/// Clinical risk factors that shape vital signs and lab values.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Flags {
    pub(crate) hypertension: bool,
    pub(crate) diabetes: bool,
    pub(crate) prediabetes: bool,
    pub(crate) hyperlipidemia: bool,
}

/// Generation context of one patient.
pub(crate) struct Ctx {
    /// Zero-padded patient number used in every id of this patient.
    pub(crate) num: String,
    /// `Patient/<id>`.
    pub(crate) patient: String,
    pub(crate) rng: Rng,
    pub(crate) person: Person,
    pub(crate) flags: Flags,
    seq: u32,
    buckets: [Vec<Value>; KINDS],
}

/// The Patient id of patient `k` (0-based; the number in the id is 1-based).
pub(crate) fn patient_id(k: u32) -> String {
    format!("patient-{:05}", u64::from(k) + 1)
}

impl Ctx {
    fn new(k: u32) -> Self {
        let mut rng = Rng::new(Stream::Patient, u64::from(k));
        let person = Person::generate(k, &mut rng);
        Self {
            num: format!("{:05}", u64::from(k) + 1),
            patient: format!("Patient/{}", patient_id(k)),
            rng,
            person,
            flags: Flags::default(),
            seq: 0,
            buckets: std::array::from_fn(|_| Vec::new()),
        }
    }

    /// A fresh id `<prefix>-<patient number>-<sequence>`, unique population-wide.
    pub(crate) fn id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}-{}-{:03}", self.num, self.seq)
    }

    /// Adds a finished resource.
    pub(crate) fn push(&mut self, kind: Kind, resource: Map<String, Value>) {
        self.buckets[kind as usize].push(Value::Object(resource));
    }

    /// The patient reference as JSON, with the patient's name as display.
    pub(crate) fn subject(&self) -> Value {
        json!({"reference": self.patient, "display": self.person.display_name()})
    }

    /// An Observation skeleton: status final, category, code, subject,
    /// encounter, effectiveDateTime, issued and performer.
    pub(crate) fn observation(&mut self, o: ObsHead<'_>) -> (String, Map<String, Value>) {
        let id = self.id("obs");
        let mut r = resource("Observation", &id, o.profile, o.labels);
        r.insert("status".into(), json!("final"));
        let (code, display) = o.category;
        r.insert(
            "category".into(),
            json!([cc(sys::OBS_CATEGORY, code, display)]),
        );
        r.insert("code".into(), o.code);
        r.insert("subject".into(), self.subject());
        r.insert("encounter".into(), reference(&o.visit.reference));
        r.insert("effectiveDateTime".into(), json!(o.effective.datetime()));
        r.insert(
            "issued".into(),
            json!(o.effective.plus_minutes(45).datetime()),
        );
        r.insert("performer".into(), json!([o.performer]));
        (format!("Observation/{id}"), r)
    }

    fn finish(self) -> Vec<Value> {
        self.buckets.into_iter().flatten().collect()
    }
}

/// What an Observation skeleton needs.
pub(crate) struct ObsHead<'a> {
    pub(crate) profile: &'a str,
    pub(crate) category: (&'a str, &'a str),
    pub(crate) code: Value,
    pub(crate) visit: &'a Visit,
    pub(crate) effective: Instant,
    pub(crate) performer: Value,
    pub(crate) labels: &'a [Label],
}

/// Patient `k`'s whole record, in dependency order. Depends only on `k`.
pub(crate) fn patient_resources(k: u32) -> Vec<Value> {
    let mut ctx = Ctx::new(k);
    person::emit(&mut ctx);
    let problems = clinical::choose_problems(&mut ctx);
    let schedule = visits::schedule(&mut ctx, &problems);
    for visit in &schedule {
        visits::fill(&mut ctx, visit);
    }
    clinical::emit_problems(&mut ctx, &problems, &schedule);
    care::allergies(&mut ctx, &schedule);
    care::immunization_history(&mut ctx);
    vitals::smoking_status(&mut ctx, &schedule);
    sensitive::emit(&mut ctx, k, &schedule);
    documents::patient_provenance(&mut ctx, &schedule);
    ctx.finish()
}
