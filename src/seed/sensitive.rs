//! Sensitive content: HIV (about 1 patient in 10), depression or anxiety
//! (1 in 8, always Pat Jones; labels `PSY`+`MH` for depression, `MH`+`BH` for anxiety), substance use disorder (1 in 12, always
//! patient 1) and genetic testing (1 in 20 adults). Each is a dedicated specialist
//! visit whose resources carry `meta.security` labels (v3-ActCode `HIV`,
//! `PSY`+`MH`, `SUD`+`ETH`, `GDIS`, and confidentiality `R`).
//!
//! About 1 sensitive resource in 10 is deliberately left unlabelled (never
//! Pat Jones's), and patient 1's substance-use Condition (ICD-10-CM F1x) is
//! always unlabelled, so code-based classification has something to find.

use serde_json::json;

use super::catalog::{Dx, Med, Route};
use super::clinical::{condition, medication_request, CondSpec, Order};
use super::documents::{document_reference, provenance, NoteSpec};
use super::fhir::{cc, coding, quantity, sys, us_core, Label};
use super::labs::{lab_report, lab_result, LabValue};
use super::record::{Ctx, Kind, ObsHead};
use super::rng::{Rng, Stream};
use super::shared::{ADDICTION, CLINICIANS, GENETICS, INFECTIOUS, PSYCHIATRIST};
use super::time::{date, ANCHOR_DAY};
use super::visits::{emit_encounter, new_visit, Class, Purpose, Visit};

#[rustfmt::skip]
const HIV: Dx = Dx { snomed: "86406008", snomed_display: "Human immunodeficiency virus infection (disorder)", icd: "B20", icd_display: "Human immunodeficiency virus [HIV] disease", text: "HIV infection" };
#[rustfmt::skip]
const MENTAL: [(Dx, u64); 3] = [
    (Dx { snomed: "832007", snomed_display: "Moderate major depression (disorder)", icd: "F32.1", icd_display: "Major depressive disorder, single episode, moderate", text: "Major depressive disorder, moderate" }, 60),
    (Dx { snomed: "35489007", snomed_display: "Depressive disorder (disorder)", icd: "F32.9", icd_display: "Major depressive disorder, single episode, unspecified", text: "Depression" }, 25),
    (Dx { snomed: "21897009", snomed_display: "Generalized anxiety disorder (disorder)", icd: "F41.1", icd_display: "Generalized anxiety disorder", text: "Generalized anxiety disorder" }, 15),
];
#[rustfmt::skip]
const SUD: [(Dx, u64); 3] = [
    (Dx { snomed: "75544000", snomed_display: "Opioid dependence (disorder)", icd: "F11.20", icd_display: "Opioid dependence, uncomplicated", text: "Opioid use disorder" }, 50),
    (Dx { snomed: "66590003", snomed_display: "Alcohol dependence (disorder)", icd: "F10.20", icd_display: "Alcohol dependence, uncomplicated", text: "Alcohol use disorder" }, 35),
    (Dx { snomed: "37344009", snomed_display: "Cannabis abuse (disorder)", icd: "F12.10", icd_display: "Cannabis abuse, uncomplicated", text: "Cannabis use disorder" }, 15),
];
#[rustfmt::skip]
const BRCA1: Dx = Dx { snomed: "412734009", snomed_display: "BRCA1 gene mutation positive (finding)", icd: "Z15.01", icd_display: "Genetic susceptibility to malignant neoplasm of breast", text: "BRCA1 gene mutation carrier" };

const fn drug(rxnorm: &'static str, display: &'static str, sig: &'static str, route: Route) -> Med {
    Med {
        rxnorm,
        display,
        sig,
        per_day: 1,
        dose_unit: if matches!(route, Route::Sublingual) {
            "film"
        } else {
            "tablet"
        },
        route,
        days: None,
    }
}
const BIKTARVY: Med = drug(
    "1999667",
    "bictegravir 50 MG / emtricitabine 200 MG / tenofovir alafenamide 25 MG Oral Tablet",
    "Take 1 tablet by mouth once daily",
    Route::Oral,
);
const SERTRALINE: Med = drug(
    "312941",
    "sertraline 50 MG Oral Tablet",
    "Take 1 tablet by mouth once daily",
    Route::Oral,
);
const BUPRENORPHINE: Med = drug(
    "1010600",
    "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film",
    "Dissolve 1 film under the tongue once daily",
    Route::Sublingual,
);
const NALTREXONE: Med = drug(
    "1483744",
    "naltrexone hydrochloride 50 MG Oral Tablet",
    "Take 1 tablet by mouth once daily",
    Route::Oral,
);

/// Which sensitive conditions patient `k` has (its own PRNG stream, so the
/// rates do not depend on the rest of the record).
struct Plan {
    hiv: bool,
    mental: Option<Dx>,
    sud: Option<Dx>,
    genetic: bool,
}

