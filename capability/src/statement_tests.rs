//! The builder as a whole: intersection, what fhirgate adds, gating,
//! profiles, security, mode.

use serde_json::{json, Value};

use super::*;
use crate::{ParamType, SearchParamDef};

const TABLE: &[SearchParamDef] = &[
    SearchParamDef {
        resource: "Patient",
        name: "name",
        kind: ParamType::String,
        paths: &["name"],
        targets: &[],
    },
    SearchParamDef {
        resource: "Observation",
        name: "patient",
        kind: ParamType::Reference,
        paths: &["subject"],
        targets: &["Patient"],
    },
    SearchParamDef {
        resource: "AuditEvent",
        name: "site",
        kind: ParamType::Token,
        paths: &["source.site"],
        targets: &[],
    },
    SearchParamDef {
        resource: "Claim",
        name: "patient",
        kind: ParamType::Reference,
        paths: &["patient"],
        targets: &["Patient"],
    },
    SearchParamDef {
        resource: "Group",
        name: "member",
        kind: ParamType::Reference,
        paths: &["member.entity"],
        targets: &["Patient"],
    },
];
const COMMON: &[SearchParamDef] = &[SearchParamDef {
    resource: "Resource",
    name: "_id",
    kind: ParamType::Token,
    paths: &["id"],
    targets: &[],
}];

fn all_on() -> Features {
    Features {
        bulk_export: true,
        prior_auth: true,
        payer: true,
        dtr: true,
        validate: true,
        subscriptions: true,
        audit_read: true,
        udap: false,
    }
}

fn passes(_: &str, name: &str) -> bool {
    name != "_format"
}

fn fw() -> Forwarding<'static> {
    Forwarding {
        type_interactions: crate::embedded::TYPE_INTERACTIONS,
        system_interactions: crate::embedded::SYSTEM_INTERACTIONS,
        passes_param: &passes,
        private_canonical: &|c: &str| c.starts_with("http://10.0.0.1/"),
    }
}

fn statement(store: &Rest, features: Features, profiles: &[(String, String)], mode: Mode) -> Value {
    let fw = fw();
    let security = smart::security(&smart::OAuthUris::under("http://h", "http://h/fhir"));
    build(&Inputs {
        base: "http://h/fhir",
        software_version: "1.2.3",
        date: "2026-11-23T04:00:00Z",
        store_name: "test store",
        store,
        forwarding: &fw,
        features,
        pas_version: "2.0.1",
        profiles,
        security,
        mode,
    })
}

fn resource<'a>(s: &'a Value, t: &str) -> Option<&'a Value> {
    s["rest"][0]["resource"]
        .as_array()?
        .iter()
        .find(|r| r["type"] == t)
}

