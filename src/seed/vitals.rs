//! Vital signs (US Core vital sign profiles: blood pressure panel 85354-9
//! with 8480-6/8462-4 components, heart rate 8867-4, respiratory rate
//! 9279-1, temperature 8310-5, pulse oximetry 2708-6/59408-5, height
//! 8302-2, weight 29463-7, BMI 39156-5, all in UCUM) taken at every visit,
//! and the smoking status (72166-2) social history Observation.

use serde_json::{json, Value};

use super::catalog::Acute;
use super::fhir::{cc, cc_of, quantity, round, sys, us_core, Code};
use super::person::SMOKING;
use super::record::{Ctx, Kind, ObsHead};
use super::visits::{Class, Purpose, Visit};

const VITALS: (&str, &str) = ("vital-signs", "Vital Signs");

fn loinc(code: &'static str, display: &'static str) -> Code {
    Code {
        system: sys::LOINC,
        code,
        display,
    }
}

struct Vital {
    profile: &'static str,
    codes: Vec<Code>,
    text: &'static str,
    value: Value,
    /// `valueQuantity` or `component`.
    key: &'static str,
}

fn emit(ctx: &mut Ctx, visit: &Visit, v: Vital) {
    let profile = us_core(v.profile);
    let (_, mut r) = ctx.observation(ObsHead {
        profile: &profile,
        category: VITALS,
        code: cc_of(&v.codes, v.text),
        visit,
        effective: visit.start.plus_minutes(10),
        performer: visit.performer(),
        labels: &[],
    });
    r.remove("issued");
    r.insert(v.key.into(), v.value);
    ctx.push(Kind::Observation, r);
}

fn single(
    profile: &'static str,
    code: Code,
    text: &'static str,
    value: f64,
    unit: &str,
    ucum: &str,
) -> Vital {
    Vital {
        profile,
        codes: vec![code],
        text,
        value: quantity(value, unit, ucum),
        key: "valueQuantity",
    }
}

/// Emits the eight vital sign Observations of a visit.
pub(crate) fn vital_signs(ctx: &mut Ctx, visit: &Visit) {
    let day = visit.start.day();
    let age = ctx.person.age_on(day);
    let child = age < 18;
    let fever = matches!(
        visit.purpose,
        Purpose::Acute(Acute {
            emergency: true,
            ..
        }) | Purpose::Acute(Acute { med: Some(11), .. })
    );
    let sick = visit.class != Class::Ambulatory;
    let rng = &mut ctx.rng;
    let (sys_mean, dia_mean) = if child {
        (104.0, 64.0)
    } else {
        (114.0 + 0.25 * (age - 30).max(0) as f64, 75.0)
    };
    let ht = if ctx.flags.hypertension {
        (14.0, 7.0)
    } else {
        (0.0, 0.0)
    };
    let systolic = round(rng.normal(sys_mean + ht.0, 10.0), 0);
    let diastolic = round(rng.normal(dia_mean + ht.1, 7.0).min(systolic - 25.0), 0);
    let heart = round(
        rng.normal(
            if child { 92.0 } else { 74.0 } + if sick { 12.0 } else { 0.0 },
            9.0,
        ),
        0,
    );
    let resp = round(
        rng.normal(
            if child { 21.0 } else { 15.0 } + if sick { 3.0 } else { 0.0 },
            1.8,
        ),
        0,
    );
    let temp = round(rng.normal(if fever { 38.3 } else { 36.8 }, 0.3), 1);
    let spo2 = round(
        rng.normal(if sick { 94.5 } else { 97.8 }, 1.3).min(100.0),
        0,
    );
    let height = round(ctx.person.height_on(day) + rng.normal(0.0, 0.6), 1);
    let bmi_today = ctx.person.bmi + rng.normal(0.0, 0.7);
    let metres = height / 100.0;
    let weight = round(bmi_today * metres * metres, 1);
    let bmi = round(weight / (metres * metres), 1);

    let bp = Vital {
        profile: "us-core-blood-pressure",
        codes: vec![loinc(
            "85354-9",
            "Blood pressure panel with all children optional",
        )],
        text: "Blood pressure",
        value: json!([
            {"code": cc(sys::LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": quantity(systolic, "mm[Hg]", "mm[Hg]")},
            {"code": cc(sys::LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity": quantity(diastolic, "mm[Hg]", "mm[Hg]")}
        ]),
        key: "component",
    };
    let spo2_codes = vec![
        loinc("2708-6", "Oxygen saturation in Arterial blood"),
        loinc(
            "59408-5",
            "Oxygen saturation in Arterial blood by Pulse oximetry",
        ),
    ];
    let vitals = [
        bp,
        single(
            "us-core-heart-rate",
            loinc("8867-4", "Heart rate"),
            "Heart rate",
            heart,
            "beats/minute",
            "/min",
        ),
        single(
            "us-core-respiratory-rate",
            loinc("9279-1", "Respiratory rate"),
            "Respiratory rate",
            resp,
            "breaths/minute",
            "/min",
        ),
        single(
            "us-core-body-temperature",
            loinc("8310-5", "Body temperature"),
            "Body temperature",
            temp,
            "Cel",
            "Cel",
        ),
        Vital {
            profile: "us-core-pulse-oximetry",
            codes: spo2_codes,
            text: "Oxygen saturation",
            value: quantity(spo2, "%", "%"),
            key: "valueQuantity",
        },
        single(
            "us-core-body-height",
            loinc("8302-2", "Body height"),
            "Body height",
            height,
            "cm",
            "cm",
        ),
        single(
            "us-core-body-weight",
            loinc("29463-7", "Body weight"),
            "Body weight",
            weight,
            "kg",
            "kg",
        ),
        single(
            "us-core-bmi",
            loinc("39156-5", "Body mass index (BMI) [Ratio]"),
            "BMI",
            bmi,
            "kg/m2",
            "kg/m2",
        ),
    ];
    for v in vitals {
        emit(ctx, visit, v);
    }
}

/// Emits smoking status at the first and the last visit (from age 12).
pub(crate) fn smoking_status(ctx: &mut Ctx, visits: &[Visit]) {
    let (Some(first), Some(last)) = (visits.first(), visits.last()) else {
        return;
    };
    let mut at = vec![first];
    if last.id != first.id {
        at.push(last);
    }
    for visit in at {
        if ctx.person.age_on(visit.start.day()) < 12 {
            continue;
        }
        let status = SMOKING[ctx.person.smoking];
        let profile = us_core("us-core-smokingstatus");
        let (_, mut r) = ctx.observation(ObsHead {
            profile: &profile,
            category: ("social-history", "Social History"),
            code: cc(sys::LOINC, "72166-2", "Tobacco smoking status"),
            visit,
            effective: visit.start.plus_minutes(5),
            performer: visit.performer(),
            labels: &[],
        });
        r.remove("issued");
        r.insert(
            "valueCodeableConcept".into(),
            cc(sys::SNOMED, status.0, status.1),
        );
        ctx.push(Kind::Observation, r);
    }
}
