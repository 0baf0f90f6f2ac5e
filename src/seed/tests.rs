//! Tests of the seed generator: determinism, size, referential integrity,
//! id syntax, the demo users' records, sensitive-label rates and streaming.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::{
    generate, generate_batches, patient_id, patient_resources, DR_LEE_PRACTITIONER_ID,
    PAT_JONES_PATIENT_ID,
};

fn key(r: &Value) -> String {
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap_or(""),
        r["id"].as_str().unwrap_or("")
    )
}

/// Every `reference` string anywhere in `v`.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    _ => references(x, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

fn labels(r: &Value) -> Vec<String> {
    r["meta"]["security"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Codes of the resource's main CodeableConcept(s).
fn codes(r: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["code", "medicationCodeableConcept"] {
        if let Some(cs) = r[field]["coding"].as_array() {
            out.extend(
                cs.iter()
                    .filter_map(|c| c["code"].as_str().map(str::to_owned)),
            );
        }
    }
    out
}

/// Which patient a resource belongs to (by id number), if any.
fn owner(r: &Value) -> Option<String> {
    let id = r["id"].as_str()?;
    if r["resourceType"] == "Patient" {
        return Some(id.to_owned());
    }
    let parts: Vec<&str> = id.split('-').collect();
    match parts[..] {
        [_, num, seq] if num.len() == 5 && seq.len() == 3 && num.parse::<u32>().is_ok() => {
            Some(format!("patient-{num}"))
        }
        _ => None,
    }
}

#[test]
fn deterministic_and_prefix_stable() {
    let a = serde_json::to_string(&generate(5).resources).unwrap_or_default();
    let b = serde_json::to_string(&generate(5).resources).unwrap_or_default();
    assert!(!a.is_empty());
    assert_eq!(a, b);
    let small = generate(5).resources;
    let big = generate(50).resources;
    assert_eq!(small[..], big[..small.len()]);
    assert_eq!(patient_resources(3), patient_resources(3));
    let p3: Vec<Value> = big
        .iter()
        .filter(|r| owner(r).as_deref() == Some(patient_id(3).as_str()))
        .cloned()
        .collect();
    assert_eq!(p3, patient_resources(3));
}

#[test]
fn population_is_consistent() {
    let pop = generate(200);
    let mut ids = HashSet::new();
    for r in &pop.resources {
        let id = r["id"].as_str().unwrap_or("");
        assert!(
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
            "bad id {id:?}"
        );
        assert!(ids.insert(key(r)), "duplicate {}", key(r));
        assert!(r["meta"].get("versionId").is_none() && r["meta"].get("lastUpdated").is_none());
    }
    for r in &pop.resources {
        let mut refs = Vec::new();
        references(r, &mut refs);
        for target in refs {
            assert!(
                ids.contains(&target),
                "{} references missing {target}",
                key(r)
            );
        }
    }
    // Shared resources first, then patients in order.
    let first_patient = pop
        .resources
        .iter()
        .position(|r| r["resourceType"] == "Patient")
        .unwrap_or(0);
    assert!(pop.resources[..first_patient]
        .iter()
        .all(|r| owner(r).is_none()));
    assert_eq!(
        pop.resources
            .iter()
            .filter(|r| r["resourceType"] == "Practitioner")
            .count(),
        11
    );
}

#[test]
fn resources_per_patient_in_range() {
    let mut total = 0;
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    for k in 0..200 {
        let rs = patient_resources(k);
        assert!(
            (25..=200).contains(&rs.len()),
            "patient {k} has {}",
            rs.len()
        );
        assert_eq!(rs[0]["resourceType"], "Patient");
        for r in &rs {
            *per_type
                .entry(r["resourceType"].as_str().unwrap_or("").to_owned())
                .or_default() += 1;
        }
        total += rs.len();
    }
    let mean = total / 200;
    eprintln!("mean resources per patient: {mean}; by type: {per_type:?}");
    assert!((80..=120).contains(&mean), "mean {mean}");
    for t in [
        "Encounter",
        "Condition",
        "Observation",
        "DiagnosticReport",
        "DocumentReference",
        "MedicationRequest",
        "AllergyIntolerance",
        "Immunization",
        "Procedure",
        "Coverage",
        "Provenance",
    ] {
        assert!(per_type.get(t).copied().unwrap_or(0) > 0, "no {t}");
    }
}

#[test]
fn demo_users_records_exist() {
    let pop = generate(3);
    assert_eq!(pop.pat_jones_patient, PAT_JONES_PATIENT_ID);
    assert_eq!(pop.dr_lee_practitioner, DR_LEE_PRACTITIONER_ID);
    let pat = pop
        .resources
        .iter()
        .find(|r| r["resourceType"] == "Patient" && r["id"] == PAT_JONES_PATIENT_ID);
    let pat = pat.cloned().unwrap_or_default();
    assert_eq!(pat["name"][0]["family"], "Jones");
    assert_eq!(pat["name"][0]["given"][0], "Pat");
    let lee = pop
        .resources
        .iter()
        .find(|r| r["resourceType"] == "Practitioner" && r["id"] == DR_LEE_PRACTITIONER_ID);
    assert_eq!(lee.cloned().unwrap_or_default()["name"][0]["family"], "Lee");
    let jones = patient_resources(0);
    assert!(
        jones.iter().any(|r| !labels(r).is_empty()),
        "Pat Jones has a labelled record"
    );
    assert!(
        jones.iter().filter(|r| labels(r).is_empty()).count() > 20,
        "and normal ones"
    );
    assert!(jones
        .iter()
        .filter(|r| !labels(r).is_empty())
        .all(|r| labels(r).contains(&"R".to_owned())));
}

#[test]
fn sensitive_rates_and_unlabelled_records() {
    let n = 400;
    let mut with = BTreeMap::<&str, usize>::new();
    let mut unlabelled_sensitive = 0;
    for k in 0..n {
        let rs = patient_resources(k);
        for (label, name) in [
            ("HIV", "hiv"),
            ("MH", "mental"),
            ("SUD", "sud"),
            ("GDIS", "genetic"),
        ] {
            if rs.iter().any(|r| labels(r).iter().any(|l| l == label)) {
                *with.entry(name).or_default() += 1;
            }
        }
        for r in &rs {
            let sensitive_code = codes(r).iter().any(|c| {
                c == "B20"
                    || c.starts_with("F1")
                    || c.starts_with("F32")
                    || c == "20447-9"
                    || c == "69548-6"
            });
            if sensitive_code && labels(r).is_empty() {
                unlabelled_sensitive += 1;
            }
        }
    }
    eprintln!("patients with labels: {with:?}; unlabelled sensitive-coded resources: {unlabelled_sensitive}");
    let rate = |name: &str| with.get(name).copied().unwrap_or(0) * 1000 / n as usize;
    assert!((55..=160).contains(&rate("hiv")), "hiv {}", rate("hiv"));
    assert!(
        (70..=190).contains(&rate("mental")),
        "mental {}",
        rate("mental")
    );
    assert!((45..=140).contains(&rate("sud")), "sud {}", rate("sud"));
    assert!(
        (20..=90).contains(&rate("genetic")),
        "genetic {}",
        rate("genetic")
    );
    assert!(unlabelled_sensitive >= 3);
    // Patient 1's opioid-use Condition is always unlabelled.
    let p1 = patient_resources(1);
    assert!(p1.iter().any(|r| r["resourceType"] == "Condition"
        && codes(r).contains(&"F11.20".to_owned())
        && labels(r).is_empty()));
}

#[test]
fn streaming_matches_generate() {
    let mut batches = Vec::new();
    let ids = generate_batches(7, 3, |b| {
        batches.push(b);
        Ok(())
    });
    let ids = ids.unwrap_or_else(|_| super::PopulationIds {
        pat_jones_patient: String::new(),
        dr_lee_practitioner: String::new(),
    });
    assert_eq!(ids.pat_jones_patient, PAT_JONES_PATIENT_ID);
    assert_eq!(batches.len(), 4, "shared + 3 patient batches");
    assert!(batches[0].iter().all(|r| owner(r).is_none()));
    let flat: Vec<Value> = batches.into_iter().flatten().collect();
    assert_eq!(flat, generate(7).resources);
    // The sink's error stops generation.
    let mut calls = 0;
    let err = generate_batches(10, 1, |_| {
        calls += 1;
        if calls == 2 {
            Err(anyhow::anyhow!("disk full"))
        } else {
            Ok(())
        }
    });
    assert!(err.is_err());
    assert_eq!(calls, 2);
}

/// Every `YYYY-MM-DD...` string anywhere in `v`.
fn dates(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            let shape = b.len() >= 10
                && b[..4].iter().all(u8::is_ascii_digit)
                && b[4] == b'-'
                && b[7] == b'-'
                && b[5..7].iter().all(u8::is_ascii_digit);
            if shape {
                out.push(s[..10].to_owned());
            }
        }
        Value::Object(map) => map.values().for_each(|x| dates(x, out)),
        Value::Array(items) => items.iter().for_each(|x| dates(x, out)),
        _ => {}
    }
}

#[test]
fn dates_lie_between_birth_and_the_anchor() {
    for k in 0..150 {
        let rs = patient_resources(k);
        let birth = rs[0]["birthDate"].as_str().unwrap_or("").to_owned();
        for r in &rs {
            let mut found = Vec::new();
            let mut body = r.clone();
            if r["resourceType"] == "Coverage" {
                // The plan period runs to the end of the anchor year.
                body["period"]["end"] = Value::Null;
            }
            dates(&body, &mut found);
            for d in found {
                assert!(d.as_str() < "2026-01-01", "{} has {d}", key(r));
                assert!(d >= birth, "{} has {d} before birth {birth}", key(r));
            }
        }
    }
}