fn ops(r: &Value) -> Vec<(String, String)> {
    r["operation"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["name"].as_str().unwrap_or_default().to_owned(),
                o["definition"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn names(r: &Value, key: &str, field: &str) -> Vec<String> {
    crate::model::strings_of(&r[key], field)
}

#[test]
fn the_embedded_store_is_listed_with_what_fhirgate_adds() {
    let store = crate::embedded::rest(TABLE, COMMON);
    let s = statement(&store, all_on(), &[], Mode::Full);
    assert_eq!(s["resourceType"], "CapabilityStatement");
    assert_eq!(s["fhirVersion"], "4.0.1");
    assert_eq!(s["kind"], "instance");
    assert_eq!(s["format"], json!(["json", "xml"]));
    assert_eq!(s["date"], "2026-11-23T04:00:00Z");
    assert_eq!(s["software"]["version"], "1.2.3");
    assert_eq!(s["implementation"]["url"], "http://h/fhir");
    let obs = resource(&s, "Observation").cloned().unwrap_or_default();
    assert_eq!(names(&obs, "searchParam", "name"), vec!["patient", "_id"]);
    assert_eq!(
        names(&obs, "searchInclude", ""),
        vec!["Observation:patient", "Observation:*"]
    );
    let pat = resource(&s, "Patient").cloned().unwrap_or_default();
    assert!(names(&pat, "searchRevInclude", "").contains(&"Observation:patient".to_owned()));
    let pat_ops: Vec<String> = ops(&pat).into_iter().map(|o| o.0).collect();
    assert_eq!(
        pat_ops,
        vec!["everything", "export", "member-match", "validate"]
    );
    let claim: Vec<String> = ops(&resource(&s, "Claim").cloned().unwrap_or_default())
        .into_iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(claim, vec!["submit", "inquire", "validate"]);
    let group: Vec<String> = ops(&resource(&s, "Group").cloned().unwrap_or_default())
        .into_iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(
        group,
        vec![
            "export",
            "bulk-member-match",
            "davinci-data-export",
            "validate"
        ]
    );
    let system: Vec<String> = ops(&s["rest"][0]).into_iter().map(|o| o.0).collect();
    assert_eq!(system, vec!["export", "questionnaire-package"]);
    // the types fhirgate serves itself replace the store's
    let audit = resource(&s, "AuditEvent").cloned().unwrap_or_default();
    assert_eq!(
        names(&audit, "interaction", "code"),
        vec!["read", "search-type"]
    );
    assert!(!names(&audit, "searchParam", "name").contains(&"site".to_owned()));
    assert!(
        ops(&audit).is_empty(),
        "AuditEvent routes no operation (not even $validate)"
    );
    let sub = resource(&s, "Subscription").cloned().unwrap_or_default();
    let sub_ops: Vec<String> = ops(&sub).into_iter().map(|o| o.0).collect();
    assert_eq!(sub_ops, vec!["status", "validate"]);
    // Questionnaire is not in the table: added for its operations only
    let q = resource(&s, "Questionnaire").cloned().unwrap_or_default();
    assert!(q.get("interaction").is_none());
    assert_eq!(ops(&q).len(), 3);
    // sorted, walkable
    let types: Vec<String> = names(&s["rest"][0], "resource", "type");
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(types, sorted);
}

#[test]
fn operations_follow_their_features() {
    let store = crate::embedded::rest(TABLE, COMMON);
    let none = Features::default();
    let s = statement(&store, none, &[], Mode::Full);
    assert!(s["rest"][0].get("operation").is_none());
    let pat: Vec<String> = ops(&resource(&s, "Patient").cloned().unwrap_or_default())
        .into_iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(pat, vec!["everything"], "the store's own operation stays");
    assert!(resource(&s, "Subscription").is_none());
    // with the features off, the store's AuditEvent is what is served
    assert!(resource(&s, "AuditEvent").is_some());
    assert!(s.get("instantiates").is_none());
    let s = statement(
        &store,
        Features {
            bulk_export: true,
            ..none
        },
        &[],
        Mode::Full,
    );
    assert_eq!(
        s["instantiates"],
        json!(["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data|2.0.0"])
    );
    let defs: Vec<(String, String)> = ops(&s["rest"][0]);
    assert_eq!(
        defs,
        vec![(
            "export".to_owned(),
            "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export".to_owned()
        )]
    );
}

#[test]
fn an_http_upstream_is_intersected() {
    let upstream = json!({"resourceType": "CapabilityStatement", "rest": [{"mode": "server",
    "interaction": [{"code": "transaction"}, {"code": "batch"}],
    "operation": [{"name": "export", "definition": "http://upstream/export"},
                  {"name": "reindex", "definition": "http://upstream/reindex"}],
    "resource": [
        {"type": "Patient", "extension": [{"url": "http://vendor"}],
         "interaction": [{"code": "read"}, {"code": "patch"}, {"code": "search-type"}],
         "supportedProfile": ["http://upstream/Patient"],
         "searchParam": [{"name": "name", "type": "string"}, {"name": "_format", "type": "string"}]},
        {"type": "Subscription", "interaction": [{"code": "read"}]}
    ]}]});
    let store = Rest::from_statement(&upstream);
    let profiles = vec![
        ("Patient".to_owned(), "http://ours/Patient".to_owned()),
        ("Bundle".to_owned(), "http://ours/Bundle".to_owned()),
    ];
    let s = statement(&store, all_on(), &profiles, Mode::Full);
    let p = resource(&s, "Patient").cloned().unwrap_or_default();
    assert_eq!(
        names(&p, "interaction", "code"),
        vec!["read", "search-type"]
    );
    assert_eq!(names(&p, "searchParam", "name"), vec!["name"]);
    assert_eq!(
        names(&p, "supportedProfile", ""),
        vec!["http://upstream/Patient", "http://ours/Patient"]
    );
    assert!(p.get("extension").is_none());
    let pat_ops: Vec<String> = ops(&p).into_iter().map(|o| o.0).collect();
    assert!(
        !pat_ops.contains(&"everything".to_owned()),
        "the upstream does not declare it"
    );
    assert!(
        resource(&s, "Bundle").is_none(),
        "a profile does not invent a type"
    );
    let system = ops(&s["rest"][0]);
    assert!(system.contains(&("reindex".to_owned(), "http://upstream/reindex".to_owned())));
    assert!(system.contains(&(
        "export".to_owned(),
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export".to_owned()
    )));
    assert!(!system.iter().any(|o| o.1 == "http://upstream/export"));
    let sub = resource(&s, "Subscription").cloned().unwrap_or_default();
    assert_eq!(
        names(&sub, "interaction", "code"),
        vec!["read", "update", "delete", "create", "search-type"]
    );
    assert!(
        resource(&s, "AuditEvent").is_some(),
        "served from the ledger whatever the upstream says"
    );
}

#[test]
fn security_lists_udap_only_when_on_and_normative_drops_extensions() {
    let store = crate::embedded::rest(TABLE, COMMON);
    let s = statement(&store, all_on(), &[], Mode::Full);
    let sec = &s["rest"][0]["security"];
    assert_eq!(sec["service"].as_array().map(Vec::len), Some(1));
    assert_eq!(sec["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert!(sec.get("extension").is_some());
    let s = statement(
        &store,
        Features {
            udap: true,
            ..all_on()
        },
        &[],
        Mode::Normative,
    );
    let sec = &s["rest"][0]["security"];
    assert_eq!(
        sec["service"][1]["coding"][0]["system"],
        "http://fhir.udap.org/CodeSystem/capability-rest-security-service"
    );
    assert_eq!(sec["service"][1]["coding"][0]["code"], "UDAP");
    assert!(sec.get("extension").is_none());
    assert!(!s.to_string().contains("\"extension\""));
    assert!(s["implementationGuide"].as_array().is_some_and(|g| g
        .iter()
        .any(|g| g.as_str().is_some_and(|g| g.contains("udap-security")))));
}

#[test]
fn modes_parse() {
    assert_eq!(Mode::parse(None), Ok(Mode::Full));
    assert_eq!(Mode::parse(Some("full")), Ok(Mode::Full));
    assert_eq!(Mode::parse(Some("normative")), Ok(Mode::Normative));
    assert!(Mode::parse(Some("terminology")).is_err());
    assert!(Mode::parse(Some("everything")).is_err());
}
