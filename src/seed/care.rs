//! Care events that are not diagnoses: AllergyIntolerances (RxNorm or
//! SNOMED CT substance, reactions), Immunizations (CVX; a flu shot at some
//! check-ups plus an age-appropriate vaccination history) and Procedures
//! (SNOMED CT with CPT where one exists; ECGs and chest X-rays also get a
//! report from `documents.rs`).

use serde_json::json;

use super::catalog::{Proc, ALLERGENS, PROCEDURES, REACTIONS, VACCINES};
use super::documents;
use super::fhir::{cc, cc_of, reference, resource, sys, us_core, Code};
use super::record::{Ctx, Kind};
use super::shared::{CLINICIANS, LOC_CLINIC};
use super::time::{date, Instant, ANCHOR_DAY};
use super::visits::{Class, Purpose, Visit};

/// Emits 0–2 AllergyIntolerances recorded at the first visit.
pub(crate) fn allergies(ctx: &mut Ctx, visits: &[Visit]) {
    let Some(first) = visits.first() else {
        return;
    };
    let n = ctx.rng.weighted(&[55, 30, 15]);
    for i in ctx.rng.sample_indices(ALLERGENS.len(), n) {
        let a = ALLERGENS[i];
        let id = ctx.id("allergy");
        let onset = ctx
            .rng
            .range(ctx.person.birth_day + 365, first.start.day() - 30);
        let mut r = resource(
            "AllergyIntolerance",
            &id,
            &us_core("us-core-allergyintolerance"),
            &[],
        );
        r.insert(
            "clinicalStatus".into(),
            cc(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "active",
                "Active",
            ),
        );
        r.insert(
            "verificationStatus".into(),
            cc(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "confirmed",
                "Confirmed",
            ),
        );
        r.insert("type".into(), json!("allergy"));
        r.insert("category".into(), json!([a.category]));
        let severe = ctx.rng.chance(150);
        r.insert(
            "criticality".into(),
            json!(if severe { "high" } else { "low" }),
        );
        r.insert("code".into(), cc(a.system, a.code, a.display));
        r.insert("patient".into(), ctx.subject());
        r.insert("encounter".into(), reference(&first.reference));
        r.insert(
            "onsetDateTime".into(),
            json!(date(
                onset.min(first.start.day() - 1).max(ctx.person.birth_day)
            )),
        );
        r.insert(
            "recordedDate".into(),
            json!(first.start.plus_minutes(12).datetime()),
        );
        r.insert("recorder".into(), first.performer());
        let (code, display) = if severe {
            REACTIONS[5]
        } else {
            *ctx.rng.pick(&REACTIONS[..5])
        };
        let severity = if severe {
            "severe"
        } else {
            *ctx.rng.pick(&["mild", "moderate"])
        };
        r.insert(
            "reaction".into(),
            json!([{
                "manifestation": [cc(sys::SNOMED, code, display)],
                "severity": severity
            }]),
        );
        ctx.push(Kind::AllergyIntolerance, r);
    }
}

fn immunization(
    ctx: &mut Ctx,
    vaccine: (&str, &str),
    at: Instant,
    visit: Option<&Visit>,
    primary: bool,
) -> String {
    let id = ctx.id("imm");
    let mut r = resource("Immunization", &id, &us_core("us-core-immunization"), &[]);
    r.insert("status".into(), json!("completed"));
    r.insert("vaccineCode".into(), cc(sys::CVX, vaccine.0, vaccine.1));
    r.insert("patient".into(), ctx.subject());
    if let Some(v) = visit {
        r.insert("encounter".into(), reference(&v.reference));
    }
    r.insert("occurrenceDateTime".into(), json!(at.datetime()));
    r.insert("recorded".into(), json!(at.plus_minutes(5).datetime()));
    r.insert("primarySource".into(), json!(primary));
    if !primary {
        r.insert(
            "reportOrigin".into(),
            cc(
                "http://terminology.hl7.org/CodeSystem/immunization-origin",
                "record",
                "Written Record",
            ),
        );
    }
    r.insert("location".into(), reference(LOC_CLINIC));
    r.insert(
        "lotNumber".into(),
        json!(format!("LOT{:06}", ctx.rng.below(1_000_000))),
    );
    r.insert(
        "doseQuantity".into(),
        json!({"value": 0.5, "unit": "mL", "system": sys::UCUM, "code": "mL"}),
    );
    let performer = visit.map_or_else(
        || CLINICIANS[ctx.person.gp].reference_value(),
        Visit::performer,
    );
    r.insert("performer".into(), json!([{
        "function": cc("http://terminology.hl7.org/CodeSystem/v2-0443", "AP", "Administering Provider"),
        "actor": performer
    }]));
    ctx.push(Kind::Immunization, r);
    format!("Immunization/{id}")
}

