//! Issue 9, "CapabilityStatements that tell the truth": with an HTTP
//! upstream, `GET /fhir/metadata` is the intersection of what the upstream
//! declares and what fhirgate forwards, plus what fhirgate answers itself.
//! Checked here on the real thing: Medplum (`conformance-tests/medplum/`)
//! as the upstream, its own `GET /fhir/R4/metadata` read directly, and the
//! real `fhirgate` binary in front of it.
//!
//! The rule, element by element (a black-box restatement of
//! `capability::forwarding`):
//! - a type fhirgate serves itself (AuditEvent, Subscription) is fhirgate's
//!   whatever the upstream says, and is declared;
//! - on every other type, and at the rest level, each interaction,
//!   `searchParam`, `searchInclude`/`searchRevInclude` and per-type flag is
//!   declared by fhirgate exactly when the upstream declares it AND fhirgate
//!   forwards it (every R4 interaction but `patch`, which is a 405; every
//!   parameter but `_format`, which fhirgate consumes): so both "nothing
//!   fhirgate declares is missing upstream" and "nothing forwarded that
//!   the upstream declares is dropped";
//! - each operation is either one of fhirgate's own (the table below) or
//!   the upstream's, declared by the upstream at the same level under the
//!   same definition; one defined only at the upstream's address is not
//!   declared (no answer of fhirgate's may contain that address at all).
//!
//! What Medplum's statement really declares is printed (`--nocapture`).
//! That statement is built by the small node server around Medplum's
//! `FhirRouter` (`medplum/server.mjs`) the way the full Medplum server
//! builds its own (`@medplum/server`, `fhir/metadata.ts`), from Medplum's
//! own definitions: per resource type Medplum's interactions (read, vread,
//! update, patch, delete, history-instance, create, search-type), its
//! per-type flags and its SearchParameters, less what `MemoryRepository`
//! cannot do (see `server.mjs`); at the rest level transaction and batch.
//! So the intersection is not trivial: `patch` must be dropped on every
//! type, every parameter kept with its HL7 definition, Medplum's flags
//! copied, its Group `$export` replaced by fhirgate's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use conformance_tests::{ensure, Api, Fhirgate, Medplum, TestResult};
use serde_json::{json, Value};

/// The types fhirgate answers itself.
const OWN_TYPES: &[&str] = &["AuditEvent", "Subscription"];
/// The type and instance interactions fhirgate forwards (`patch` is 405).
const FORWARDED_TYPE: &[&str] = &[
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];
/// The system interactions fhirgate forwards.
const FORWARDED_SYSTEM: &[&str] = &["transaction", "batch", "search-system", "history-system"];
/// Search parameters fhirgate does not pass to the upstream.
const CONSUMED_PARAMS: &[&str] = &["_format"];
/// The per-type flags copied from the upstream.
const FLAGS: &[&str] = &[
    "versioning",
    "readHistory",
    "updateCreate",
    "conditionalCreate",
    "conditionalRead",
    "conditionalUpdate",
    "conditionalDelete",
    "referencePolicy",
];
/// fhirgate's own operations `(level, name)`: level `system`, a type, or
/// `*` for every declared type but AuditEvent (`$validate`). Each is
/// exercised by the truth test.
const OWN_OPERATIONS: &[(&str, &str)] = &[
    ("system", "export"),
    ("Patient", "export"),
    ("Group", "export"),
    ("Claim", "submit"),
    ("Claim", "inquire"),
    ("Patient", "member-match"),
    ("Group", "bulk-member-match"),
    ("Group", "davinci-data-export"),
    ("system", "questionnaire-package"),
    ("Questionnaire", "questionnaire-package"),
    ("Questionnaire", "next-question"),
    ("*", "validate"),
    ("Subscription", "status"),
];

/// The string values of a JSON array: the elements themselves (`field`
/// empty) or each element's `field`.
fn list(v: &Value, field: &str) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| {
            if field.is_empty() {
                x.as_str()
            } else {
                x[field].as_str()
            }
        })
        .map(str::to_owned)
        .collect()
}

/// The first `rest` of mode `server`.
fn server_rest(statement: &Value) -> &Value {
    statement["rest"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["mode"] == "server"))
        .unwrap_or(&Value::Null)
}

/// `rest.resource` entry of `rtype` (Null when not declared).
fn resource<'a>(rest: &'a Value, rtype: &str) -> &'a Value {
    rest["resource"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["type"] == rtype))
        .unwrap_or(&Value::Null)
}

