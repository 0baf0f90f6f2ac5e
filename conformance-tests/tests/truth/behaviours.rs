//! What a `rest.resource[]` declares besides interactions (R4
//! capabilitystatement.html, http.html): `updateCreate` (PUT to a new id
//! creates), `conditionalCreate` (`If-None-Exist`), `conditionalUpdate`
//! (`PUT [type]?search`), `conditionalDelete` (`DELETE [type]?search`),
//! `versioning: versioned-update` (`If-Match` is honoured), `readHistory`
//! (an old version stays readable), and `rest.compartment` (the Patient
//! compartment answers `GET Patient/[id]/[type]`).

use serde_json::{json, Value};

use crate::{
    cases::{described, enc, ensure, expect_status, Cases},
    fixtures,
    interactions::post_resolved,
    params::{expression, search_value},
    server::{entries, Truth},
};

const PATIENT_COMPARTMENT: &str = "http://hl7.org/fhir/CompartmentDefinition/patient";

/// The types R4's Patient CompartmentDefinition lists (4.0.1).
#[rustfmt::skip]
const R4_PATIENT_COMPARTMENT: &[&str] = &[
    "Account", "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse",
    "AuditEvent", "Basic", "BodyStructure", "CarePlan", "CareTeam", "ChargeItem", "Claim",
    "ClaimResponse", "ClinicalImpression", "Communication", "CommunicationRequest", "Composition",
    "Condition", "Consent", "Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse",
    "DetectedIssue", "DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest",
    "DocumentReference", "Encounter", "EnrollmentRequest", "EpisodeOfCare", "ExplanationOfBenefit",
    "FamilyMemberHistory", "Flag", "Goal", "Group", "ImagingStudy", "Immunization",
    "ImmunizationEvaluation", "ImmunizationRecommendation", "Invoice", "List", "MeasureReport",
    "Media", "MedicationAdministration", "MedicationDispense", "MedicationRequest",
    "MedicationStatement", "MolecularSequence", "NutritionOrder", "Observation", "Patient",
    "Person", "Procedure", "Provenance", "QuestionnaireResponse", "RelatedPerson", "RequestGroup",
    "ResearchSubject", "RiskAssessment", "Schedule", "ServiceRequest", "Specimen",
    "SupplyDelivery", "SupplyRequest", "VisionPrescription",
];

