//! Operation truth: every declared `operation` (rest-level and per type)
//! gets one minimal valid invocation and must answer as its
//! OperationDefinition says; every declared `supportedProfile` is one
//! `$validate?profile=` knows. An operation name this file has no
//! invocation for fails as "declared but not exercised", so the statement
//! and the test have to agree.

use serde_json::{json, Value};

use crate::{
    cases::{described, ensure, expect_status, short, Cases},
    fixtures,
    server::{entries, Truth, ORGANIZATION},
};

/// The types whose seeded data the invocations read (a Coverage's member
/// id and beneficiary, a Patient, a Group), sampled even where the
/// statement does not declare the type.
pub const DATA_TYPES: &[&str] = &["Coverage", "Patient", "Group"];

/// `(level, name)`: level is `system` or the resource type.
fn declared(t: &Truth) -> Vec<(String, String)> {
    let names = |holder: &Value| -> Vec<String> {
        holder["operation"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| {
                o["name"]
                    .as_str()
                    .map(|n| n.trim_start_matches('$').to_owned())
            })
            .collect()
    };
    let mut out: Vec<(String, String)> = names(t.rest())
        .into_iter()
        .map(|n| ("system".to_owned(), n))
        .collect();
    for res in t.resources() {
        let ty = res["type"].as_str().unwrap_or_default().to_owned();
        out.extend(names(&res).into_iter().map(|n| (ty.clone(), n)));
    }
    out
}

pub fn run(t: &Truth, cases: &mut Cases) {
    for (level, name) in declared(t) {
        let case = if level == "system" {
            format!("operation ${name}")
        } else {
            format!("operation {level}/${name}")
        };
        cases.run(&case, || invoke(t, &level, &name));
    }
    for res in t.resources() {
        let ty = res["type"].as_str().unwrap_or_default().to_owned();
        for profile in res["supportedProfile"].as_array().into_iter().flatten() {
            let profile = profile.as_str().unwrap_or_default();
            cases.run(&format!("{ty} supportedProfile {profile}"), || {
                validate_against(t, &ty, &res, profile)
            });
        }
    }
}

/// A declared `supportedProfile` is one `$validate?profile=` knows (the
/// stored resource may well not conform: only "unknown" is a failure).
fn validate_against(t: &Truth, ty: &str, res: &Value, profile: &str) -> Result<(), String> {
    let declares_validate = res["operation"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["name"] == "validate");
    ensure(declares_validate, || {
        format!(
            "cannot be exercised: {ty} declares supportedProfile but no $validate to check it with"
        )
    })?;
    let body = to_validate(t, ty)?;
    let path = format!("{ty}/$validate?profile={}", crate::cases::enc(profile));
    let r = t.send("POST", &path, &body)?;
    expect_status("POST", &path, &r, &[200])?;
    let unknown = r.json["issue"].as_array().into_iter().flatten().find(|i| {
        i["code"] == "not-supported"
            && i["diagnostics"]
                .as_str()
                .is_some_and(|d| d.contains(profile))
            && i["expression"][0] != format!("{ty}.meta.profile").as_str()
    });
    ensure(
        r.json["resourceType"] == "OperationOutcome" && unknown.is_none(),
        || {
            format!(
                "POST {path}: the declared profile is not known: {}",
                short(unknown.unwrap_or(&r.json))
            )
        },
    )
}

fn invoke(t: &Truth, level: &str, name: &str) -> Result<(), String> {
    match (level, name) {
        (_, "export") => export(t, level),
        ("Patient", "everything") => everything(t),
        (ty, "validate") => validate(t, ty),
        ("Claim", "submit") => submit(t).map(|_| ()),
        ("Claim", "inquire") => inquire(t),
        ("Patient", "member-match") => member_match(t),
        ("Group", "bulk-member-match") => bulk_member_match(t),
        ("Group", "davinci-data-export") => davinci_data_export(t),
        ("system" | "Questionnaire", "questionnaire-package") => package(t, level, fixtures::KNEE).map(|_| ()),
        ("Questionnaire", "next-question") => next_question(t),
        ("Subscription", "status") => subscription_status(t),
        _ => Err(format!(
            "declared but not exercised: the truth test has no invocation of ${name} at {level} level"
        )),
    }
}

const ASYNC: [(&str, &str); 1] = [("prefer", "respond-async")];

/// A Bulk Data kick-off answers 202 with a Content-Location; the job is
/// then cancelled.
fn export(t: &Truth, level: &str) -> Result<(), String> {
    let path = match level {
        "system" => "$export".to_owned(),
        "Patient" => "Patient/$export".to_owned(),
        "Group" => format!("Group/{}/$export", provider_group(t)?),
        other => {
            return Err(format!(
                "declared but not exercised: $export at {other} level"
            ))
        }
    };
    let r = t
        .api
        .send("GET", &path, &ASYNC, None)
        .map_err(|e| format!("GET {path}: {e}"))?;
    kicked_off(t, "GET", &path, &r)
}