/// `(name, type)` of each `searchParam` but those fhirgate consumes.
fn params(holder: &Value) -> BTreeSet<(String, String)> {
    holder["searchParam"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["type"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// `(name, definition)` of each `searchParam` ("" without a definition).
fn param_definitions(holder: &Value) -> BTreeSet<(String, String)> {
    holder["searchParam"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["definition"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// `(name without $, definition)` of each `operation`.
fn operations(holder: &Value) -> BTreeSet<(String, String)> {
    holder["operation"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some((
                o["name"].as_str()?.trim_start_matches('$').to_owned(),
                o["definition"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn is_own_operation(level: &str, name: &str) -> bool {
    OWN_OPERATIONS
        .iter()
        .any(|(l, n)| *n == name && (*l == level || (*l == "*" && level != "system")))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// What of the upstream's `holder` (rest or a resource) survives, per the
/// rule, next to what fhirgate declares; every difference is a finding.
fn compare(
    what: &str,
    level: &str,
    upstream: &Value,
    gate: &Value,
    upstream_address: &str,
    found: &mut Vec<String>,
) {
    let forwarded = if level == "system" {
        FORWARDED_SYSTEM
    } else {
        FORWARDED_TYPE
    };
    let want: BTreeSet<String> = list(&upstream["interaction"], "code")
        .intersection(&set(forwarded))
        .cloned()
        .collect();
    let got = list(&gate["interaction"], "code");
    if got != want {
        found.push(format!(
            "{what} interactions: fhirgate declares {got:?}, the rule gives {want:?} \
             (upstream {:?} ∩ forwarded)",
            list(&upstream["interaction"], "code")
        ));
    }
    let want: BTreeSet<_> = params(upstream)
        .into_iter()
        .filter(|(n, _)| !CONSUMED_PARAMS.contains(&n.as_str()))
        .collect();
    let got = params(gate);
    if got != want {
        found.push(format!(
            "{what} searchParam: fhirgate declares {got:?}, the upstream (less {CONSUMED_PARAMS:?}) {want:?}"
        ));
    }
    // each kept parameter keeps the upstream's definition, unless that is
    // on the upstream's own address (then it has none)
    let want: BTreeSet<_> = param_definitions(upstream)
        .into_iter()
        .filter(|(n, _)| !CONSUMED_PARAMS.contains(&n.as_str()))
        .map(|(n, d)| {
            if d.contains(upstream_address) {
                (n, String::new())
            } else {
                (n, d)
            }
        })
        .collect();
    let names = |s: &BTreeSet<(String, String)>| -> BTreeSet<String> {
        s.iter().map(|(n, _)| n.clone()).collect()
    };
    let got = param_definitions(gate);
    // (names declared on one side only are the finding above)
    let both: BTreeSet<String> = names(&got).intersection(&names(&want)).cloned().collect();
    let got: BTreeSet<_> = got.into_iter().filter(|(n, _)| both.contains(n)).collect();
    let want: BTreeSet<_> = want.into_iter().filter(|(n, _)| both.contains(n)).collect();
    if got != want {
        let diff: Vec<_> = got.symmetric_difference(&want).collect();
        found.push(format!(
            "{what} searchParam definitions differ from the upstream's: {diff:?}"
        ));
    }
    for key in ["searchInclude", "searchRevInclude"] {
        let want: BTreeSet<String> = list(&upstream[key], "")
            .into_iter()
            .filter(|v| {
                key == "searchInclude"
                    || !OWN_TYPES.contains(&v.split(':').next().unwrap_or_default())
            })
            .collect();
        let got = list(&gate[key], "");
        if got != want {
            found.push(format!(
                "{what} {key}: fhirgate declares {got:?}, the upstream {want:?}"
            ));
        }
    }
    if level != "system" {
        for flag in FLAGS {
            if gate.get(*flag) != upstream.get(*flag) {
                found.push(format!(
                    "{what} {flag}: fhirgate declares {:?}, the upstream {:?}",
                    gate.get(*flag),
                    upstream.get(*flag)
                ));
            }
        }
    }
    let theirs: BTreeSet<_> = operations(upstream)
        .into_iter()
        .filter(|(n, d)| !is_own_operation(level, n) && !d.contains(upstream_address))
        .collect();
    let forwarded_ops: BTreeSet<_> = operations(gate)
        .into_iter()
        .filter(|(n, _)| !is_own_operation(level, n))
        .collect();
    if forwarded_ops != theirs {
        found.push(format!(
            "{what} operations not fhirgate's own: fhirgate declares {forwarded_ops:?}, \
             the upstream {theirs:?}"
        ));
    }
}

#[test]
fn medplum_upstream_statement_is_the_intersection_with_what_fhirgate_forwards() -> TestResult {
    let medplum = Medplum::start()?;
    let address = format!("127.0.0.1:{}", medplum.port);
    let gate = Fhirgate::start(Some(&medplum.base_url()))?;
    let forbidden = vec![
        address.clone(),
        format!("localhost:{}", medplum.port),
        "/fhir/R4".to_owned(),
    ];

    // Medplum's own statement, straight from Medplum
    let direct = Api::new(&medplum.base_url(), Vec::new())?;
    let theirs = direct.get("metadata")?;
    ensure!(
        theirs.status == 200 && theirs.json["resourceType"] == "CapabilityStatement",
        "Medplum's GET metadata: {} {}",
        theirs.status,
        theirs.text
    );
    let up = server_rest(&theirs.json);
    ensure!(
        !up.is_null(),
        "Medplum's statement has no server rest: {}",
        theirs.text
    );
    let up_types: Vec<String> = list(&up["resource"], "type").into_iter().collect();
    // Medplum's statement is built from its definitions: the intersection
    // is not vacuous (types, interactions and parameters to keep or drop)
    let patient = resource(up, "Patient");
    ensure!(
        up_types.len() > 10
            && list(&patient["interaction"], "code").contains("patch")
            && params(patient).len() > 10,
        "Medplum's statement declares too little to test the intersection with: {}",
        theirs.text
    );
    println!(
        "Medplum declares: {} resource types {up_types:?}; rest interactions {:?}; \
         rest searchParam {:?}; rest operations {:?}; formats {}",
        up_types.len(),
        list(&up["interaction"], "code"),
        params(up),
        operations(up),
        theirs.json["format"]
    );

    // fhirgate's, in front of it (public: no token), checked for Medplum's address
    let api = Api::new(&gate.fhir_base(), forbidden)?;
    let ours = api.get("metadata")?;
    ensure!(
        ours.status == 200 && ours.json["resourceType"] == "CapabilityStatement",
        "fhirgate's GET metadata: {} {}",
        ours.status,
        ours.text
    );
    let s = &ours.json;
    let rest = server_rest(s);
    let gate_types: Vec<String> = list(&rest["resource"], "type").into_iter().collect();
    println!(
        "fhirgate declares: {gate_types:?}; rest interactions {:?}; instantiates {}",
        list(&rest["interaction"], "code"),
        s["instantiates"]
    );
    let mut found = Vec::new();

    // it describes fhirgate, over an HTTP upstream
    if s["software"]["name"] != "fhirgate" || s["implementation"]["url"] != gate.fhir_base() {
        found.push(format!(
            "software/implementation describe {} at {}",
            s["software"]["name"], s["implementation"]["url"]
        ));
    }
    if !s["implementation"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("HTTP upstream"))
    {
        found.push(format!(
            "implementation.description does not name the HTTP upstream: {}",
            s["implementation"]["description"]
        ));
    }

    // rest level: the intersection
    compare("rest", "system", up, rest, &address, &mut found);
    // every type but fhirgate's own: the intersection, including the
    // upstream's types fhirgate does not list (then nothing may survive)
    let mut all_types: BTreeSet<String> = gate_types.iter().cloned().collect();
    all_types.extend(up_types.iter().cloned());
    for t in all_types
        .iter()
        .filter(|t| !OWN_TYPES.contains(&t.as_str()))
    {
        compare(
            t,
            t,
            resource(up, t),
            resource(rest, t),
            &address,
            &mut found,
        );
    }

    // fhirgate's own types and operations are declared
    let audit = resource(rest, "AuditEvent");
    if list(&audit["interaction"], "code") != set(&["read", "search-type"]) {
        found.push(format!(
            "AuditEvent (the ledger's) declares {:?}",
            list(&audit["interaction"], "code")
        ));
    }
    let sub = resource(rest, "Subscription");
    if list(&sub["interaction"], "code")
        != set(&["create", "read", "update", "delete", "search-type"])
    {
        found.push(format!(
            "Subscription (fhirgate's) declares {:?}",
            list(&sub["interaction"], "code")
        ));
    }
    for (level, name) in OWN_OPERATIONS {
        let holders: Vec<(&str, &Value)> = match *level {
            "system" => vec![("system", rest)],
            "*" => gate_types
                .iter()
                .filter(|t| t.as_str() != "AuditEvent")
                .map(|t| (t.as_str(), resource(rest, t)))
                .collect(),
            t => vec![(t, resource(rest, t))],
        };
        for (at, holder) in holders {
            let op = operations(holder).into_iter().find(|(n, _)| n == name);
            match op {
                None => found.push(format!("fhirgate's own ${name} is not declared at {at}")),
                Some((_, d)) if !d.starts_with("http://hl7.org/fhir/") => found.push(format!(
                    "fhirgate's own ${name} at {at} has definition {d:?}, not an HL7 canonical"
                )),
                Some(_) => {}
            }
        }
    }

    // nothing fhirgate does not forward shows, anywhere in the statement
    let text = ours.text.as_str();
    if text.contains("\"patch\"") {
        found.push("`patch` is declared (fhirgate answers it 405)".to_owned());
    }
    let mut holders = vec![rest];
    holders.extend(rest["resource"].as_array().into_iter().flatten());
    for h in holders {
        if params(h).iter().any(|(n, _)| n == "_format") {
            found.push(format!(
                "`_format` is a declared searchParam on {}",
                h["type"]
            ));
        }
    }

    // the statement is true about patch on the real engine: Medplum applies
    // a JSON Patch, fhirgate refuses to forward one
    let token = gate.system_token()?;
    let authed = Api::new(&gate.fhir_base(), vec![address.clone()])?.with_bearer(token);
    let created = authed.send_json(
        "POST",
        "Patient",
        &[],
        &json!({"resourceType": "Patient", "name": [{"family": "Intersection"}]}),
    )?;
    ensure!(
        created.status == 201,
        "POST Patient through fhirgate: {} {}",
        created.status,
        created.text
    );
    let id = created.json["id"].as_str().unwrap_or_default().to_owned();
    let patch = |api: &Api| {
        api.send(
            "PATCH",
            &format!("Patient/{id}"),
            &[("content-type", "application/json-patch+json")],
            Some(
                json!([{"op": "add", "path": "/gender", "value": "other"}])
                    .to_string()
                    .into_bytes(),
            ),
        )
    };
    let through = patch(&authed)?;
    let at_medplum = patch(&direct)?;
    if through.status != 405 || at_medplum.status != 200 {
        found.push(format!(
            "PATCH: fhirgate answered {}, Medplum {} (expected 405 and 200)",
            through.status, at_medplum.status
        ));
    }

    ensure!(
        found.is_empty(),
        "fhirgate's statement over Medplum is not the intersection:\n- {}\n\
         --- Medplum's statement ---\n{}\n--- fhirgate's statement ---\n{}\n--- fhirgate log ---\n{}",
        found.join("\n- "),
        theirs.text,
        ours.text,
        gate.log_tail()
    );
    Ok(())
}

/// The check itself is not vacuous (no servers): a statement that keeps
/// what fhirgate does not forward, or drops what it does, is caught.
#[test]
fn the_check_catches_a_statement_that_is_not_the_intersection() {
    let at = "127.0.0.1:9";
    let upstream = json!({
        "interaction": [{"code": "read"}, {"code": "patch"}],
        "versioning": "versioned",
        "searchParam": [{"name": "name", "type": "string"}, {"name": "_format", "type": "token"}],
        "operation": [
            {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
            {"name": "expunge", "definition": format!("http://{at}/fhir/OperationDefinition/expunge")}
        ]
    });
    let right = json!({
        "interaction": [{"code": "read"}],
        "versioning": "versioned",
        "searchParam": [{"name": "name", "type": "string"}],
        "operation": [
            {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
            {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}
        ]
    });
    let mut found = Vec::new();
    compare("Patient", "Patient", &upstream, &right, at, &mut found);
    assert!(found.is_empty(), "{found:?}");
    let wrong = json!({
        "interaction": [{"code": "read"}, {"code": "patch"}],
        "searchParam": [{"name": "name", "type": "string"}, {"name": "_format", "type": "token"}],
        "operation": [
            {"name": "expunge", "definition": format!("http://{at}/fhir/OperationDefinition/expunge")}
        ]
    });
    compare("Patient", "Patient", &upstream, &wrong, at, &mut found);
    // interactions, searchParam, the versioning flag, operations
    assert_eq!(found.len(), 4, "{found:#?}");
    found.clear();
    let mut lost = right.clone();
    lost["searchParam"] =
        json!([{"name": "name", "type": "string", "definition": format!("http://{at}/sp")}]);
    compare("Patient", "Patient", &upstream, &lost, at, &mut found);
    assert_eq!(
        found.len(),
        1,
        "a definition not the upstream's is caught: {found:#?}"
    );
    found.clear();
    compare(
        "Patient",
        "Patient",
        &upstream,
        &Value::Null,
        at,
        &mut found,
    );
    assert!(!found.is_empty(), "a forwarded type dropped is caught");
}