pub fn run(t: &Truth, cases: &mut Cases) {
    for res in t.resources() {
        let ty = res["type"].as_str().unwrap_or_default().to_owned();
        if res["updateCreate"] == true {
            cases.run(&format!("{ty} updateCreate"), || update_create(t, &ty));
        }
        if res["conditionalCreate"] == true {
            cases.run(&format!("{ty} conditionalCreate"), || {
                conditional_create(t, &ty)
            });
        }
        if res["conditionalUpdate"] == true {
            cases.run(&format!("{ty} conditionalUpdate"), || {
                conditional_update(t, &ty)
            });
        }
        if matches!(
            res["conditionalDelete"].as_str(),
            Some("single" | "multiple")
        ) {
            cases.run(&format!("{ty} conditionalDelete"), || {
                conditional_delete(t, &ty)
            });
        }
        if res["versioning"] == "versioned-update" {
            cases.run(&format!("{ty} versioned-update"), || {
                versioned_update(t, &ty)
            });
        }
        if res["readHistory"] == true {
            cases.run(&format!("{ty} readHistory"), || read_history(t, &ty));
        }
    }
    let compartments: Vec<String> = t.rest()["compartment"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    for c in compartments {
        if c == PATIENT_COMPARTMENT {
            patient_compartment(t, cases);
        } else {
            cases.fail(
                &format!("compartment {c}"),
                "declared but not exercised by the truth test",
            );
        }
    }
}

/// The resolved first fixture of `ty`.
fn body_of(t: &Truth, ty: &str) -> Result<Value, String> {
    let mut body = fixtures::fixtures(ty)
        .into_iter()
        .next()
        .ok_or_else(|| format!("cannot be exercised: the truth test has no {ty} fixture"))?;
    fixtures::resolve(&mut body, &|x| t.known_id(x))?;
    Ok(body)
}

/// A condition on `ty` matching only resources marked with `value`:
/// `identifier` where declared, else `_tag`; the fixture so marked.
fn condition(t: &Truth, ty: &str, value: &str) -> Result<(String, Value), String> {
    let declared = |name: &str| {
        t.resources().iter().any(|r| {
            r["type"] == ty
                && r["searchParam"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["name"] == name)
        })
    };
    let mut body = body_of(t, ty)?;
    if declared("identifier") {
        let id = json!({"system": "urn:truth:cond", "value": value});
        body["identifier"] = if body["identifier"].is_array() {
            json!([id])
        } else {
            id
        };
        Ok((
            format!("identifier={}", enc(&format!("urn:truth:cond|{value}"))),
            body,
        ))
    } else if declared("_tag") {
        body["meta"]["tag"] = json!([{"system": "urn:truth:cond", "code": value}]);
        Ok((
            format!("_tag={}", enc(&format!("urn:truth:cond|{value}"))),
            body,
        ))
    } else {
        Err(format!(
            "cannot be exercised: {ty} declares neither identifier nor _tag to condition on"
        ))
    }
}

fn unique(tag: &str, ty: &str) -> String {
    format!(
        "{tag}-{}-{}",
        ty.to_ascii_lowercase(),
        rand::random::<u32>()
    )
}

fn update_create(t: &Truth, ty: &str) -> Result<(), String> {
    let id = unique("uc", ty);
    let mut body = body_of(t, ty)?;
    body["id"] = json!(id);
    let path = format!("{ty}/{id}");
    let r = t.send("PUT", &path, &body)?;
    expect_status("PUT (new id)", &path, &r, &[201])?;
    let back = t.get(&path)?;
    expect_status("GET", &path, &back, &[200])
}

/// `If-None-Exist` naming the suite's fixture → 200 and no new resource.
fn conditional_create(t: &Truth, ty: &str) -> Result<(), String> {
    let existing = t
        .known_id(ty)
        .ok_or_else(|| format!("cannot be exercised: no {ty} exists"))?;
    let condition = format!("_id={}", enc(&existing));
    let r = t.send_with(
        "POST",
        ty,
        &[("if-none-exist", condition.as_str())],
        &body_of(t, ty)?,
    )?;
    expect_status(
        &format!("POST (If-None-Exist: {condition})"),
        ty,
        &r,
        &[200],
    )?;
    let location = r.header("location").unwrap_or_default();
    ensure(
        location.is_empty() || location.contains(&format!("/{ty}/{existing}")),
        || {
            format!("POST {ty} If-None-Exist {condition} → 200 but Location {location} names another resource")
        },
    )
}

/// `PUT [type]?identifier=…` (or `_tag`) creates (201) then updates the same resource
/// (200).
fn conditional_update(t: &Truth, ty: &str) -> Result<(), String> {
    let value = unique("cu", ty);
    let (query, body) = condition(t, ty, &value)?;
    let path = format!("{ty}?{query}");
    let r = t.send("PUT", &path, &body)?;
    expect_status("PUT (no match)", &path, &r, &[201])?;
    let first = r.json["id"].as_str().unwrap_or_default().to_owned();
    let r = t.send("PUT", &path, &body)?;
    expect_status("PUT (one match)", &path, &r, &[200])?;
    ensure(first.is_empty() || r.json["id"] == first.as_str(), || {
        format!(
            "PUT {path} (one match) updated {} instead of {first}",
            r.json["id"]
        )
    })
}

/// `DELETE [type]?identifier=…` (or `_tag`) removes the one match.
fn conditional_delete(t: &Truth, ty: &str) -> Result<(), String> {
    let value = unique("cd", ty);
    let (query, body) = condition(t, ty, &value)?;
    let id = crate::interactions::post(t, ty, &body)?;
    let path = format!("{ty}?{query}");
    let r = t
        .api
        .send("DELETE", &path, &[], None)
        .map_err(|e| format!("DELETE {path}: {e}"))?;
    expect_status("DELETE", &path, &r, &[200, 204])?;
    let after = t.get(&format!("{ty}/{id}"))?;
    expect_status(
        "GET (after conditional DELETE)",
        &format!("{ty}/{id}"),
        &after,
        &[404, 410],
    )
}

/// `If-Match` with a stale version → 412; with the current one → 200.
fn versioned_update(t: &Truth, ty: &str) -> Result<(), String> {
    let id = post_resolved(t, ty, body_of(t, ty)?)?;
    let path = format!("{ty}/{id}");
    let current = t.get(&path)?;
    let version = current.json["meta"]["versionId"]
        .as_str()
        .unwrap_or("1")
        .to_owned();
    let mut body = body_of(t, ty)?;
    body["id"] = json!(id);
    let r = t.send_with("PUT", &path, &[("if-match", "W/\"999\"")], &body)?;
    expect_status("PUT (If-Match: W/\"999\")", &path, &r, &[409, 412])?;
    let etag = format!("W/\"{version}\"");
    let r = t.send_with("PUT", &path, &[("if-match", etag.as_str())], &body)?;
    expect_status(&format!("PUT (If-Match: {etag})"), &path, &r, &[200])
}

/// After an update, the first version is still readable and differs (its
/// version id is the server's: "1" on the embedded store, an opaque id on
/// Medplum).
fn read_history(t: &Truth, ty: &str) -> Result<(), String> {
    let id = post_resolved(t, ty, body_of(t, ty)?)?;
    let path = format!("{ty}/{id}");
    let first = t.get(&path)?;
    expect_status("GET", &path, &first, &[200])?;
    let v1 = first.json["meta"]["versionId"]
        .as_str()
        .ok_or_else(|| format!("GET {path}: no meta.versionId"))?
        .to_owned();
    let mut body = body_of(t, ty)?;
    body["id"] = json!(id);
    body["language"] = json!("de");
    let r = t.send("PUT", &path, &body)?;
    expect_status("PUT", &path, &r, &[200])?;
    let old_path = format!("{path}/_history/{v1}");
    let old = t.get(&old_path)?;
    expect_status("GET", &old_path, &old, &[200])?;
    ensure(
        old.json["language"] != "de" && old.json["meta"]["versionId"] == v1.as_str(),
        || {
            format!(
                "GET {old_path} is not the first version: {}",
                described("GET", &old_path, &old)
            )
        },
    )
}

/// For every declared type of R4's Patient compartment with a `patient`
/// parameter: `GET Patient/[id]/[type]` holds a resource of that patient.
fn patient_compartment(t: &Truth, cases: &mut Cases) {
    for res in t.resources() {
        let ty = res["type"].as_str().unwrap_or_default().to_owned();
        let has_patient = res["searchParam"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "patient");
        if !has_patient || !R4_PATIENT_COMPARTMENT.contains(&ty.as_str()) {
            continue;
        }
        cases.run(&format!("compartment Patient/[id]/{ty}"), || {
            let expr = expression(&ty, "patient").ok_or("no patient expression")?;
            let (member, patient) = t
                .pool
                .get(&ty)
                .into_iter()
                .flatten()
                .find_map(|r| search_value(r, "reference", &expr).map(|v| (r, v)))
                .ok_or_else(|| format!("cannot be exercised: no {ty} of a patient in the data"))?;
            let id = member["id"].as_str().unwrap_or_default();
            let path = format!("{patient}/{ty}?_count=200");
            let r = t.get(&path)?;
            expect_status("GET", &path, &r, &[200])?;
            let found = entries(&r.json, "match").into_iter().any(|e| e["id"] == id);
            ensure(found, || {
                format!("GET {path}: {ty}/{id} (of {patient}) is not in the compartment")
            })
        });
    }
}
