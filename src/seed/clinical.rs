//! Conditions and medications: the patient's long-standing problems
//! (US Core problem-list-item Conditions coded in SNOMED CT and ICD-10-CM,
//! each with its usual drug), encounter diagnoses of acute visits, and the
//! MedicationRequest builder (RxNorm `medicationCodeableConcept` or a
//! reference to a shared Medication, dosage, dispense request) that
//! `sensitive.rs` reuses.

use serde_json::{json, Map, Value};

use super::catalog::{Acute, Dx, Med, CHRONIC, DIABETES, HYPERTENSION, MEDS};
use super::fhir::{cc, reference, resource, sys, us_core, Label};
use super::record::{Ctx, Kind};
use super::time::{date, Instant, ANCHOR_DAY, DAY};
use super::visits::{dx_concept, Visit};

/// A long-standing problem of the patient.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub(crate) dx: Dx,
    pub(crate) onset_day: i64,
    med: Option<usize>,
}

const OBESITY: usize = 4;
const PREDIABETES: usize = 9;
const HYPERLIPIDEMIA: usize = 2;

/// Draws the patient's problem list and sets the risk flags.
pub(crate) fn choose_problems(ctx: &mut Ctx) -> Vec<Problem> {
    let age = ctx.person.age;
    let mut out = Vec::new();
    for (i, c) in CHRONIC.iter().enumerate() {
        let per_mille = if age >= 60 {
            c.per_mille * 3 / 2
        } else {
            c.per_mille
        };
        let has = match i {
            OBESITY => ctx.person.bmi >= 30.0 && ctx.rng.chance(850),
            PREDIABETES => !ctx.flags.diabetes && age >= c.min_age && ctx.rng.chance(per_mille),
            _ => age >= c.min_age && ctx.rng.chance(per_mille),
        };
        if !has {
            continue;
        }
        match i {
            HYPERTENSION => ctx.flags.hypertension = true,
            DIABETES => ctx.flags.diabetes = true,
            PREDIABETES => ctx.flags.prediabetes = true,
            HYPERLIPIDEMIA => ctx.flags.hyperlipidemia = true,
            _ => {}
        }
        let earliest = (ctx.person.birth_day + c.min_age * 365).max(ANCHOR_DAY - 20 * 365);
        let onset_day = ctx.rng.range(earliest, (ANCHOR_DAY - 200).max(earliest));
        out.push(Problem {
            dx: c.dx,
            onset_day,
            med: c.med,
        });
    }
    out
}

/// What a Condition needs.
pub(crate) struct CondSpec<'a> {
    pub(crate) dx: &'a Dx,
    pub(crate) problem_list: bool,
    pub(crate) onset: String,
    pub(crate) abatement: Option<String>,
    pub(crate) recorded: Instant,
    pub(crate) visit: &'a Visit,
    pub(crate) labels: &'a [Label],
}

/// Emits a US Core Condition; returns `Condition/<id>`.
pub(crate) fn condition(ctx: &mut Ctx, c: CondSpec<'_>) -> String {
    let id = ctx.id("cond");
    let (profile, category) = if c.problem_list {
        (
            "us-core-condition-problems-health-concerns",
            ("problem-list-item", "Problem List Item"),
        )
    } else {
        (
            "us-core-condition-encounter-diagnosis",
            ("encounter-diagnosis", "Encounter Diagnosis"),
        )
    };
    let mut r = resource("Condition", &id, &us_core(profile), c.labels);
    let clinical = if c.abatement.is_some() {
        ("resolved", "Resolved")
    } else {
        ("active", "Active")
    };
    r.insert(
        "clinicalStatus".into(),
        cc(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            clinical.0,
            clinical.1,
        ),
    );
    r.insert(
        "verificationStatus".into(),
        cc(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "confirmed",
            "Confirmed",
        ),
    );
    r.insert(
        "category".into(),
        json!([cc(
            "http://terminology.hl7.org/CodeSystem/condition-category",
            category.0,
            category.1
        )]),
    );
    r.insert("code".into(), dx_concept(c.dx));
    r.insert("subject".into(), ctx.subject());
    r.insert("encounter".into(), reference(&c.visit.reference));
    r.insert("onsetDateTime".into(), json!(c.onset));
    if let Some(a) = c.abatement {
        r.insert("abatementDateTime".into(), json!(a));
    }
    r.insert("recordedDate".into(), json!(c.recorded.datetime()));
    r.insert("recorder".into(), c.visit.performer());
    r.insert("asserter".into(), c.visit.performer());
    ctx.push(Kind::Condition, r);
    format!("Condition/{id}")
}

