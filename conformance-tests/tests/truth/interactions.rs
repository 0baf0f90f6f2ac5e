//! Type-level truth: each declared `rest.resource[].interaction` answered
//! as R4 http.html says (read, vread, search-type, history-instance,
//! history-type, create, update, patch, delete). Creating the suite's
//! fixtures is the `create` case, so a type with no seeded data gets data
//! before the other cases need it.

use serde_json::{json, Value};

use crate::{
    cases::{described, ensure, expect_status, Cases},
    fixtures,
    server::{entries, Truth},
};

/// Types created first, in this order (others reference them).
const ORDER: &[&str] = &[
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "RelatedPerson",
    "Device",
    "Specimen",
    "Encounter",
    "Medication",
    "Questionnaire",
    "Coverage",
    "CareTeam",
    "ServiceRequest",
    "CarePlan",
    "Observation",
    "Condition",
    "Procedure",
    "DocumentReference",
    "Claim",
];

/// The interaction codes `res` declares.
pub fn codes(res: &Value) -> Vec<String> {
    res["interaction"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["code"].as_str().map(str::to_owned))
        .collect()
}

/// Loads the samples, creates the fixtures (`create` cases), then runs
/// every other declared interaction of every type.
pub fn run(t: &mut Truth, cases: &mut Cases) {
    let declared = t.resources();
    if declared.is_empty() {
        cases.fail(
            "statement",
            "rest[0].resource is empty: nothing is declared to verify",
        );
    }
    let mut types: Vec<String> = declared
        .iter()
        .filter_map(|r| r["type"].as_str().map(str::to_owned))
        .collect();
    // the data the operations' invocations read, also where the type is
    // not declared (fronting an upstream that declares no types)
    let mut sampled: Vec<&str> = types.iter().map(String::as_str).collect();
    for ty in crate::operations::DATA_TYPES {
        if !sampled.contains(ty) {
            sampled.push(ty);
        }
    }
    // AuditEvent (the ledger's record of the requests) last, so that its
    // sample holds the entries about the data the other samples read
    sampled.sort_by_key(|ty| *ty == "AuditEvent");
    for ty in sampled {
        if let Err(e) = t.load_sample(ty) {
            println!("sample of {ty} not loaded: {e}");
        }
    }
    types.sort_by_key(|ty| ORDER.iter().position(|o| o == ty).unwrap_or(ORDER.len()));
    for ty in &types {
        let res = declared.iter().find(|r| r["type"] == ty.as_str());
        if res.is_some_and(|r| codes(r).iter().any(|c| c == "create")) {
            cases.run(&format!("{ty} create"), || create_fixtures(t, ty));
        }
    }
    for res in &declared {
        exercise_type(t, cases, res);
    }
}

/// The declared interactions of one type but `create` (done already).
/// Update and patch share a scratch resource; delete gets its own.
fn exercise_type(t: &Truth, cases: &mut Cases, res: &Value) {
    let ty = res["type"].as_str().unwrap_or_default();
    let mut scratch: Option<String> = None;
    for code in codes(res) {
        let name = format!("{ty} {code}");
        match code.as_str() {
            "create" => {}
            "read" => run_on_known(t, cases, &name, ty, read),
            "vread" => run_on_known(t, cases, &name, ty, vread),
            "history-instance" => run_on_known(t, cases, &name, ty, history_instance),
            "search-type" => {
                cases.run(&name, || search_type(t, ty));
            }
            "history-type" => {
                cases.run(&name, || history_type(t, ty));
            }
            "update" | "patch" => {
                cases.run(&name, || {
                    let id = match &scratch {
                        Some(id) => id.clone(),
                        None => scratch.insert(create_scratch(t, ty)?).clone(),
                    };
                    if code == "update" {
                        update(t, ty, &id)
                    } else {
                        patch(t, ty, &id)
                    }
                });
            }
            "delete" => {
                cases.run(&name, || delete(t, ty, &create_scratch(t, ty)?));
            }
            other => cases.fail(
                &name,
                &format!("interaction {other} declared but not exercised by the truth test"),
            ),
        }
    }
}

