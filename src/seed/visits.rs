//! Encounters: the patient's 2–4 visits over the five years before the
//! anchor date (ambulatory check-ups, follow-ups and symptom visits,
//! emergency visits and inpatient stays), each a US Core Encounter, and
//! `fill`, which adds what happens at a visit: an encounter diagnosis,
//! vital signs, lab panels, procedures, a flu shot, notes and Provenance.

use serde_json::{json, Value};

use super::catalog::{Acute, Dx, ACUTE, ADMISSION, CHECKUP, ED_VISIT, FOLLOW_UP, SYMPTOM_VISIT};
use super::clinical::{self, Problem};
use super::fhir::{
    cc, cc_of, coding, reference, reference_display, resource, set, sys, us_core, Code, Label,
};
use super::record::{Ctx, Kind};
use super::shared::{self, CLINICIANS, EMERGENCY, HOSPITALIST, LOC_CLINIC, LOC_ED, LOC_HOSPITAL};
use super::time::{Instant, ANCHOR_DAY};
use super::{care, documents, labs, vitals};

/// Encounter class (v3-ActCode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Ambulatory,
    Emergency,
    Inpatient,
}

impl Class {
    fn code(self) -> (&'static str, &'static str) {
        match self {
            Class::Ambulatory => ("AMB", "ambulatory"),
            Class::Emergency => ("EMER", "emergency"),
            Class::Inpatient => ("IMP", "inpatient encounter"),
        }
    }
}

/// Why the patient came.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    CheckUp,
    FollowUp(Dx),
    Acute(Acute),
    /// A visit for sensitive care (built by `sensitive.rs`).
    Special(Dx),
}

/// One encounter.
#[derive(Clone, Debug)]
pub(crate) struct Visit {
    pub(crate) id: String,
    /// `Encounter/<id>`.
    pub(crate) reference: String,
    pub(crate) class: Class,
    pub(crate) purpose: Purpose,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    /// Index into [`CLINICIANS`].
    pub(crate) clinician: usize,
    pub(crate) location: &'static str,
    pub(crate) org: &'static str,
}

impl Visit {
    /// The attending clinician as a Reference.
    pub(crate) fn performer(&self) -> Value {
        CLINICIANS[self.clinician].reference_value()
    }
}

/// Chooses and emits the patient's encounters, oldest first.
pub(crate) fn schedule(ctx: &mut Ctx, problems: &[Problem]) -> Vec<Visit> {
    let n = 2 + ctx.rng.weighted(&[30, 40, 30]);
    let first_day = (ctx.person.birth_day + 200).max(ANCHOR_DAY - 5 * 365);
    let span = (ANCHOR_DAY - 2 - first_day).max(n as i64);
    let mut days: Vec<i64> = ctx
        .rng
        .sample_indices(span as usize, n)
        .into_iter()
        .map(|d| first_day + d as i64)
        .collect();
    days.sort_unstable();
    let mut out = Vec::with_capacity(n);
    for (i, day) in days.into_iter().enumerate() {
        let class = if i == 0 {
            Class::Ambulatory
        } else {
            [Class::Ambulatory, Class::Emergency, Class::Inpatient][ctx.rng.weighted(&[70, 18, 12])]
        };
        let purpose = match class {
            Class::Ambulatory => match ctx.rng.weighted(&[if i == 0 { 100 } else { 35 }, 35, 30]) {
                0 => Purpose::CheckUp,
                1 if !problems.is_empty() => Purpose::FollowUp(ctx.rng.pick(problems).dx),
                1 => Purpose::CheckUp,
                _ => Purpose::Acute(*ctx.rng.pick(&ACUTE[..5])),
            },
            Class::Emergency => Purpose::Acute(*ctx.rng.pick(&ACUTE[5..])),
            Class::Inpatient => Purpose::Acute(*ctx.rng.pick(&ACUTE[6..])),
        };
        let visit = new_visit(ctx, class, purpose, day);
        emit_encounter(ctx, &visit, &[]);
        out.push(visit);
    }
    out
}

/// A visit of `class` on `day`, with clinician, location and times chosen.
pub(crate) fn new_visit(ctx: &mut Ctx, class: Class, purpose: Purpose, day: i64) -> Visit {
    let id = ctx.id("enc");
    let (clinician, location, org, start, minutes) = match class {
        Class::Ambulatory => {
            let clinician = match purpose {
                Purpose::Special(_) => ctx.person.gp,
                _ if ctx.rng.chance(150) => shared::GENETICS,
                _ => ctx.person.gp,
            };
            let start = Instant::at(day, 8 * 60 + 15 * ctx.rng.range(0, 34));
            (
                clinician,
                LOC_CLINIC,
                shared::CLINIC,
                start,
                20 + 10 * ctx.rng.range(0, 3),
            )
        }
        Class::Emergency => {
            let start = Instant::at(day, ctx.rng.range(0, 1439));
            (
                *ctx.rng.pick(&EMERGENCY),
                LOC_ED,
                shared::HOSPITAL,
                start,
                ctx.rng.range(90, 420),
            )
        }
        Class::Inpatient => {
            let start = Instant::at(day, ctx.rng.range(0, 1439));
            (
                HOSPITALIST,
                LOC_HOSPITAL,
                shared::HOSPITAL,
                start,
                ctx.rng.range(1, 5) * 1440 + ctx.rng.range(0, 600),
            )
        }
    };
    Visit {
        reference: format!("Encounter/{id}"),
        id,
        class,
        purpose,
        start,
        end: start.plus_minutes(minutes),
        clinician,
        location,
        org,
    }
}

