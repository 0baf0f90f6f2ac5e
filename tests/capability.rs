//! `GET /fhir/metadata` tells the truth (issue 9, item 1): over the
//! embedded store it lists the store's search table, every operation it
//! declares is routed, the security block follows `[udap]`, `mode` is
//! honoured; over an HTTP upstream it is the intersection of the
//! upstream's own statement (served by a real HTTP server on a free port)
//! and what fhirgate forwards, plus what fhirgate answers itself.
//!
//! The upstream statement here is a hand-written HAPI-shaped one, kept on
//! purpose: it carries what the intersection has to remove or rewrite
//! (`patch`, `_format`, per-type flags, vendor extensions, canonicals on
//! the upstream's own address, an upstream `$export`), which the real
//! engine the black-box suites run does not declare. The same rule on a
//! real, independent engine (Medplum) is
//! `conformance-tests/tests/capability_upstream.rs`, and the truth test
//! (`conformance-tests/tests/truth.rs`) exercises everything fhirgate
//! declares in front of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
// the statement's lists, read as the capability crate parses them
use capability::model::strings_of as list;
use common::{TestApp, BASE};
use serde_json::{json, Value};

async fn metadata(t: &TestApp, query: &str) -> common::TestResponse {
    t.request_raw(Method::GET, &format!("/fhir/metadata{query}"), &[], None)
        .await
}

fn resources(s: &Value) -> &Vec<Value> {
    s["rest"][0]["resource"].as_array().unwrap()
}

fn resource<'a>(s: &'a Value, t: &str) -> &'a Value {
    resources(s)
        .iter()
        .find(|r| r["type"] == t)
        .unwrap_or_else(|| panic!("{t} is not declared"))
}

