//! Provider Access attribution Groups (CMS-0057-F, PDex "Provider Access
//! API"): one Group per provider organization of the seed, listing the
//! members attributed to it with `member.period`. Written by the demo seed
//! after the patients (`demo::seed_population`), so a provider's Backend
//! Services client (`[payer] provider_clients`) has its list to search and
//! export.
//!
//! Deterministic by patient index `k`:
//! - `attribution-riverside-clinic` (managed by the primary care clinic,
//!   every patient's `managingOrganization`): every patient, from
//!   2024-01-01, open-ended;
//! - `attribution-riverside-hospital` (the hospital): every third patient
//!   (`k % 3 == 0`), from 2025-01-01; of those, patients with `k % 9 == 6`
//!   left on 2025-06-30 (their `period.end` is past).

use serde_json::{json, Map, Value};

use super::{
    fhir::{coding, reference_display, resource, set},
    record::patient_id,
    shared::{CLINIC, HOSPITAL},
};

/// Id of the clinic's attribution Group.
pub const CLINIC_GROUP: &str = "attribution-riverside-clinic";
/// Id of the hospital's attribution Group.
pub const HOSPITAL_GROUP: &str = "attribution-riverside-hospital";

/// The attribution Groups of a population of `patients` patients.
pub fn groups(patients: u32) -> Vec<Value> {
    let n = patients.max(1);
    let clinic: Vec<Value> = (0..n)
        .map(|k| member(k, json!({"start": "2024-01-01"})))
        .collect();
    let hospital: Vec<Value> = (0..n)
        .filter(|k| k % 3 == 0)
        .map(|k| {
            let period = if k % 9 == 6 {
                json!({"start": "2025-01-01", "end": "2025-06-30"})
            } else {
                json!({"start": "2025-01-01"})
            };
            member(k, period)
        })
        .collect();
    vec![
        group(
            CLINIC_GROUP,
            CLINIC,
            "Riverside Primary Care Clinic",
            clinic,
        ),
        group(HOSPITAL_GROUP, HOSPITAL, "Riverside Hospital", hospital),
    ]
}

fn member(k: u32, period: Value) -> Value {
    json!({"entity": {"reference": format!("Patient/{}", patient_id(k))}, "period": period})
}

fn group(id: &str, org: &str, name: &str, members: Vec<Value>) -> Value {
    let r: Map<String, Value> = resource("Group", id, "", &[]);
    let r = set(
        r,
        "identifier",
        json!([{"system": "https://acmehealthplan.example.org/attribution", "value": id}]),
    );
    let r = set(r, "active", json!(true));
    let r = set(r, "type", json!("person"));
    let r = set(r, "actual", json!(true));
    let r = set(
        r,
        "code",
        json!({"coding": [coding("http://hl7.org/fhir/us/davinci-atr/CodeSystem/atr-group-code", "attribution", "Attribution list")]}),
    );
    let r = set(r, "name", json!(format!("{name} attributed members")));
    let r = set(r, "managingEntity", reference_display(org, name));
    let r = set(r, "quantity", json!(members.len()));
    Value::Object(set(r, "member", Value::Array(members)))
}