/// Emits the problem-list Conditions and their long-term medications.
pub(crate) fn emit_problems(ctx: &mut Ctx, problems: &[Problem], visits: &[Visit]) {
    let Some(first) = visits.first() else {
        return;
    };
    for p in problems {
        let visit = visits
            .iter()
            .find(|v| v.start.day() >= p.onset_day)
            .unwrap_or(first);
        let cond = condition(
            ctx,
            CondSpec {
                dx: &p.dx,
                problem_list: true,
                onset: date(p.onset_day),
                abatement: None,
                recorded: visit.start.plus_minutes(15),
                visit,
                labels: &[],
            },
        );
        if let Some(m) = p.med {
            let by_reference = ctx.rng.chance(250);
            medication_request(
                ctx,
                Order {
                    med: &MEDS[m],
                    visit,
                    reason: Some(&cond),
                    labels: &[],
                    by_reference,
                },
            );
        }
    }
}

/// Emits the encounter diagnosis of an acute visit (and its drug); returns
/// the Condition reference.
pub(crate) fn encounter_diagnosis(ctx: &mut Ctx, visit: &Visit, acute: &Acute) -> String {
    let onset = visit.start.plus_minutes(-1440 * ctx.rng.range(1, 4));
    let resolved = visit.start.day() + ctx.rng.range(10, 28);
    let cond = condition(
        ctx,
        CondSpec {
            dx: &acute.dx,
            problem_list: false,
            onset: onset.date(),
            abatement: (resolved < ANCHOR_DAY).then(|| super::time::date(resolved)),
            recorded: visit.start.plus_minutes(20),
            visit,
            labels: &[],
        },
    );
    if let Some(m) = acute.med {
        medication_request(
            ctx,
            Order {
                med: &MEDS[m],
                visit,
                reason: Some(&cond),
                labels: &[],
                by_reference: false,
            },
        );
    }
    cond
}

/// What a MedicationRequest needs.
pub(crate) struct Order<'a> {
    pub(crate) med: &'a Med,
    pub(crate) visit: &'a Visit,
    pub(crate) reason: Option<&'a str>,
    pub(crate) labels: &'a [Label],
    /// Reference the shared Medication instead of an inline code.
    pub(crate) by_reference: bool,
}

/// Emits a US Core MedicationRequest; returns its reference.
pub(crate) fn medication_request(ctx: &mut Ctx, o: Order<'_>) -> String {
    let id = ctx.id("medrx");
    let authored = o.visit.end.plus_minutes(-5);
    let status = match o.med.days {
        Some(days) if authored.0 + days * DAY < ANCHOR_DAY * DAY => "completed",
        _ => "active",
    };
    let mut r: Map<String, Value> = resource(
        "MedicationRequest",
        &id,
        &us_core("us-core-medicationrequest"),
        o.labels,
    );
    r.insert("status".into(), json!(status));
    r.insert("intent".into(), json!("order"));
    r.insert(
        "category".into(),
        json!([cc(
            "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "community",
            "Community"
        )]),
    );
    if o.by_reference {
        r.insert("medicationReference".into(), json!({"reference": format!("Medication/med-{}", o.med.rxnorm), "display": o.med.display}));
    } else {
        r.insert(
            "medicationCodeableConcept".into(),
            cc(sys::RXNORM, o.med.rxnorm, o.med.display),
        );
    }
    r.insert("subject".into(), ctx.subject());
    r.insert("encounter".into(), reference(&o.visit.reference));
    r.insert("authoredOn".into(), json!(authored.datetime()));
    r.insert("requester".into(), o.visit.performer());
    if let Some(reason) = o.reason {
        r.insert("reasonReference".into(), json!([reference(reason)]));
    }
    let dose = if o.med.sig.starts_with("Take 2") || o.med.sig.starts_with("Inhale 2") {
        2
    } else {
        1
    };
    let (route_code, route_display) = o.med.route.code();
    r.insert("dosageInstruction".into(), json!([{
        "sequence": 1,
        "text": o.med.sig,
        "timing": {"repeat": {"frequency": o.med.per_day, "period": 1, "periodUnit": "d"}},
        "asNeededBoolean": o.med.sig.contains("as needed"),
        "route": cc(sys::SNOMED, route_code, route_display),
        "doseAndRate": [{"doseQuantity": {"value": dose, "unit": o.med.dose_unit, "system": sys::UCUM, "code": format!("{{{}}}", o.med.dose_unit)}}]
    }]));
    let supply = o.med.days.unwrap_or(30);
    r.insert("dispenseRequest".into(), json!({
        "numberOfRepeatsAllowed": if o.med.days.is_some() { 0 } else { 5 },
        "quantity": {"value": i64::from(dose) * i64::from(o.med.per_day) * supply, "unit": o.med.dose_unit, "system": sys::UCUM, "code": format!("{{{}}}", o.med.dose_unit)},
        "expectedSupplyDuration": {"value": supply, "unit": "days", "system": sys::UCUM, "code": "d"}
    }));
    ctx.push(Kind::MedicationRequest, r);
    format!("MedicationRequest/{id}")
}