/// A seasonal flu shot at about half of the check-ups.
pub(crate) fn flu_shot(ctx: &mut Ctx, visit: &Visit) {
    if matches!(visit.purpose, Purpose::CheckUp) && ctx.rng.chance(550) {
        let (code, display, _) = VACCINES[0];
        immunization(
            ctx,
            (code, display),
            visit.start.plus_minutes(25),
            Some(visit),
            true,
        );
    }
}

/// 2–4 age-appropriate vaccinations from the patient's history.
pub(crate) fn immunization_history(ctx: &mut Ctx) {
    let age = ctx.person.age;
    let eligible: Vec<usize> = (1..VACCINES.len())
        .filter(|&i| VACCINES[i].2 <= age)
        .collect();
    let n = ctx.rng.range(2, 4) as usize;
    for pick in ctx.rng.sample_indices(eligible.len(), n) {
        let (code, display, min_age) = VACCINES[eligible[pick]];
        let earliest = (ctx.person.birth_day + min_age * 365 + 30).max(ANCHOR_DAY - 10 * 365);
        let day = ctx.rng.range(earliest, ANCHOR_DAY - 7).min(ANCHOR_DAY - 7);
        let at = Instant::at(day, 9 * 60 + 15 * ctx.rng.range(0, 30));
        let primary = ctx.rng.chance(800);
        immunization(ctx, (code, display), at, None, primary);
    }
}

fn procedure(ctx: &mut Ctx, visit: &Visit, p: &Proc, at: Instant) -> String {
    let id = ctx.id("proc");
    let mut codes = vec![Code {
        system: sys::SNOMED,
        code: p.snomed,
        display: p.display,
    }];
    if let Some((code, display)) = p.cpt {
        codes.push(Code {
            system: sys::CPT,
            code,
            display,
        });
    }
    let text = p.display.trim_end_matches(" (procedure)");
    let mut r = resource("Procedure", &id, &us_core("us-core-procedure"), &[]);
    r.insert("status".into(), json!("completed"));
    r.insert("code".into(), cc_of(&codes, text));
    r.insert("subject".into(), ctx.subject());
    r.insert("encounter".into(), reference(&visit.reference));
    if p.snomed == "73761001" {
        r.insert(
            "performedPeriod".into(),
            json!({"start": at.datetime(), "end": at.plus_minutes(40).datetime()}),
        );
    } else {
        r.insert("performedDateTime".into(), json!(at.datetime()));
    }
    r.insert("performer".into(), json!([{"actor": visit.performer()}]));
    r.insert("location".into(), reference(visit.location));
    ctx.push(Kind::Procedure, r);
    format!("Procedure/{id}")
}

/// The procedures done at a visit; returns references to them and to any
/// study reports.
pub(crate) fn visit_procedures(ctx: &mut Ctx, visit: &Visit) -> Vec<String> {
    let age = ctx.person.age_on(visit.start.day());
    let female = ctx.person.female;
    let mut chosen: Vec<&Proc> = Vec::new();
    let by_code = |code: &str| PROCEDURES.iter().find(|p| p.snomed == code);
    match (visit.class, visit.purpose) {
        (Class::Ambulatory, Purpose::CheckUp) => {
            for p in PROCEDURES
                .iter()
                .filter(|p| !p.acute_care && p.min_age <= age)
            {
                let per_mille = match p.snomed {
                    "430193006" => 600,
                    "171207006" => 500,
                    "73761001" => 80,
                    "71651007" if female => 250,
                    "396550006" => 300,
                    _ => 0,
                };
                if ctx.rng.chance(per_mille) {
                    chosen.push(p);
                }
            }
        }
        (Class::Ambulatory, _) => {
            let reconcile = ctx.rng.chance(400);
            chosen.extend(by_code("430193006").filter(|_| reconcile));
        }
        (_, Purpose::Acute(a)) => {
            if matches!(a.dx.snomed, "29857009") {
                chosen.extend(by_code("29303009"));
            }
            if matches!(a.dx.snomed, "29857009" | "385093006") {
                chosen.extend(by_code("399208008"));
            }
            if a.dx.snomed == "44465007" {
                chosen.extend(by_code("18949003"));
            }
        }
        _ => {}
    }
    let mut refs = Vec::new();
    for (i, p) in chosen.into_iter().enumerate() {
        let at = visit.start.plus_minutes(35 + 10 * i as i64);
        let proc_ref = procedure(ctx, visit, p, at);
        if p.acute_care && p.snomed != "18949003" {
            refs.push(documents::study_report(ctx, visit, p.snomed, at));
        }
        refs.push(proc_ref);
    }
    refs
}