/// Emits the US Core Encounter of `visit`.
pub(crate) fn emit_encounter(ctx: &mut Ctx, visit: &Visit, labels: &[Label]) {
    let (class_code, class_display) = visit.class.code();
    let kind = match (visit.class, visit.purpose) {
        (Class::Emergency, _) => ED_VISIT,
        (Class::Inpatient, _) => ADMISSION,
        (_, Purpose::CheckUp) => CHECKUP,
        (_, Purpose::FollowUp(_)) | (_, Purpose::Special(_)) => FOLLOW_UP,
        (_, Purpose::Acute(_)) => SYMPTOM_VISIT,
    };
    let r = resource(
        "Encounter",
        &visit.id,
        &us_core("us-core-encounter"),
        labels,
    );
    let r = set(
        r,
        "identifier",
        json!([{"system": "http://hospital.example.org/encounter", "value": visit.id}]),
    );
    let r = set(r, "status", json!("finished"));
    let r = set(r, "class", coding(sys::ACT_CODE, class_code, class_display));
    let r = set(r, "type", json!([cc(sys::SNOMED, kind.0, kind.1)]));
    let r = set(r, "subject", ctx.subject());
    let participant_type = if visit.class == Class::Ambulatory {
        ("PPRF", "primary performer")
    } else {
        ("ATND", "attender")
    };
    let r = set(
        r,
        "participant",
        json!([{
            "type": [cc("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", participant_type.0, participant_type.1)],
            "period": {"start": visit.start.datetime(), "end": visit.end.datetime()},
            "individual": visit.performer()
        }]),
    );
    let r = set(
        r,
        "period",
        json!({"start": visit.start.datetime(), "end": visit.end.datetime()}),
    );
    let mut r = r;
    if let Some(dx) = reason(visit) {
        r = set(r, "reasonCode", json!([dx_concept(&dx)]));
    }
    if visit.class == Class::Inpatient {
        r = set(
            r,
            "hospitalization",
            json!({
                "admitSource": cc("http://terminology.hl7.org/CodeSystem/admit-source", "emd", "From accident/emergency department"),
                "dischargeDisposition": cc("http://terminology.hl7.org/CodeSystem/discharge-disposition", "home", "Home")
            }),
        );
    }
    let r = set(
        r,
        "location",
        json!([{"location": reference(visit.location), "period": {"start": visit.start.datetime(), "end": visit.end.datetime()}}]),
    );
    let r = set(r, "serviceProvider", reference(visit.org));
    ctx.push(Kind::Encounter, r);
}

/// The diagnosis a visit is about, if any.
pub(crate) fn reason(visit: &Visit) -> Option<Dx> {
    match visit.purpose {
        Purpose::CheckUp => None,
        Purpose::FollowUp(dx) | Purpose::Special(dx) => Some(dx),
        Purpose::Acute(a) => Some(a.dx),
    }
}

/// A CodeableConcept with the SNOMED CT and ICD-10-CM codes of `dx`.
pub(crate) fn dx_concept(dx: &Dx) -> Value {
    cc_of(
        &[
            Code {
                system: sys::SNOMED,
                code: dx.snomed,
                display: dx.snomed_display,
            },
            Code {
                system: sys::ICD10CM,
                code: dx.icd,
                display: dx.icd_display,
            },
        ],
        dx.text,
    )
}

/// Adds the clinical content of an ordinary visit.
pub(crate) fn fill(ctx: &mut Ctx, visit: &Visit) {
    let mut targets = vec![visit.reference.clone()];
    if let Purpose::Acute(acute) = visit.purpose {
        targets.push(clinical::encounter_diagnosis(ctx, visit, &acute));
    }
    vitals::vital_signs(ctx, visit);
    targets.extend(labs::lab_panels(ctx, visit));
    targets.extend(care::visit_procedures(ctx, visit));
    care::flu_shot(ctx, visit);
    targets.extend(documents::visit_notes(ctx, visit));
    documents::provenance(ctx, visit, &targets, &[]);
}

/// A Reference to the visit's managing organization with display.
pub(crate) fn org_reference(visit: &Visit) -> Value {
    let name = if visit.org == shared::HOSPITAL {
        "Riverside General Hospital"
    } else {
        "Riverside Primary Care Clinic"
    };
    reference_display(visit.org, name)
}