#[tokio::test]
async fn the_statement_lists_the_embedded_search_table() {
    let t = TestApp::new().await;
    let r = metadata(&t, "").await;
    assert_eq!(r.status, StatusCode::OK, "public, no token");
    let s = &r.json;
    assert_eq!(s["resourceType"], "CapabilityStatement");
    assert_eq!(s["status"], "active");
    assert_eq!(s["kind"], "instance");
    assert_eq!(s["fhirVersion"], "4.0.1");
    assert_eq!(s["format"], json!(["json", "xml"]));
    assert_eq!(s["software"]["name"], "fhirgate");
    assert_eq!(s["software"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["implementation"]["url"], BASE);
    assert_eq!(s["date"], fhirgate::capabilities::date());
    let local = ["AuditEvent", "Subscription"];
    for def in fhirgate::search::params::SEARCH_PARAMS_FOR_CAPABILITY {
        if local.contains(&def.resource) {
            continue;
        }
        let res = resource(s, def.resource);
        let p = res["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == def.name)
            .unwrap_or_else(|| panic!("{}:{} missing", def.resource, def.name));
        assert_eq!(p["type"], def.kind.code(), "{}:{}", def.resource, def.name);
        // every reference parameter is an `_include` value, except those on
        // a canonical element (QuestionnaireResponse.questionnaire), which
        // the store's `_include` does not follow
        let canonical = (def.resource, def.name) == ("QuestionnaireResponse", "questionnaire");
        if def.kind == capability::ParamType::Reference {
            let inc = format!("{}:{}", def.resource, def.name);
            assert_eq!(
                list(&res["searchInclude"], "").contains(&inc),
                !canonical,
                "{inc}"
            );
        }
        for common in fhirgate::search::params::COMMON_PARAMS {
            assert!(
                list(&res["searchParam"], "name").contains(&common.name.to_owned()),
                "{} lacks {}",
                def.resource,
                common.name
            );
        }
        let codes = list(&res["interaction"], "code");
        for c in ["read", "vread", "search-type", "create", "update", "delete"] {
            assert!(codes.contains(&c.to_owned()), "{} {c}", def.resource);
        }
        assert!(!codes.contains(&"patch".to_owned()));
    }
    // AuditEvent is the ledger's, not the table's
    let audit = resource(s, "AuditEvent");
    assert_eq!(
        list(&audit["interaction"], "code"),
        vec!["read", "search-type"]
    );
    let mut names = list(&audit["searchParam"], "name");
    names.sort();
    assert_eq!(
        names,
        vec![
            "_id",
            "action",
            "agent",
            "date",
            "entity-type",
            "outcome",
            "patient"
        ]
    );
    assert!(!list(&resource(s, "Patient")["searchRevInclude"], "")
        .iter()
        .any(|v| v.starts_with("AuditEvent:")));
    assert_eq!(
        s["rest"][0]["compartment"],
        json!(["http://hl7.org/fhir/CompartmentDefinition/patient"])
    );
    let sys = list(&s["rest"][0]["interaction"], "code");
    assert_eq!(
        sys,
        vec!["transaction", "batch", "search-system", "history-system"]
    );
    assert!(s["instantiates"].as_array().unwrap().contains(&json!(
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data|2.0.0"
    )));
    // the PAS profiles are advertised on their types
    assert!(list(&resource(s, "Claim")["supportedProfile"], "")
        .iter()
        .any(|p| p.starts_with("http://hl7.org/fhir/us/davinci-pas/StructureDefinition/")));
}

/// Whether the request reached something that runs the operation: the
/// store answers an operation nobody routed with 404 "not supported here",
/// a type that routes its own requests with 405.
async fn routed(t: &TestApp, path: &str) -> bool {
    let r = t
        .send_json(
            Method::POST,
            path,
            &json!({"resourceType": "Parameters"}),
            &[("prefer", "respond-async")],
        )
        .await;
    !(r.status == StatusCode::METHOD_NOT_ALLOWED
        || (r.status == StatusCode::NOT_FOUND && r.text().contains("is not supported here")))
}

#[tokio::test]
async fn every_declared_operation_is_routed() {
    let t = TestApp::new().await;
    assert!(
        !routed(&t, "/fhir/Patient/$no-such-operation").await,
        "the probe tells routed from not routed"
    );
    let s = metadata(&t, "").await.json;
    let mut probes = 0;
    for op in s["rest"][0]["operation"].as_array().unwrap() {
        let name = op["name"].as_str().unwrap();
        assert!(routed(&t, &format!("/fhir/${name}")).await, "${name}");
        probes += 1;
    }
    for res in resources(&s) {
        let ty = res["type"].as_str().unwrap();
        for op in res["operation"].as_array().into_iter().flatten() {
            let name = op["name"].as_str().unwrap();
            assert!(
                op["definition"].as_str().unwrap().starts_with("http"),
                "{ty} ${name}"
            );
            // type level, else instance level
            let ok = routed(&t, &format!("/fhir/{ty}/${name}")).await
                || routed(&t, &format!("/fhir/{ty}/capability-probe/${name}")).await;
            assert!(ok, "{ty}/${name} is declared but not routed");
            probes += 1;
        }
    }
    assert!(probes > 20, "{probes}");
}

#[tokio::test]
async fn security_block_follows_udap() {
    let t = TestApp::new().await;
    assert!(t.app.udap.is_some(), "UDAP is on by default");
    let s = metadata(&t, "").await.json;
    let sec = &s["rest"][0]["security"];
    assert_eq!(sec["cors"], true);
    let services: Vec<(String, String)> = sec["service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["coding"][0]["system"].as_str().unwrap().to_owned(),
                c["coding"][0]["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        services,
        vec![
            (
                "http://terminology.hl7.org/CodeSystem/restful-security-service".to_owned(),
                "SMART-on-FHIR".to_owned()
            ),
            (
                "http://fhir.udap.org/CodeSystem/capability-rest-security-service".to_owned(),
                "UDAP".to_owned()
            ),
        ]
    );
    assert_eq!(
        sec["extension"][0]["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
    assert!(list(&s["implementationGuide"], "")
        .iter()
        .any(|g| g.contains("udap-security")));

    let off = TestApp::with_config("[udap]\nenabled = false\n").await;
    assert!(off.app.udap.is_none());
    let s = metadata(&off, "").await.json;
    let sec = &s["rest"][0]["security"];
    assert_eq!(sec["service"].as_array().unwrap().len(), 1);
    assert_eq!(sec["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert!(!list(&s["implementationGuide"], "")
        .iter()
        .any(|g| g.contains("udap-security")));
}

#[tokio::test]
async fn mode_selects_the_statement() {
    let t = TestApp::new().await;
    let full = metadata(&t, "?mode=full").await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(
        full.json,
        metadata(&t, "").await.json,
        "full is the default"
    );
    let normative = metadata(&t, "?mode=normative").await;
    assert_eq!(normative.status, StatusCode::OK);
    assert!(!normative.text().contains("\"extension\""));
    // the same resources, less their extensions (e.g. the Backport topic
    // canonical on Subscription)
    let mut resources = full.json["rest"][0]["resource"].clone();
    for r in resources.as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("extension");
    }
    assert_eq!(normative.json["rest"][0]["resource"], resources);
    for bad in ["terminology", "everything"] {
        let r = metadata(&t, &format!("?mode={bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json["resourceType"], "OperationOutcome");
        assert_eq!(r.json["issue"][0]["code"], "not-supported");
    }
}

/// A statement as an HTTP FHIR server (HAPI-like) publishes it.
fn upstream_statement(base: &str) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2025-06-01T00:00:00Z",
        "publisher": "Not provided",
        "kind": "instance",
        "software": {"name": "HAPI FHIR Server", "version": "7.4.0"},
        "implementation": {"description": "HAPI FHIR", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+xml", "xml", "application/fhir+json", "json"],
        "patchFormat": ["application/fhir+json", "application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": [
                {"type": "Patient",
                 "profile": "http://hl7.org/fhir/StructureDefinition/Patient",
                 "extension": [{"url": "http://hl7api.sourceforge.net/hapi-fhir/res/extdefs.html#resourceCount", "valueDecimal": 3}],
                 "interaction": [{"code": "search-type"}, {"code": "update"}, {"code": "vread"}, {"code": "read"},
                                 {"code": "patch"}, {"code": "history-type"}, {"code": "history-instance"},
                                 {"code": "delete"}, {"code": "create"}],
                 "versioning": "versioned-update", "readHistory": true, "updateCreate": true,
                 "conditionalCreate": true, "conditionalRead": "full-support",
                 "conditionalUpdate": true, "conditionalDelete": "multiple",
                 "searchInclude": ["*", "Patient:general-practitioner", "Patient:link", "Patient:organization"],
                 "searchRevInclude": ["Observation:patient", "AuditEvent:patient", "Provenance:target"],
                 "searchParam": [
                     {"name": "birthdate", "definition": "http://hl7.org/fhir/SearchParameter/individual-birthdate", "type": "date"},
                     {"name": "family", "definition": "http://hl7.org/fhir/SearchParameter/individual-family", "type": "string"},
                     {"name": "local-id", "definition": format!("{base}/SearchParameter/local-id"), "type": "token"},
                     {"name": "_format", "type": "token"}
                 ],
                 "operation": [
                     {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
                     {"name": "export", "definition": "http://hapi.fhir.org/OperationDefinition/Patient-export"},
                     {"name": "validate", "definition": "http://hapi.fhir.org/OperationDefinition/Patient-validate"},
                     {"name": "meta", "definition": "http://hapi.fhir.org/OperationDefinition/Patient-meta"}
                 ]},
                {"type": "Observation",
                 "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "patch"}],
                 "searchParam": [{"name": "code", "definition": "http://hl7.org/fhir/SearchParameter/clinical-code", "type": "token"}]},
                {"type": "AuditEvent", "interaction": [{"code": "read"}, {"code": "create"}, {"code": "delete"}]},
                {"type": "Subscription", "interaction": [{"code": "read"}, {"code": "create"}]}
            ],
            "interaction": [{"code": "batch"}, {"code": "transaction"}, {"code": "history-system"}, {"code": "search-system"}],
            "operation": [
                {"name": "reindex", "definition": "http://hapi.fhir.org/OperationDefinition/Global-reindex"},
                {"name": "expunge", "definition": format!("{base}/OperationDefinition/expunge")},
                {"name": "export", "definition": "http://hapi.fhir.org/OperationDefinition/Global-export"}
            ]
        }]
    })
}

/// An HTTP FHIR server on a free port answering `GET /fhir/metadata`.
async fn serve_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    let statement = upstream_statement(&base);
    let app = axum::Router::new().route(
        "/fhir/metadata",
        axum::routing::get(move || {
            let body = statement.to_string();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/fhir+json")],
                    body,
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// The rule on a HAPI-shaped statement (see the module docs; the real
/// engine's is checked in `conformance-tests/tests/capability_upstream.rs`).
#[tokio::test]
async fn an_http_upstream_statement_is_intersected_with_what_fhirgate_forwards() {
    let upstream = serve_upstream().await;
    let t = TestApp::with_config(&format!("[upstream]\nurl = \"{upstream}\"\n")).await;
    let r = metadata(&t, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let s = &r.json;
    assert_eq!(s["software"]["name"], "fhirgate");
    assert_eq!(s["implementation"]["url"], BASE);
    assert!(s.get("patchFormat").is_none());
    assert!(
        !r.text().contains("resourceCount"),
        "upstream extensions dropped"
    );

    let p = resource(s, "Patient");
    assert_eq!(
        list(&p["interaction"], "code"),
        vec![
            "search-type",
            "update",
            "vread",
            "read",
            "history-type",
            "history-instance",
            "delete",
            "create"
        ],
        "patch is refused by fhirgate"
    );
    assert_eq!(
        list(&p["searchParam"], "name"),
        vec!["birthdate", "family", "local-id"]
    );
    let host = upstream
        .trim_start_matches("http://")
        .trim_end_matches("/fhir");
    assert!(
        !r.text().contains(host),
        "the upstream's address never reaches a client"
    );
    assert_eq!(p["conditionalDelete"], "multiple", "forwarded as is");
    assert_eq!(
        list(&p["searchRevInclude"], ""),
        vec!["Observation:patient", "Provenance:target"]
    );
    let ops: Vec<(String, String)> = p["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["definition"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let def = |n: &str| {
        ops.iter()
            .find(|o| o.0 == n)
            .map(|o| o.1.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        def("everything"),
        "http://hl7.org/fhir/OperationDefinition/Patient-everything"
    );
    assert_eq!(
        def("export"),
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
    );
    assert_eq!(
        def("validate"),
        "http://hl7.org/fhir/OperationDefinition/Resource-validate"
    );
    assert_eq!(
        def("meta"),
        "http://hapi.fhir.org/OperationDefinition/Patient-meta"
    );
    assert_eq!(
        def("member-match"),
        "http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match"
    );

    let o = resource(s, "Observation");
    assert_eq!(list(&o["interaction"], "code"), vec!["read", "search-type"]);
    // types fhirgate serves itself, whatever the upstream says
    assert_eq!(
        list(&resource(s, "AuditEvent")["interaction"], "code"),
        vec!["read", "search-type"]
    );
    assert_eq!(
        list(&resource(s, "Subscription")["interaction"], "code"),
        vec!["read", "update", "delete", "create", "search-type"]
    );
    // fhirgate's operations on types the upstream does not declare
    let claim = resource(s, "Claim");
    assert!(claim.get("interaction").is_none());
    assert_eq!(
        list(&claim["operation"], "name"),
        vec!["submit", "inquire", "validate"]
    );
    let system: Vec<(String, String)> = s["rest"][0]["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["definition"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(system.contains(&(
        "reindex".into(),
        "http://hapi.fhir.org/OperationDefinition/Global-reindex".into()
    )));
    assert!(system.contains(&(
        "export".into(),
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export".into()
    )));
    assert!(!system.iter().any(|o| o.1.contains("Global-export")));
    assert!(
        !system.iter().any(|o| o.0 == "expunge"),
        "defined only on the upstream"
    );
    assert_eq!(
        list(&s["rest"][0]["interaction"], "code"),
        vec!["batch", "transaction", "history-system", "search-system"]
    );
}
