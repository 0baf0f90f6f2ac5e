//! Statement-level truth: it describes this server (R4, its base), the
//! SMART `oauth-uris` extension of `rest.security` (its endpoints answer,
//! `/.well-known/smart-configuration` agrees), the UDAP service (discovery
//! answers with the same endpoints), each declared `format` (`_format` on a read gives that
//! Content-Type), and the rest-level `interaction`s (transaction, batch,
//! search-system, history-system), and each SubscriptionTopic the
//! statement offers on `Subscription` (a subscription to it is accepted).

use serde_json::{json, Value};

use crate::{
    cases::{described, ensure, expect_status, short, Cases},
    server::{entries, Truth},
};

const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";
const TOPIC_EXT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical";

/// Extension name in the statement → field of smart-configuration.
const SMART_FIELDS: &[(&str, &str)] = &[
    ("authorize", "authorization_endpoint"),
    ("token", "token_endpoint"),
    ("register", "registration_endpoint"),
    ("manage", "management_endpoint"),
    ("introspect", "introspection_endpoint"),
    ("revoke", "revocation_endpoint"),
];

pub fn run(t: &Truth, cases: &mut Cases) {
    cases.run("statement describes this server", || self_description(t));
    security(t, cases);
    for format in strings(&t.statement["format"]) {
        cases.run(&format!("format {format}"), || read_as(t, &format));
    }
    for r in t.resources() {
        for ext in r["extension"].as_array().into_iter().flatten() {
            if ext["url"] != TOPIC_EXT {
                continue;
            }
            let topic = ext["valueCanonical"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            cases.run(
                &format!("{} topic {topic}", r["type"].as_str().unwrap_or("?")),
                || subscribe(t, &topic),
            );
        }
    }
    for code in strings_at(&t.rest()["interaction"], "code") {
        let name = format!("system {code}");
        match code.as_str() {
            "transaction" => cases.run(&name, || transaction(t)),
            "batch" => cases.run(&name, || batch(t)),
            "search-system" => cases.run(&name, || search_system(t)),
            "history-system" => cases.run(&name, || history_system(t)),
            other => {
                cases.fail(
                    &name,
                    &format!("interaction {other} declared but not exercised by the truth test"),
                );
                None
            }
        };
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn strings_at(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s[key].as_str().map(str::to_owned))
        .collect()
}

/// The `oauth-uris` sub-extensions as `(name, url)`.
fn oauth_uris(t: &Truth) -> Vec<(String, String)> {
    t.rest()["security"]["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == OAUTH_URIS)
        .flat_map(|e| e["extension"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| {
            Some((
                e["url"].as_str()?.to_owned(),
                e["valueUri"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// `kind: instance`, `fhirVersion` 4.0.1 and `implementation.url` = the FHIR base.
fn self_description(t: &Truth) -> Result<(), String> {
    let s = &t.statement;
    ensure(s["fhirVersion"] == "4.0.1", || {
        format!("fhirVersion is {}", s["fhirVersion"])
    })?;
    ensure(
        s["kind"] != "instance" || s["implementation"]["url"] == t.api.base.as_str(),
        || {
            format!(
                "implementation.url {} is not the FHIR base {}",
                s["implementation"]["url"], t.api.base
            )
        },
    )
}

/// The codes of `rest.security.service`.
fn services(t: &Truth) -> Vec<String> {
    t.rest()["security"]["service"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["coding"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect()
}

fn security(t: &Truth, cases: &mut Cases) {
    let uris = oauth_uris(t);
    let services = services(t);
    let declares_smart = services.iter().any(|s| s == "SMART-on-FHIR");
    for s in &services {
        if !matches!(s.as_str(), "SMART-on-FHIR" | "UDAP") {
            cases.fail(
                &format!("security {s}"),
                "service declared but not exercised by the truth test",
            );
        }
    }
    if services.iter().any(|s| s == "UDAP") {
        cases.run("security UDAP discovery", || udap_discovery(t, &uris));
    }
    if declares_smart && uris.is_empty() {
        cases.fail(
            "security oauth-uris",
            "SMART-on-FHIR declared without the oauth-uris extension",
        );
    }
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let Ok(http) = http else {
        cases.fail("security", "no HTTP client");
        return;
    };
    for (name, url) in &uris {
        match name.as_str() {
            "authorize" => cases.run("security authorize answers", || {
                let r = http
                    .get(url)
                    .send()
                    .map_err(|e| format!("GET {url}: {e}"))?;
                let ct = header(&r, "content-type");
                let status = r.status().as_u16();
                ensure(status == 400 && ct.starts_with("text/html"), || {
                    format!("GET {url} (no parameters) → {status} {ct}; wanted a 400 HTML page")
                })
            }),
            "token" => cases.run("security token answers", || {
                let r = http
                    .post(url)
                    .send()
                    .map_err(|e| format!("POST {url}: {e}"))?;
                let status = r.status().as_u16();
                let body: Value = r.json().unwrap_or(Value::Null);
                ensure(status == 400 && body["error"].is_string(), || {
                    format!(
                        "POST {url} (no body) → {status} {}; wanted 400 with an OAuth error JSON",
                        short(&body)
                    )
                })
            }),
            _ => None,
        };
    }
    cases.run("security smart-configuration agrees", || {
        let url = format!("{}/.well-known/smart-configuration", t.api.base);
        let r = http
            .get(&url)
            .send()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = r.status().as_u16();
        let conf: Value = r.json().unwrap_or(Value::Null);
        ensure(status == 200, || format!("GET {url} → {status}"))?;
        let mut wrong = Vec::new();
        for (name, url) in &uris {
            let field = SMART_FIELDS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, f)| *f);
            match field {
                Some(f) if conf[f] != url.as_str() => {
                    wrong.push(format!("{name} = {url} but {f} = {}", conf[f]))
                }
                None => wrong.push(format!("{name}: no smart-configuration field known for it")),
                _ => {}
            }
        }
        ensure(wrong.is_empty(), || wrong.join("; "))
    });
}

/// HL7 UDAP Security 2.1 §2: `{base}/.well-known/udap` answers with
/// signed metadata whose endpoints are the statement's.
fn udap_discovery(t: &Truth, uris: &[(String, String)]) -> Result<(), String> {
    let path = ".well-known/udap";
    let r = t.get(path)?;
    expect_status("GET", path, &r, &[200])?;
    let m = &r.json;
    ensure(
        m["udap_versions_supported"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == "1")),
        || {
            format!(
                "GET {path}: udap_versions_supported lacks \"1\": {}",
                short(m)
            )
        },
    )?;
    ensure(m["signed_metadata"].is_string(), || {
        format!("GET {path}: no signed_metadata")
    })?;
    for (name, field) in [
        ("token", "token_endpoint"),
        ("authorize", "authorization_endpoint"),
    ] {
        if let Some((_, url)) = uris.iter().find(|(n, _)| n == name) {
            ensure(m[field] == url.as_str(), || {
                format!(
                    "GET {path}: {field} = {} but the statement's {name} is {url}",
                    m[field]
                )
            })?;
        }
    }
    Ok(())
}

fn header(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `GET Patient/id?_format=<format>` answers in that format.
fn read_as(t: &Truth, format: &str) -> Result<(), String> {
    let id = t
        .known_id("Patient")
        .ok_or("cannot be exercised: no Patient")?;
    let (want, looks_right): (&str, fn(&str) -> bool) = match format {
        "json" | "application/fhir+json" | "application/json" => {
            ("application/fhir+json", |b| b.trim_start().starts_with('{'))
        }
        "xml" | "application/fhir+xml" | "application/xml" => ("application/fhir+xml", |b| {
            b.contains("<Patient") && b.contains("http://hl7.org/fhir")
        }),
        "ttl" | "application/fhir+turtle" => ("text/turtle", |b| b.contains("fhir:")),
        other => {
            return Err(format!(
                "format {other} declared but not exercised by the truth test"
            ))
        }
    };
    let path = format!("Patient/{id}?_format={}", crate::cases::enc(format));
    let r = t.get(&path)?;
    expect_status("GET", &path, &r, &[200])?;
    let ct = r.header("content-type").unwrap_or_default();
    ensure(ct.starts_with(want), || {
        format!(
            "GET {path} → Content-Type {ct}, wanted {want}: {}",
            short(&r.text)
        )
    })?;
    ensure(looks_right(&r.text), || {
        format!("GET {path}: the body is not {format}: {}", short(&r.text))
    })
}

/// A subscription to `topic` (the fixture's, with that criteria) is
/// accepted, then deleted.
fn subscribe(t: &Truth, topic: &str) -> Result<(), String> {
    let mut body = t
        .fixture("Subscription")
        .cloned()
        .ok_or("cannot be exercised: no Subscription fixture")?;
    if let Some(o) = body.as_object_mut() {
        o.remove("id");
        o.remove("meta");
    }
    body["criteria"] = json!(topic);
    // as stored it may carry the server's own status (`error`: the
    // fixture's endpoint answers nothing)
    body["status"] = json!("requested");
    let r = t.send("POST", "Subscription", &body)?;
    expect_status("POST", "Subscription", &r, &[201])?;
    let id = r.json["id"]
        .as_str()
        .ok_or("the created Subscription has no id")?;
    let r = t
        .api
        .send("DELETE", &format!("Subscription/{id}"), &[], None)
        .map_err(|e| format!("DELETE Subscription/{id}: {e}"))?;
    expect_status("DELETE", "Subscription/[id]", &r, &[200, 204])
}

fn transaction(t: &Truth) -> Result<(), String> {
    let body = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:7e1f4d0c-59c8-4cb8-9a65-3b1d43b6f001",
        "resource": {"resourceType": "Patient", "name": [{"family": "Transactional"}]},
        "request": {"method": "POST", "url": "Patient"}
    }]});
    let r = t.send("POST", "", &body)?;
    expect_status("POST", "[base] (transaction)", &r, &[200])?;
    ensure(r.json["type"] == "transaction-response", || {
        format!("transaction answered {}", described("POST", "[base]", &r))
    })?;
    let status = r.json["entry"][0]["response"]["status"]
        .as_str()
        .unwrap_or_default();
    ensure(status.starts_with("201"), || {
        format!("transaction entry status {status:?}: {}", short(&r.text))
    })
}

fn batch(t: &Truth) -> Result<(), String> {
    let id = t
        .known_id("Patient")
        .ok_or("cannot be exercised: no Patient")?;
    let body = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{id}")}}
    ]});
    let r = t.send("POST", "", &body)?;
    expect_status("POST", "[base] (batch)", &r, &[200])?;
    ensure(r.json["type"] == "batch-response", || {
        format!("batch answered {}", described("POST", "[base]", &r))
    })?;
    let entry = &r.json["entry"][0];
    let status = entry["response"]["status"].as_str().unwrap_or_default();
    ensure(
        status.starts_with("200") && entry["resource"]["id"] == id.as_str(),
        || format!("batch GET Patient/{id} entry: {}", short(entry)),
    )
}

fn search_system(t: &Truth) -> Result<(), String> {
    let id = t
        .known_id("Patient")
        .ok_or("cannot be exercised: no Patient")?;
    let path = format!("{}?_id={id}", t.api.base);
    let r = t.get(&path)?;
    expect_status("GET", "[base]?_id=", &r, &[200])?;
    ensure(r.json["type"] == "searchset", || {
        described("GET", &path, &r)
    })?;
    ensure(
        entries(&r.json, "match")
            .into_iter()
            .any(|e| e["id"] == id.as_str()),
        || {
            format!(
                "GET {path}: Patient/{id} not among the matches: {}",
                short(&r.text)
            )
        },
    )
}

fn history_system(t: &Truth) -> Result<(), String> {
    let path = format!("{}/_history?_count=5", t.api.base);
    let r = t.get(&path)?;
    expect_status("GET", "[base]/_history", &r, &[200])?;
    ensure(
        r.json["type"] == "history" && r.json["entry"].as_array().is_some_and(|e| !e.is_empty()),
        || {
            format!(
                "GET {path}: not a non-empty history Bundle: {}",
                short(&r.text)
            )
        },
    )
}