fn kicked_off(
    t: &Truth,
    method: &str,
    path: &str,
    r: &conformance_tests::Resp,
) -> Result<(), String> {
    expect_status(method, path, r, &[202])?;
    let status_url = r
        .header("content-location")
        .ok_or_else(|| format!("{method} {path} → 202 without Content-Location"))?;
    // cancel the job (best effort: the kick-off is what is checked)
    let _ = t.api.send("DELETE", status_url, &[], None);
    Ok(())
}

/// The seeded attribution Group of the organization the token acts for.
fn provider_group(t: &Truth) -> Result<String, String> {
    let path = format!("Group?managing-entity={ORGANIZATION}");
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    entries(&r.json, "match")
        .into_iter()
        .find_map(|g| g["id"].as_str().map(str::to_owned))
        .or_else(|| t.known_id("Group"))
        .ok_or_else(|| "cannot be exercised: no Group in the data".to_owned())
}

fn everything(t: &Truth) -> Result<(), String> {
    let id = t
        .known_id("Patient")
        .ok_or("cannot be exercised: no Patient")?;
    let path = format!("Patient/{id}/$everything");
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    ensure(r.json["resourceType"] == "Bundle", || {
        described("GET", &path, &r)
    })?;
    let has_patient =
        r.json["entry"].as_array().into_iter().flatten().any(|e| {
            e["resource"]["resourceType"] == "Patient" && e["resource"]["id"] == id.as_str()
        });
    ensure(has_patient, || {
        format!("GET {path}: Patient/{id} is not in the Bundle")
    })
}

/// What `$validate` is given for `ty`: the suite's stored fixture, else a
/// stored resource, else (a type the statement declares no `create` for,
/// e.g. in front of an upstream that declares no types) the fixture's body
/// with its references resolved: `$validate` checks the resource it is
/// sent, stored or not.
fn to_validate(t: &Truth, ty: &str) -> Result<Value, String> {
    if let Some(stored) = t.fixture(ty).or_else(|| t.any(ty)) {
        return Ok(stored.clone());
    }
    let mut body = fixtures::fixtures(ty)
        .into_iter()
        .next()
        .ok_or_else(|| format!("cannot be exercised: no {ty} to validate (stored or fixture)"))?;
    // a referenced type may not be sampled either: any stored one will do
    let any_stored = |x: &str| {
        t.known_id(x).or_else(|| {
            let r = t.get(&format!("{x}?_count=1")).ok()?;
            entries(&r.json, "match")
                .into_iter()
                .find_map(|e| e["id"].as_str().map(str::to_owned))
        })
    };
    fixtures::resolve(&mut body, &any_stored)?;
    Ok(body)
}

/// `POST [type]/$validate` with a stored resource → 200 OperationOutcome.
fn validate(t: &Truth, ty: &str) -> Result<(), String> {
    let res = to_validate(t, ty)?;
    let path = format!("{ty}/$validate");
    let r = t.send("POST", &path, &res)?;
    expect_status("POST", &path, &r, &[200])?;
    ensure(r.json["resourceType"] == "OperationOutcome", || {
        format!("POST {path}: not an OperationOutcome: {}", short(&r.text))
    })
}

/// PAS `$submit` → 200 Bundle whose first entry is a ClaimResponse.
fn submit(t: &Truth) -> Result<Value, String> {
    let path = "Claim/$submit";
    let r = t.send("POST", path, &fixtures::pas_request("truth-pa-1", false))?;
    expect_status("POST", path, &r, &[200])?;
    claim_response(path, &r)
}

fn claim_response(path: &str, r: &conformance_tests::Resp) -> Result<Value, String> {
    let cr = &r.json["entry"][0]["resource"];
    ensure(
        r.json["resourceType"] == "Bundle" && cr["resourceType"] == "ClaimResponse",
        || {
            format!(
                "POST {path}: not a Bundle led by a ClaimResponse: {}",
                short(&r.text)
            )
        },
    )?;
    Ok(cr.clone())
}

/// PAS `$inquire` about the submitted request → its ClaimResponse.
fn inquire(t: &Truth) -> Result<(), String> {
    submit(t).map_err(|e| format!("the $submit before $inquire failed: {e}"))?;
    let path = "Claim/$inquire";
    let r = t.send("POST", path, &fixtures::pas_request("truth-pa-1", true))?;
    expect_status("POST", path, &r, &[200])?;
    claim_response(path, &r).map(|_| ())
}