fn plan(k: u32, age: i64) -> Plan {
    let mut rng = Rng::new(Stream::Sensitive, u64::from(k));
    let hiv = rng.chance(100) && age >= 15;
    let mental_roll = rng.chance(135);
    let mental_dx = MENTAL[rng.weighted(&MENTAL.map(|m| m.1))].0;
    let sud_roll = rng.chance(95);
    let sud_dx = SUD[rng.weighted(&SUD.map(|m| m.1))].0;
    let genetic = rng.chance(60) && age >= 18;
    Plan {
        hiv,
        mental: ((mental_roll && age >= 12) || k == 0).then_some(if k == 0 {
            MENTAL[0].0
        } else {
            mental_dx
        }),
        sud: ((sud_roll && age >= 14) || k == 1).then_some(if k == 1 { SUD[0].0 } else { sud_dx }),
        genetic,
    }
}

/// Per-resource labelling: usually `labels`, sometimes nothing.
struct Labeller {
    k: u32,
}

impl Labeller {
    fn pick(&self, ctx: &mut Ctx, labels: &'static [Label]) -> &'static [Label] {
        if self.k != 0 && ctx.rng.chance(100) {
            &[]
        } else {
            labels
        }
    }
}

fn special_visit(ctx: &mut Ctx, dx: Dx, clinician: usize, labels: &'static [Label]) -> Visit {
    let earliest = (ctx.person.birth_day + 12 * 365).clamp(ANCHOR_DAY - 3 * 365, ANCHOR_DAY - 3);
    let day = ctx.rng.range(earliest, ANCHOR_DAY - 3);
    let mut visit = new_visit(ctx, Class::Ambulatory, Purpose::Special(dx), day);
    visit.clinician = clinician;
    visit.location = CLINICIANS[clinician].location;
    visit.org = CLINICIANS[clinician].org;
    emit_encounter(ctx, &visit, labels);
    visit
}

fn score(ctx: &mut Ctx, visit: &Visit, code: (&str, &str), value: i64, labels: &[Label]) -> String {
    let profile = us_core("us-core-observation-screening-assessment");
    let (reference, mut r) = ctx.observation(ObsHead {
        profile: &profile,
        category: ("survey", "Survey"),
        code: cc(sys::LOINC, code.0, code.1),
        visit,
        effective: visit.start.plus_minutes(10),
        performer: visit.performer(),
        labels,
    });
    r.insert("valueInteger".into(), json!(value));
    ctx.push(Kind::Observation, r);
    reference
}

/// One sensitive episode: a visit, its diagnosis, results, drug and note.
struct Episode {
    dx: Dx,
    clinician: usize,
    labels: &'static [Label],
    med: Option<Med>,
    note: &'static str,
}

fn episode(
    ctx: &mut Ctx,
    lab: &Labeller,
    e: &Episode,
    force_unlabelled_condition: bool,
    results: impl FnOnce(&mut Ctx, &Visit, &[Label]) -> Vec<String>,
) {
    let enc_labels = lab.pick(ctx, e.labels);
    let visit = special_visit(ctx, e.dx, e.clinician, enc_labels);
    let onset = date(
        visit.start.day()
            - ctx
                .rng
                .range(30, 700)
                .min(visit.start.day() - ctx.person.birth_day - 1),
    );
    let cond_labels = if force_unlabelled_condition {
        &[][..]
    } else {
        lab.pick(ctx, e.labels)
    };
    let cond = condition(
        ctx,
        CondSpec {
            dx: &e.dx,
            problem_list: true,
            onset,
            abatement: None,
            recorded: visit.start.plus_minutes(20),
            visit: &visit,
            labels: cond_labels,
        },
    );
    let mut targets = vec![visit.reference.clone(), cond.clone()];
    let result_labels = lab.pick(ctx, e.labels);
    targets.extend(results(ctx, &visit, result_labels));
    if let Some(m) = e.med {
        let labels = lab.pick(ctx, e.labels);
        targets.push(medication_request(
            ctx,
            Order {
                med: &m,
                visit: &visit,
                reason: Some(&cond),
                labels,
                by_reference: false,
            },
        ));
    }
    let body = format!(
        "Reason for visit: {}.\nAssessment: {}\nPlan: {}",
        e.dx.text, e.note, "Continue treatment; follow up in 4 weeks."
    );
    let labels = lab.pick(ctx, e.labels);
    targets.push(document_reference(
        ctx,
        NoteSpec {
            visit: &visit,
            loinc: ("11506-3", "Progress note"),
            title: "Progress note",
            body,
            at: visit.start.plus_minutes(50),
            labels,
        },
    ));
    provenance(ctx, &visit, &targets, e.labels);
}

/// Emits patient `k`'s sensitive episodes, if any.
pub(crate) fn emit(ctx: &mut Ctx, k: u32, _visits: &[Visit]) {
    let p = plan(k, ctx.person.age);
    let lab = Labeller { k };
    if p.hiv {
        let e = Episode {
            dx: HIV,
            clinician: INFECTIOUS,
            labels: &[Label::Hiv],
            med: Some(BIKTARVY),
            note: "HIV infection on antiretroviral therapy.",
        };
        episode(ctx, &lab, &e, false, |ctx, visit, labels| {
            let collected = visit.start.plus_minutes(30);
            let suppressed = ctx.rng.chance(700);
            let load = if suppressed {
                json!({"value": 20, "comparator": "<", "unit": "copies/mL", "system": sys::UCUM, "code": "{copies}/mL"})
            } else {
                quantity(
                    (ctx.rng.range(2, 900) * 100) as f64,
                    "copies/mL",
                    "{copies}/mL",
                )
            };
            let cd4 = ctx.rng.range(
                if suppressed { 450 } else { 150 },
                if suppressed { 1100 } else { 500 },
            );
            let (vl, r) = lab_result(ctx, visit, collected, LabValue { loinc: "20447-9", display: "HIV 1 RNA [#/volume] (viral load) in Serum or Plasma by NAA with probe detection", value: load, reference_range: None, interpretation: None, labels });
            ctx.push(Kind::Observation, r);
            let (cd, r) = lab_result(
                ctx,
                visit,
                collected,
                LabValue {
                    loinc: "24467-3",
                    display: "CD3+CD4+ (T4 helper) cells [#/volume] in Blood",
                    value: quantity(cd4 as f64, "cells/uL", "/uL"),
                    reference_range: Some(
                        json!([{"low": quantity(500.0, "cells/uL", "/uL"), "high": quantity(1500.0, "cells/uL", "/uL")}]),
                    ),
                    interpretation: None,
                    labels,
                },
            );
            ctx.push(Kind::Observation, r);
            vec![vl, cd]
        });
    }
    if let Some(dx) = p.mental {
        let labels: &'static [Label] = if dx.icd.starts_with("F32") {
            &[Label::Psy, Label::Mh]
        } else {
            &[Label::Mh, Label::Bh]
        };
        let e = Episode {
            dx,
            clinician: PSYCHIATRIST,
            labels,
            med: Some(SERTRALINE),
            note: "Depressive/anxiety symptoms, improving on SSRI.",
        };
        episode(ctx, &lab, &e, false, |ctx, visit, labels| {
            let phq = ctx.rng.range(8, 19);
            vec![score(
                ctx,
                visit,
                (
                    "44261-6",
                    "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
                ),
                phq,
                labels,
            )]
        });
    }
    if let Some(dx) = p.sud {
        let med = match dx.icd {
            "F11.20" => Some(BUPRENORPHINE),
            "F10.20" => Some(NALTREXONE),
            _ => None,
        };
        let e = Episode {
            dx,
            clinician: ADDICTION,
            labels: &[Label::Sud, Label::Eth],
            med,
            note: "Substance use disorder in treatment; counselling provided.",
        };
        let alcohol = dx.icd == "F10.20";
        episode(ctx, &lab, &e, k == 1, |ctx, visit, labels| {
            let (code, value) = if alcohol {
                (("75626-2", "Total score [AUDIT-C]"), ctx.rng.range(5, 12))
            } else {
                (("82667-7", "Total score [DAST-10]"), ctx.rng.range(3, 9))
            };
            vec![score(ctx, visit, code, value, labels)]
        });
    }
    if p.genetic {
        genetic(ctx, &lab);
    }
}

