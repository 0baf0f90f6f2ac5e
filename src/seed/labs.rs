//! Laboratory results: the lab panels drawn at a visit (CBC, basic
//! metabolic panel, lipid panel, HbA1c), each analyte a US Core laboratory
//! Observation (LOINC code, UCUM valueQuantity, referenceRange,
//! interpretation) and each panel a US Core lab DiagnosticReport whose
//! `result` references those Observations. Also the single-result helper
//! `lab_result` that `sensitive.rs` uses for HIV and genetic results.

use serde_json::{json, Map, Value};

use super::catalog::{Analyte, Panel, BMP, CBC, HBA1C, LIPIDS};
use super::fhir::{
    cc, coding, quantity, reference, reference_display, resource, round, sys, us_core, Label,
};
use super::record::{Ctx, Kind, ObsHead};
use super::shared::LAB;
use super::time::Instant;
use super::visits::{Class, Purpose, Visit};

/// The panels drawn at `visit`.
fn panels_for(ctx: &mut Ctx, visit: &Visit) -> Vec<Panel> {
    let adult = ctx.person.age_on(visit.start.day()) >= 18;
    let glycemic = ctx.flags.diabetes || ctx.flags.prediabetes;
    let mut out = Vec::new();
    match (visit.class, visit.purpose) {
        (Class::Emergency | Class::Inpatient, _) => out.extend([CBC, BMP]),
        (_, Purpose::CheckUp) if adult => {
            out.extend([BMP, LIPIDS]);
            if glycemic || ctx.person.age_on(visit.start.day()) >= 45 {
                out.push(HBA1C);
            }
            if ctx.rng.chance(400) {
                out.push(CBC);
            }
        }
        (_, Purpose::FollowUp(_)) => {
            out.push(BMP);
            if glycemic {
                out.push(HBA1C);
            }
            if ctx.flags.hyperlipidemia {
                out.push(LIPIDS);
            } else if ctx.rng.chance(400) {
                out.push(CBC);
            }
        }
        _ if ctx.rng.chance(500) => out.push(CBC),
        _ => {}
    }
    out
}

/// Population mean and sd of `a` for this patient.
fn distribution(ctx: &Ctx, a: &Analyte) -> (f64, f64) {
    let f = ctx.flags;
    match a.loinc {
        "2345-7" if f.diabetes => (155.0, 35.0),
        "2345-7" if f.prediabetes => (108.0, 8.0),
        "4548-4" if f.diabetes => (7.6, 0.9),
        "4548-4" if f.prediabetes => (6.0, 0.2),
        "2093-3" if f.hyperlipidemia => (235.0, 28.0),
        "18262-6" if f.hyperlipidemia => (150.0, 25.0),
        "718-7" if ctx.person.female => (13.4, 1.0),
        "718-7" => (15.0, 1.1),
        _ => (a.mean, a.sd),
    }
}

fn interpretation(value: f64, low: f64, high: f64) -> Value {
    let (code, display) = if value < low {
        ("L", "Low")
    } else if value > high {
        ("H", "High")
    } else {
        ("N", "Normal")
    };
    json!([{"coding": [coding(sys::INTERPRETATION, code, display)], "text": display}])
}

/// One laboratory Observation with a numeric result.
pub(crate) struct LabValue<'a> {
    pub(crate) loinc: &'a str,
    pub(crate) display: &'a str,
    pub(crate) value: Value,
    pub(crate) reference_range: Option<Value>,
    pub(crate) interpretation: Option<Value>,
    pub(crate) labels: &'a [Label],
}

/// Emits one laboratory Observation collected at `collected`; returns
/// its reference.
pub(crate) fn lab_result(
    ctx: &mut Ctx,
    visit: &Visit,
    collected: Instant,
    v: LabValue<'_>,
) -> (String, Map<String, Value>) {
    let profile = us_core("us-core-observation-lab");
    let (reference, mut r) = ctx.observation(ObsHead {
        profile: &profile,
        category: ("laboratory", "Laboratory"),
        code: cc(sys::LOINC, v.loinc, v.display),
        visit,
        effective: collected,
        performer: reference_display(LAB, "Riverside Reference Laboratory"),
        labels: v.labels,
    });
    let (key, value) = match v.value {
        Value::Object(ref o) if o.contains_key("coding") => ("valueCodeableConcept", v.value),
        Value::String(_) => ("valueString", v.value),
        _ => ("valueQuantity", v.value),
    };
    r.insert(key.into(), value);
    if let Some(i) = v.interpretation {
        r.insert("interpretation".into(), i);
    }
    if let Some(rr) = v.reference_range {
        r.insert("referenceRange".into(), rr);
    }
    (reference, r)
}

/// Emits a US Core lab DiagnosticReport over `results`; returns its reference.
pub(crate) fn lab_report(
    ctx: &mut Ctx,
    visit: &Visit,
    code: (&str, &str),
    collected: Instant,
    results: &[String],
    labels: &[Label],
) -> String {
    let id = ctx.id("dr");
    let mut r = resource(
        "DiagnosticReport",
        &id,
        &us_core("us-core-diagnosticreport-lab"),
        labels,
    );
    r.insert("status".into(), json!("final"));
    r.insert(
        "category".into(),
        json!([{"coding": [coding("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")]}]),
    );
    r.insert("code".into(), cc(sys::LOINC, code.0, code.1));
    r.insert("subject".into(), ctx.subject());
    r.insert("encounter".into(), reference(&visit.reference));
    r.insert("effectiveDateTime".into(), json!(collected.datetime()));
    r.insert(
        "issued".into(),
        json!(collected.plus_minutes(180).datetime()),
    );
    r.insert(
        "performer".into(),
        json!([reference_display(LAB, "Riverside Reference Laboratory")]),
    );
    let refs: Vec<Value> = results.iter().map(|t| reference(t)).collect();
    r.insert("result".into(), Value::Array(refs));
    ctx.push(Kind::DiagnosticReport, r);
    format!("DiagnosticReport/{id}")
}

/// Emits the visit's lab panels; returns the DiagnosticReport references.
pub(crate) fn lab_panels(ctx: &mut Ctx, visit: &Visit) -> Vec<String> {
    let collected = visit.start.plus_minutes(30);
    let mut reports = Vec::new();
    for panel in panels_for(ctx, visit) {
        let mut results = Vec::with_capacity(panel.analytes.len());
        for a in panel.analytes {
            let (mean, sd) = distribution(ctx, a);
            let value = round(ctx.rng.normal(mean, sd).max(mean * 0.25), a.decimals);
            let (low, high) = match (a.loinc, ctx.person.female) {
                ("718-7", true) => (12.0, 15.5),
                ("718-7", false) => (13.5, 17.5),
                _ => (a.low, a.high),
            };
            let range = if low > 0.0 {
                json!([{"low": quantity(low, a.unit, a.unit), "high": quantity(high, a.unit, a.unit)}])
            } else {
                json!([{"high": quantity(high, a.unit, a.unit)}])
            };
            let (reference, r) = lab_result(
                ctx,
                visit,
                collected,
                LabValue {
                    loinc: a.loinc,
                    display: a.display,
                    value: quantity(value, a.unit, a.unit),
                    reference_range: Some(range),
                    interpretation: Some(interpretation(value, low, high)),
                    labels: &[],
                },
            );
            ctx.push(Kind::Observation, r);
            results.push(reference);
        }
        reports.push(lab_report(
            ctx,
            visit,
            (panel.loinc, panel.display),
            collected,
            &results,
            &[],
        ));
    }
    reports
}