/// A seeded Coverage with a member id, and its beneficiary Patient.
fn member(t: &Truth) -> Result<(Value, String), String> {
    let coverage = t
        .pool
        .get("Coverage")
        .into_iter()
        .flatten()
        .find(|c| c["subscriberId"].is_string() && c["beneficiary"]["reference"].is_string())
        .ok_or("cannot be exercised: no Coverage with a subscriberId and beneficiary")?;
    let patient_ref = coverage["beneficiary"]["reference"]
        .as_str()
        .unwrap_or_default();
    let r = t.get(patient_ref)?;
    expect_status("GET", patient_ref, &r, &[200])?;
    let member_id = coverage["subscriberId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((r.json, member_id))
}

fn member_match(t: &Truth) -> Result<(), String> {
    let (patient, member_id) = member(t)?;
    let path = "Patient/$member-match";
    let body = fixtures::parameters(fixtures::member_match_parts(&patient, &member_id));
    let r = t.send("POST", path, &body)?;
    expect_status("POST", path, &r, &[200])?;
    ensure(
        r.json["resourceType"] == "Parameters"
            && r.json["parameter"][0]["name"] == "MemberIdentifier",
        || format!("POST {path}: no MemberIdentifier: {}", short(&r.text)),
    )
}

fn bulk_member_match(t: &Truth) -> Result<(), String> {
    let (patient, member_id) = member(t)?;
    let path = "Group/$bulk-member-match";
    let part =
        json!({"name": "MemberBundle", "part": fixtures::member_match_parts(&patient, &member_id)});
    let r = t.send_with("POST", path, &ASYNC, &fixtures::parameters(vec![part]))?;
    if r.status == 202 {
        return kicked_off(t, "POST", path, &r);
    }
    expect_status("POST", path, &r, &[200])?;
    let matched = r.json["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["name"] == "MatchedMembers");
    ensure(matched, || {
        format!("POST {path}: no MatchedMembers: {}", short(&r.text))
    })
}

fn davinci_data_export(t: &Truth) -> Result<(), String> {
    let path = format!("Group/{}/$davinci-data-export", provider_group(t)?);
    let body = fixtures::parameters(vec![
        json!({"name": "exportType", "valueCanonical": "hl7.fhir.us.davinci-pdex#provider-delivery"}),
    ]);
    // a provider organization's own client (`[payer] provider_clients`)
    let r = t
        .provider
        .send_json("POST", &path, &ASYNC, &body)
        .map_err(|e| format!("POST {path}: {e}"))?;
    kicked_off(t, "POST", &path, &r)
}

/// DTR `$questionnaire-package` → Parameters with a PackageBundle; returns it.
fn package(t: &Truth, level: &str, questionnaire: &str) -> Result<Value, String> {
    let patient = t
        .known_id("Patient")
        .ok_or("cannot be exercised: no Patient")?;
    let path = if level == "system" {
        "$questionnaire-package"
    } else {
        "Questionnaire/$questionnaire-package"
    };
    let r = t.send(
        "POST",
        path,
        &fixtures::package_request(&patient, questionnaire),
    )?;
    expect_status("POST", path, &r, &[200])?;
    r.json["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "PackageBundle")
        .map(|p| p["resource"].clone())
        .ok_or_else(|| format!("POST {path}: no PackageBundle: {}", short(&r.text)))
}

/// `$next-question` on the adaptive form's draft → a QuestionnaireResponse.
fn next_question(t: &Truth) -> Result<(), String> {
    let bundle = package(t, "Questionnaire", fixtures::ADAPTIVE)
        .map_err(|e| format!("the package before $next-question failed: {e}"))?;
    let draft = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "QuestionnaireResponse")
        .ok_or("the adaptive package has no draft QuestionnaireResponse")?
        .clone();
    let path = "Questionnaire/$next-question";
    let r = t.send("POST", path, &draft)?;
    expect_status("POST", path, &r, &[200])?;
    ensure(r.json["resourceType"] == "QuestionnaireResponse", || {
        format!(
            "POST {path}: not a QuestionnaireResponse: {}",
            short(&r.text)
        )
    })
}

fn subscription_status(t: &Truth) -> Result<(), String> {
    let id = t
        .known_id("Subscription")
        .ok_or("cannot be exercised: no Subscription (its create failed)")?;
    let path = format!("Subscription/{id}/$status");
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    ensure(
        r.json["resourceType"] == "Bundle"
            && r.json["entry"][0]["resource"]["resourceType"] == "Parameters",
        || {
            format!(
                "GET {path}: not a subscription-status Bundle: {}",
                short(&r.text)
            )
        },
    )
}