fn genetic(ctx: &mut Ctx, lab: &Labeller) {
    let labels: &'static [Label] = &[Label::Gdis];
    let present = ctx.person.female && ctx.rng.chance(400);
    let dx = BRCA1;
    let enc_labels = lab.pick(ctx, labels);
    let visit = special_visit(ctx, dx, GENETICS, enc_labels);
    let collected = visit.start.plus_minutes(30);
    let answer = if present {
        ("LA9633-4", "Present")
    } else {
        ("LA9634-2", "Absent")
    };
    let obs_labels = lab.pick(ctx, labels);
    let (obs, mut r) = lab_result(
        ctx,
        &visit,
        collected,
        LabValue {
            loinc: "69548-6",
            display: "Genetic variant assessment",
            value: cc(sys::LOINC, answer.0, answer.1),
            reference_range: None,
            interpretation: None,
            labels: obs_labels,
        },
    );
    r.insert("component".into(), json!([{
        "code": cc(sys::LOINC, "48018-6", "Gene studied [ID]"),
        "valueCodeableConcept": {"coding": [coding("http://www.genenames.org/geneid", "HGNC:1100", "BRCA1")], "text": "BRCA1"}
    }]));
    ctx.push(Kind::Observation, r);
    let mut targets = vec![visit.reference.clone(), obs.clone()];
    let dr_labels = lab.pick(ctx, labels);
    targets.push(lab_report(
        ctx,
        &visit,
        ("51969-4", "Genetic analysis report"),
        collected,
        &[obs],
        dr_labels,
    ));
    if present {
        let cond_labels = lab.pick(ctx, labels);
        targets.push(condition(
            ctx,
            CondSpec {
                dx: &dx,
                problem_list: true,
                onset: visit.start.date(),
                abatement: None,
                recorded: visit.start.plus_minutes(40),
                visit: &visit,
                labels: cond_labels,
            },
        ));
    }
    provenance(ctx, &visit, &targets, labels);
}