/// Runs `f` on a known resource of `ty`, or fails "cannot be exercised".
fn run_on_known(
    t: &Truth,
    cases: &mut Cases,
    name: &str,
    ty: &str,
    f: fn(&Truth, &str, &Value) -> Result<(), String>,
) {
    match t.any(ty).cloned() {
        Some(res) => {
            cases.run(name, || {
                let id = res["id"].as_str().ok_or("a resource without id")?;
                f(t, id, &res)
            });
        }
        None => cases.fail(
            name,
            &format!("cannot be exercised: no {ty} in the seeded data and none could be created"),
        ),
    }
}

/// POSTs every fixture of `ty`; each answers 201 with a Location and is
/// read back into the pool.
fn create_fixtures(t: &mut Truth, ty: &str) -> Result<(), String> {
    let list = fixtures::fixtures(ty);
    ensure(!list.is_empty(), || {
        format!("the truth test has no fixture for {ty} (add one to truth/fixtures.rs)")
    })?;
    for fixture in list {
        let id = post_resolved(t, ty, fixture)?;
        let stored = t.get(&format!("{ty}/{id}"))?;
        expect_status("GET", &format!("{ty}/{id}"), &stored, &[200])?;
        t.pool.entry(ty.to_owned()).or_default().push(stored.json);
        t.created.entry(ty.to_owned()).or_default().push(id);
    }
    Ok(())
}

/// Resolves the placeholders of `body` and creates it; returns the new id.
pub fn post_resolved(t: &Truth, ty: &str, mut body: Value) -> Result<String, String> {
    fixtures::resolve(&mut body, &|x| t.known_id(x))?;
    post(t, ty, &body)
}

/// `POST ty` → 201 with `Location: …/ty/id/_history/v`; returns the id.
pub fn post(t: &Truth, ty: &str, body: &Value) -> Result<String, String> {
    let r = t.send("POST", ty, body)?;
    expect_status("POST", ty, &r, &[201])?;
    let location = r
        .header("location")
        .ok_or_else(|| format!("POST {ty} → 201 without Location"))?;
    let after = location
        .split(&format!("/{ty}/"))
        .nth(1)
        .ok_or_else(|| format!("POST {ty}: Location {location} does not name a {ty}"))?;
    let id = after.split('/').next().unwrap_or_default().to_owned();
    ensure(!id.is_empty(), || {
        format!("POST {ty}: Location {location} has no id")
    })?;
    if r.json["resourceType"] == ty {
        ensure(r.json["id"] == id.as_str(), || {
            format!("POST {ty}: body id {} ≠ Location id {id}", r.json["id"])
        })?;
    }
    Ok(id)
}

fn read(t: &Truth, id: &str, res: &Value) -> Result<(), String> {
    let ty = res["resourceType"].as_str().unwrap_or_default();
    let path = format!("{ty}/{id}");
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    ensure(r.json["resourceType"] == ty && r.json["id"] == id, || {
        format!(
            "GET {path} answered another resource: {}",
            described("GET", &path, &r)
        )
    })
}

fn vread(t: &Truth, id: &str, res: &Value) -> Result<(), String> {
    let ty = res["resourceType"].as_str().unwrap_or_default();
    let version = res["meta"]["versionId"]
        .as_str()
        .ok_or_else(|| format!("{ty}/{id} has no meta.versionId to vread"))?;
    let path = format!("{ty}/{id}/_history/{version}");
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    ensure(r.json["meta"]["versionId"] == version, || {
        format!(
            "GET {path} answered version {}",
            r.json["meta"]["versionId"]
        )
    })
}

fn history_instance(t: &Truth, id: &str, res: &Value) -> Result<(), String> {
    let ty = res["resourceType"].as_str().unwrap_or_default();
    let path = format!("{ty}/{id}/_history");
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    history_bundle(&path, &r.json)?;
    let has = r.json["entry"].as_array().into_iter().flatten().any(|e| {
        e["resource"]["id"] == id || e["fullUrl"].as_str().is_some_and(|u| u.contains(id))
    });
    ensure(has, || format!("GET {path}: no entry for {ty}/{id}"))
}

