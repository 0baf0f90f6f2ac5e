//! Documents and provenance: clinical notes as US Core DocumentReferences
//! (LOINC type, category clinical-note, base64 text/plain attachment,
//! context.encounter), study reports (ECG, chest X-ray) as US Core note
//! DiagnosticReports with a presentedForm, and US Core Provenance (author
//! Practitioner on behalf of an Organization, plus the transmitter) for the
//! resources of each visit and for the Patient.

use serde_json::{json, Value};

use super::fhir::{base64, cc, coding, reference, resource, sys, us_core, Label};
use super::record::{Ctx, Kind};
use super::shared::{CLINIC, CLINICIANS};
use super::time::Instant;
use super::visits::{org_reference, reason, Class, Purpose, Visit};

/// What a DocumentReference needs.
pub(crate) struct NoteSpec<'a> {
    pub(crate) visit: &'a Visit,
    pub(crate) loinc: (&'a str, &'a str),
    pub(crate) title: &'a str,
    pub(crate) body: String,
    pub(crate) at: Instant,
    pub(crate) labels: &'a [Label],
}

/// Emits a US Core DocumentReference; returns its reference.
pub(crate) fn document_reference(ctx: &mut Ctx, n: NoteSpec<'_>) -> String {
    let id = ctx.id("doc");
    let p = &ctx.person;
    let header = format!(
        "{}\nPatient: {} (DOB {})\nDate of service: {}\nClinician: {}\n\n",
        n.title.to_uppercase(),
        p.display_name(),
        super::time::date(p.birth_day),
        n.visit.start.date(),
        CLINICIANS[n.visit.clinician].display(),
    );
    let text = format!("{header}{}\n", n.body);
    let mut r = resource(
        "DocumentReference",
        &id,
        &us_core("us-core-documentreference"),
        n.labels,
    );
    r.insert(
        "identifier".into(),
        json!([{"system": "http://hospital.example.org/document", "value": id}]),
    );
    r.insert("status".into(), json!("current"));
    r.insert("docStatus".into(), json!("final"));
    r.insert("type".into(), cc(sys::LOINC, n.loinc.0, n.loinc.1));
    r.insert(
        "category".into(),
        json!([cc(
            "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
            "clinical-note",
            "Clinical Note"
        )]),
    );
    r.insert("subject".into(), ctx.subject());
    r.insert("date".into(), json!(n.at.datetime()));
    r.insert("author".into(), json!([n.visit.performer()]));
    r.insert("custodian".into(), org_reference(n.visit));
    r.insert("content".into(), json!([{
        "attachment": {
            "contentType": "text/plain",
            "language": "en-US",
            "data": base64(text.as_bytes()),
            "title": n.title,
            "creation": n.at.datetime()
        },
        "format": coding("http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "urn:ihe:iti:xds:2017:mimeTypeSufficient", "mimeType Sufficient")
    }]));
    r.insert(
        "context".into(),
        json!({
            "encounter": [reference(&n.visit.reference)],
            "period": {"start": n.visit.start.datetime(), "end": n.visit.end.datetime()}
        }),
    );
    ctx.push(Kind::DocumentReference, r);
    format!("DocumentReference/{id}")
}

const PLANS: [&str; 5] = [
    "Continue current medications. Return in 6 months or sooner as needed.",
    "Reviewed results with the patient. Follow up in 3 months.",
    "Lifestyle counselling given (diet, exercise). Recheck labs at next visit.",
    "Patient verbalized understanding of the plan. Return precautions reviewed.",
    "Refills sent to pharmacy. Annual wellness visit in 12 months.",
];

/// Emits the visit's notes: a progress note, an ED note, or an H&P plus a
/// discharge summary for an inpatient stay. Returns their references.
pub(crate) fn visit_notes(ctx: &mut Ctx, visit: &Visit) -> Vec<String> {
    let about = match (visit.purpose, reason(visit)) {
        (Purpose::CheckUp, _) | (_, None) => "Routine health maintenance examination".to_owned(),
        (Purpose::FollowUp(_), Some(dx)) => format!("Follow-up of {}", dx.text.to_lowercase()),
        (_, Some(dx)) => dx.text.to_owned(),
    };
    let plan = *ctx.rng.pick(&PLANS);
    let body = format!("Reason for visit: {about}.\nAssessment: {about}; stable.\nPlan: {plan}");
    let mut out = Vec::new();
    let notes: &[((&str, &str), &str, i64)] = match visit.class {
        Class::Ambulatory => &[(("11506-3", "Progress note"), "Progress note", 0)],
        Class::Emergency => &[(
            ("34111-5", "Emergency department Note"),
            "Emergency department note",
            0,
        )],
        Class::Inpatient => &[
            (
                ("34117-2", "History and physical note"),
                "History and physical",
                0,
            ),
            (("18842-5", "Discharge summary"), "Discharge summary", 1),
        ],
    };
    for (loinc, title, at_end) in notes {
        let at = if *at_end == 1 {
            visit.end
        } else {
            visit.start.plus_minutes(55)
        };
        out.push(document_reference(
            ctx,
            NoteSpec {
                visit,
                loinc: *loinc,
                title,
                body: body.clone(),
                at,
                labels: &[],
            },
        ));
    }
    out
}

/// Emits the report of an ECG (`29303009`) or chest X-ray as a US Core
/// note DiagnosticReport; returns its reference.
pub(crate) fn study_report(ctx: &mut Ctx, visit: &Visit, procedure: &str, at: Instant) -> String {
    let id = ctx.id("dr");
    let ecg = procedure == "29303009";
    let (category, code, conclusion) = if ecg {
        (
            ("LP29708-2", "Cardiology"),
            ("11524-6", "EKG study"),
            *ctx.rng.pick(&[
                "Normal sinus rhythm. No acute ST changes.",
                "Sinus tachycardia. Nonspecific T wave changes.",
            ]),
        )
    } else {
        (
            ("LP29684-5", "Radiology"),
            ("36643-5", "XR Chest 2 Views"),
            *ctx.rng.pick(&[
                "No acute cardiopulmonary process.",
                "Patchy right lower lobe opacity, consistent with pneumonia.",
            ]),
        )
    };
    let text = format!(
        "{}\nPatient: {}\nImpression: {conclusion}\n",
        code.1,
        ctx.person.display_name()
    );
    let mut r = resource(
        "DiagnosticReport",
        &id,
        &us_core("us-core-diagnosticreport-note"),
        &[],
    );
    r.insert("status".into(), json!("final"));
    r.insert(
        "category".into(),
        json!([cc(sys::LOINC, category.0, category.1)]),
    );
    r.insert("code".into(), cc(sys::LOINC, code.0, code.1));
    r.insert("subject".into(), ctx.subject());
    r.insert("encounter".into(), reference(&visit.reference));
    r.insert("effectiveDateTime".into(), json!(at.datetime()));
    r.insert("issued".into(), json!(at.plus_minutes(60).datetime()));
    r.insert("performer".into(), json!([visit.performer()]));
    r.insert("resultsInterpreter".into(), json!([visit.performer()]));
    r.insert("conclusion".into(), json!(conclusion));
    r.insert(
        "presentedForm".into(),
        json!([{"contentType": "text/plain", "data": base64(text.as_bytes()), "title": code.1}]),
    );
    ctx.push(Kind::DiagnosticReport, r);
    format!("DiagnosticReport/{id}")
}

fn agent(
    kind: &str,
    display: &str,
    system: &str,
    who: Value,
    on_behalf_of: Option<Value>,
) -> Value {
    let mut a = json!({"type": cc(system, kind, display), "who": who});
    if let (Some(obj), Some(org)) = (a.as_object_mut(), on_behalf_of) {
        obj.insert("onBehalfOf".into(), org);
    }
    a
}

/// Emits a US Core Provenance for `targets`, authored by the visit's
/// clinician on behalf of its organization.
pub(crate) fn provenance(ctx: &mut Ctx, visit: &Visit, targets: &[String], labels: &[Label]) {
    emit_provenance(
        ctx,
        targets,
        visit.end.plus_minutes(30),
        visit.performer(),
        org_reference(visit),
        labels,
    );
}

fn emit_provenance(
    ctx: &mut Ctx,
    targets: &[String],
    recorded: Instant,
    author: Value,
    org: Value,
    labels: &[Label],
) {
    let id = ctx.id("prov");
    let mut r = resource("Provenance", &id, &us_core("us-core-provenance"), labels);
    let targets: Vec<Value> = targets.iter().map(|t| reference(t)).collect();
    r.insert("target".into(), Value::Array(targets));
    r.insert("recorded".into(), json!(recorded.datetime()));
    r.insert(
        "agent".into(),
        json!([
            agent(
                "author",
                "Author",
                "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                author,
                Some(org.clone())
            ),
            agent(
                "transmitter",
                "Transmitter",
                "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type",
                org,
                None
            )
        ]),
    );
    ctx.push(Kind::Provenance, r);
}

/// Provenance of the Patient resource itself (registered by the clinic).
pub(crate) fn patient_provenance(ctx: &mut Ctx, visits: &[Visit]) {
    let Some(first) = visits.first() else {
        return;
    };
    let gp = CLINICIANS[ctx.person.gp].reference_value();
    let patient = ctx.patient.clone();
    emit_provenance(
        ctx,
        &[patient],
        first.start.plus_minutes(-30),
        gp,
        json!({"reference": CLINIC, "display": "Riverside Primary Care Clinic"}),
        &[],
    );
}