fn search_type(t: &Truth, ty: &str) -> Result<(), String> {
    let path = format!("{ty}?_count=1");
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    ensure(r.json["type"] == "searchset", || {
        format!(
            "GET {path}: not a searchset Bundle: {}",
            described("GET", &path, &r)
        )
    })?;
    let expected = t.pool.get(ty).is_some_and(|p| !p.is_empty());
    ensure(
        !expected || entries(&r.json, "match").into_iter().next().is_some(),
        || format!("GET {path}: no match although {ty} data exists"),
    )?;
    // R4 http.html#search: search by GET and by POST [type]/_search alike
    let post_path = format!("{ty}/_search");
    let r = t
        .api
        .send(
            "POST",
            &post_path,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"_count=1".to_vec()),
        )
        .map_err(|e| format!("POST {post_path}: {e}"))?;
    expect_status("POST", &post_path, &r, &[200])?;
    ensure(r.json["type"] == "searchset", || {
        format!(
            "POST {post_path}: not a searchset Bundle: {}",
            described("POST", &post_path, &r)
        )
    })
}

fn history_type(t: &Truth, ty: &str) -> Result<(), String> {
    let path = format!("{ty}/_history?_count=5");
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    history_bundle(&path, &r.json)?;
    let expected = t.pool.get(ty).is_some_and(|p| !p.is_empty());
    ensure(
        !expected || r.json["entry"].as_array().is_some_and(|e| !e.is_empty()),
        || format!("GET {path}: an empty history although {ty} data exists"),
    )
}

fn history_bundle(path: &str, b: &Value) -> Result<(), String> {
    ensure(
        b["resourceType"] == "Bundle" && b["type"] == "history",
        || {
            format!(
                "GET {path}: not a history Bundle: {}",
                crate::cases::short(b)
            )
        },
    )
}

/// A resource of `ty` only the update/patch/delete cases touch.
fn create_scratch(t: &Truth, ty: &str) -> Result<String, String> {
    let fixture = fixtures::fixtures(ty).into_iter().next().ok_or_else(|| {
        format!("cannot be exercised: the truth test has no {ty} fixture to create a scratch copy")
    })?;
    post_resolved(t, ty, fixture).map_err(|e| format!("creating a scratch {ty}: {e}"))
}

/// `PUT` of the fixture (with the id and a language) → 200, stored, new version.
fn update(t: &Truth, ty: &str, id: &str) -> Result<(), String> {
    let path = format!("{ty}/{id}");
    let before = t.get(&path)?;
    expect_status("GET", &path, &before, &[200])?;
    let mut body = fixtures::fixtures(ty)
        .into_iter()
        .next()
        .unwrap_or_default();
    fixtures::resolve(&mut body, &|x| t.known_id(x))?;
    body["id"] = json!(id);
    body["language"] = json!("en-US");
    let r = t.send("PUT", &path, &body)?;
    expect_status("PUT", &path, &r, &[200])?;
    let after = t.get(&path)?;
    ensure(after.json["language"] == "en-US", || {
        format!(
            "PUT {path} → 200 but the change is not stored: {}",
            described("GET", &path, &after)
        )
    })?;
    ensure(
        after.json["meta"]["versionId"] != before.json["meta"]["versionId"],
        || {
            format!(
                "PUT {path}: meta.versionId stayed {}",
                after.json["meta"]["versionId"]
            )
        },
    )
}

fn patch(t: &Truth, ty: &str, id: &str) -> Result<(), String> {
    let path = format!("{ty}/{id}");
    let ops = json!([{"op": "add", "path": "/language", "value": "en-GB"}]);
    let r = t
        .api
        .send(
            "PATCH",
            &path,
            &[("content-type", "application/json-patch+json")],
            Some(ops.to_string().into_bytes()),
        )
        .map_err(|e| format!("PATCH {path}: {e}"))?;
    expect_status("PATCH", &path, &r, &[200])?;
    let after = t.get(&path)?;
    ensure(after.json["language"] == "en-GB", || {
        format!("PATCH {path} → 200 but the change is not stored")
    })
}

fn delete(t: &Truth, ty: &str, id: &str) -> Result<(), String> {
    let path = format!("{ty}/{id}");
    let r = t
        .api
        .send("DELETE", &path, &[], None)
        .map_err(|e| format!("DELETE {path}: {e}"))?;
    expect_status("DELETE", &path, &r, &[200, 204])?;
    let after = t.get(&path)?;
    expect_status("GET (after DELETE)", &path, &after, &[404, 410])
}
