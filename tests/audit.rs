//! The audit trail on every request (issue 5 items 1, 3, 4, 6, 7): the
//! entries each route writes and their fields, one event per patient, the
//! `X-Ledger-Seq` receipt, fail-closed 503, pseudonyms, encrypted payloads,
//! tampering, erasure, and (in `audit/readback.rs`) AuditEvent read-back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "audit/bench.rs"]
mod bench;
mod common;
#[path = "audit/readback.rs"]
mod readback;
#[path = "audit/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use common::TestApp;
use fhirgate::{
    audit::{check::verify_payloads, HttpFacts},
    pipeline::disclosure::{Caller, ConsentNote, Disclosure, PatientTouch},
};
use serde_json::{json, Value};
use support::{auditor_ctx, entry, event, sqlite};

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "gender": "female"})
}

#[tokio::test]
async fn a_fhir_read_is_on_the_ledger_before_the_response_with_its_receipt() {
    let t = TestApp::new().await;
    let id = t.create(patient("Receipt")).await;
    let r = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let seq: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    // The receipt names a durable entry carrying the request id of the logs.
    let e = entry(&t, seq).await;
    assert_eq!(e.request_id, r.header("x-request-id"));
    let chained: Value = serde_json::from_str(&e.entry).unwrap();
    assert_eq!(chained["kind"], "rest");
    assert_eq!(chained["interaction"], "read");
    assert_eq!(chained["type"], "Patient");
    assert_eq!(chained["action"], "R");
    assert_eq!(chained["status"], 200);
    assert_eq!(chained["outcome"], "0");
    assert_eq!(
        chained["patient"],
        t.app.audit.pseudonym(&format!("Patient/{id}"))
    );
    // No PHI on the chain: no id, no client or user in clear.
    assert!(!e.entry.contains(&id), "{}", e.entry);
    assert!(!e.entry.contains("test-client"), "{}", e.entry);
    // The readable AuditEvent, decrypted from the vault.
    let ev = event(&t, seq).await;
    assert_eq!(ev["id"], seq.to_string());
    assert_eq!(ev["type"]["code"], "rest");
    assert_eq!(ev["subtype"][0]["code"], "read");
    assert_eq!(ev["action"], "R");
    assert_eq!(ev["outcome"], "0");
    let entities = ev["entity"].as_array().unwrap();
    let request = entities
        .iter()
        .find(|e| e["type"]["code"] == "XrequestId")
        .unwrap();
    assert_eq!(
        request["what"]["identifier"]["value"].as_str(),
        r.header("x-request-id").as_deref()
    );
    let p = entities.iter().find(|e| e["role"]["code"] == "1").unwrap();
    assert_eq!(p["what"]["reference"], format!("Patient/{id}"));
    let client = &ev["agent"][0];
    assert_eq!(client["who"]["identifier"]["value"], "test-client");
    assert_eq!(
        client["type"]["coding"][0]["code"], "110152",
        "reads: client is the destination"
    );
    assert_eq!(ev["agent"][1]["who"]["display"], "fhirgate");
    assert!(ev["meta"]["profile"][0]
        .as_str()
        .unwrap()
        .ends_with("IHE.BasicAudit.PatientRead"));
    assert!(ev["source"]["observer"]["identifier"]["value"]
        .as_str()
        .unwrap()
        .starts_with("http://fhirgate.test"));
    // The whole chain verifies.
    assert!(t.app.audit.ledger().verify(&t.app.keys).await.unwrap().ok());
}

#[tokio::test]
async fn every_fhir_interaction_gets_its_subtype_action_and_outcome() {
    let t = TestApp::new().await;
    let id = t.create(patient("Kinds")).await;
    type Case = (
        Method,
        String,
        Option<Value>,
        &'static str,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/fhir/metadata".into(),
            None,
            "capabilities",
            "R",
            "0",
        ),
        (
            Method::GET,
            format!("/fhir/Patient?_id={id}"),
            None,
            "search-type",
            "E",
            "0",
        ),
        (
            Method::GET,
            format!("/fhir/Patient/{id}/_history/1"),
            None,
            "vread",
            "R",
            "0",
        ),
        (
            Method::GET,
            format!("/fhir/Patient/{id}/_history"),
            None,
            "history-instance",
            "R",
            "0",
        ),
        (
            Method::PUT,
            format!("/fhir/Patient/{id}"),
            Some(json!({"resourceType": "Patient", "id": id, "gender": "male"})),
            "update",
            "U",
            "0",
        ),
        (
            Method::POST,
            "/fhir/Patient".into(),
            Some(patient("New")),
            "create",
            "C",
            "0",
        ),
        (
            Method::GET,
            "/fhir/Patient/does-not-exist".into(),
            None,
            "read",
            "R",
            "4",
        ),
        (
            Method::DELETE,
            format!("/fhir/Patient/{id}"),
            None,
            "delete",
            "D",
            "0",
        ),
        (
            Method::POST,
            "/fhir".into(),
            Some(json!({"resourceType": "Bundle", "type": "transaction", "entry": []})),
            "transaction",
            "E",
            "0",
        ),
    ];
    for (method, path, body, subtype, action, outcome) in cases {
        let r = match body {
            Some(b) => t.send_json(method.clone(), &path, &b, &[]).await,
            None => t.request(method.clone(), &path, &[], None).await,
        };
        let seq: u64 = r
            .header("x-ledger-seq")
            .unwrap_or_else(|| panic!("{method} {path}: no receipt"))
            .parse()
            .unwrap();
        let ev = event(&t, seq).await;
        assert_eq!(ev["subtype"][0]["code"], subtype, "{method} {path}");
        assert_eq!(ev["action"], action, "{method} {path}");
        assert_eq!(ev["outcome"], outcome, "{method} {path}: {}", r.status);
    }
    // A search is recorded with its query (base64), never its results.
    let r = t.get(&format!("/fhir/Patient?_id={id}&gender=male")).await;
    let ev = event(&t, r.header("x-ledger-seq").unwrap().parse().unwrap()).await;
    let q = ev["entity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"]["code"] == "24")
        .unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(q["query"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        format!("GET /fhir/Patient?_id={id}&gender=male")
    );
    assert!(!ev.to_string().contains("\"family\""), "no result contents");
}

#[tokio::test]
async fn refusals_and_unparseable_requests_are_audited_too() {
    let t = TestApp::new().await;
    // No token: 401, audited without a user.
    let r = t.request_raw(Method::GET, "/fhir/Patient", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let ev = event(&t, r.header("x-ledger-seq").unwrap().parse().unwrap()).await;
    assert_eq!(ev["outcome"], "4");
    assert_eq!(ev["outcomeDesc"], "HTTP 401");
    assert_eq!(
        ev["agent"].as_array().unwrap().len(),
        2,
        "client and server only"
    );
    // A scope that does not cover the type: 403, with the user.
    let tok = t
        .token_for(
            "user/Observation.rs",
            None,
            Some("Practitioner/7"),
            Some("clinician"),
        )
        .await;
    let auth = format!("Bearer {tok}");
    let r = t
        .request(
            Method::GET,
            "/fhir/Patient?patient=Patient/p9",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let seq: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    let ev = event(&t, seq).await;
    assert_eq!(ev["outcome"], "4");
    assert_eq!(ev["agent"][2]["who"]["reference"], "Practitioner/7");
    assert_eq!(ev["agent"][2]["requestor"], true);
    assert_eq!(ev["agent"][2]["role"][0]["coding"][0]["code"], "clinician");
    // The patient the refused request named has it in their accounting.
    let chained: Value = serde_json::from_str(&entry(&t, seq).await.entry).unwrap();
    assert_eq!(chained["patient"], t.app.audit.pseudonym("Patient/p9"));
    // Unknown type: 404 from the parser, still audited (no FHIR facts).
    let r = t.get("/fhir/NoSuchType/1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let ev = event(&t, r.header("x-ledger-seq").unwrap().parse().unwrap()).await;
    assert_eq!(ev["action"], "R");
    assert_eq!(ev["outcome"], "4");
}

fn caller() -> Caller {
    Caller {
        client_id: "app-1".into(),
        fhir_user: Some("Practitioner/7".into()),
        role: Some("clinician".into()),
        jti: "jti-1".into(),
        purpose: Some("TREAT".into()),
        organization: Some("Organization/org-1".into()),
        acr: None,
        amr: Vec::new(),
    }
}

#[tokio::test]
async fn one_event_per_patient_touched_each_naming_only_its_patient() {
    let t = TestApp::new().await;
    let mut d = Disclosure {
        caller: Some(caller()),
        ..Disclosure::default()
    };
    d.patients.insert(
        "Patient/a".into(),
        PatientTouch {
            released: vec!["Patient/a".into(), "Observation/oa".into()],
            withheld: 2,
            decisions: vec![],
        },
    );
    d.patients.insert(
        "Patient/b".into(),
        PatientTouch {
            released: vec!["Observation/ob".into()],
            withheld: 0,
            decisions: vec![],
        },
    );
    d.note(
        "Patient/b",
        ConsentNote {
            effect: "deny".into(),
            basis: "Consent/c1 v3 provision.provision[0]".into(),
            consent: Some("Consent/c1/_history/3".into()),
            resources: 4,
        },
    );
    d.note(
        "Patient/a",
        ConsentNote {
            effect: "permit".into(),
            basis: "base policy opt-out".into(),
            consent: None,
            resources: 2,
        },
    );
    d.other = vec!["Practitioner/7".into()];
    d.break_glass = Some("unconscious patient in ED".into());
    let http = HttpFacts {
        method: "GET".into(),
        path: "/fhir/Observation".into(),
        query: Some("code=1234".into()),
        client_addr: Some("10.1.2.3".into()),
        recorded: 1_700_000_000_000,
    };
    let mut req = fhirgate::fhir::FhirRequest::new(fhirgate::fhir::Interaction::SearchType);
    req.resource_type = Some("Observation".into());
    req.params = vec![("code".into(), "1234".into())];
    let facts = fhirgate::audit::FhirFacts::of(&req);
    let receipt = t
        .app
        .audit
        .record_fhir("req-multi", &http, Some(&facts), &d, 200)
        .await
        .unwrap();
    // the request's own event; a: authz + rest; b: authz + rest
    assert_eq!(receipt.seqs.len(), 5, "{receipt:?}");
    let mut by_kind: Vec<(String, Option<String>, Value, Value)> = Vec::new();
    for seq in &receipt.seqs {
        let e = entry(&t, *seq).await;
        assert_eq!(e.request_id.as_deref(), Some("req-multi"));
        for phi in [
            "Patient/a",
            "Observation/oa",
            "Observation/ob",
            "Consent/c1",
            "Practitioner/7",
            "10.1.2.3",
            "unconscious",
        ] {
            assert!(!e.entry.contains(phi), "{phi} on the chain: {}", e.entry);
        }
        let chained: Value = serde_json::from_str(&e.entry).unwrap();
        let ev = event(&t, *seq).await;
        by_kind.push((
            chained["kind"].as_str().unwrap().to_owned(),
            chained["patient"].as_str().map(str::to_owned),
            chained,
            ev,
        ));
    }
    let pa = t.app.audit.pseudonym("Patient/a");
    let pb = t.app.audit.pseudonym("Patient/b");
    let find = |kind: &str, p: Option<&str>| {
        by_kind
            .iter()
            .find(|(k, pp, _, _)| k == kind && pp.as_deref() == p)
            .unwrap_or_else(|| panic!("no {kind} event for {p:?}"))
    };
    let refs = |ev: &Value| -> Vec<String> {
        ev["entity"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["what"]["reference"].as_str().map(str::to_owned))
            .collect()
    };
    let (_, _, ca, ea) = find("rest", Some(&pa));
    assert_eq!(refs(ea), vec!["Patient/a", "Patient/a", "Observation/oa"]);
    assert_eq!(ca["withheld"], 2);
    assert_eq!(ca["btg"], true);
    assert_eq!(ea["meta"]["security"][0]["code"], "BTG");
    assert_eq!(ea["purposeOfEvent"][1]["text"], "unconscious patient in ED");
    assert_eq!(ea["agent"][0]["network"]["address"], "10.1.2.3");
    assert_eq!(
        ea["agent"][2]["policy"][0],
        "urn:ietf:params:oauth:jti:jti-1"
    );
    assert_eq!(
        ea["agent"][2]["purposeOfUse"][0]["coding"][0]["code"],
        "TREAT"
    );
    // the organization the requestor acts for: a responsible-party agent
    assert_eq!(ea["agent"][3]["who"]["reference"], "Organization/org-1");
    assert_eq!(ea["agent"][3]["type"]["coding"][0]["code"], "RESP");
    assert_eq!(ea["agent"][3]["requestor"], false);
    let (_, _, _, eb) = find("rest", Some(&pb));
    assert_eq!(refs(eb), vec!["Patient/b", "Observation/ob"]);
    let (_, _, cd, ed) = find("authz-consent", Some(&pb));
    assert_eq!(cd["effect"], "deny");
    assert!(
        cd.get("basis").is_none(),
        "a basis naming a Consent is hashed"
    );
    assert!(cd["basis_hash"].is_string());
    assert_eq!(ed["type"]["code"], "110113");
    assert_eq!(ed["subtype"][0]["code"], "AuthZ-Consent");
    assert_eq!(ed["outcome"], "8");
    assert!(refs(ed).contains(&"Consent/c1/_history/3".to_owned()));
    let (_, _, cp, ep) = find("authz-consent", Some(&pa));
    assert_eq!(cp["basis"], "permit by base policy opt-out");
    assert_eq!(ep["outcome"], "0");
    let (_, _, _, eo) = find("rest", None);
    assert_eq!(refs(eo), vec!["Practitioner/7"]);
}

#[tokio::test]
async fn non_fhir_routes_are_audited_by_route_template() {
    let t = TestApp::new().await;
    let r = t.request_raw(Method::GET, "/auth/jwks", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let seq: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    let chained: Value = serde_json::from_str(&entry(&t, seq).await.entry).unwrap();
    assert_eq!(chained["kind"], "http");
    assert_eq!(chained["route"], "/auth/jwks");
    assert_eq!(chained["method"], "GET");
    assert_eq!(chained["status"], 200);
    // A token request with client_secret_basic: the client is known, the
    // secret and the body are not recorded.
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("my-client:top-secret")
    );
    let r = t
        .request_raw(
            Method::POST,
            "/auth/token",
            &[
                ("authorization", &basic),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(b"grant_type=client_credentials&scope=system/Patient.rs".to_vec()),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let seq: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    let e = entry(&t, seq).await;
    assert!(!e.entry.contains("top-secret") && !e.entry.contains("my-client"));
    let ev = event(&t, seq).await;
    assert_eq!(ev["type"]["code"], "110114", "user authentication");
    assert_eq!(ev["agent"][0]["who"]["identifier"]["value"], "my-client");
    assert_eq!(ev["outcome"], "4");
    assert!(!ev.to_string().contains("top-secret"));
    assert!(!ev.to_string().contains("client_credentials"), "no body");
    // UI pages too; the health probe and the stylesheet are not audited.
    let r = t.request_raw(Method::GET, "/login", &[], None).await;
    assert!(r.header("x-ledger-seq").is_some());
    let ev = event(&t, r.header("x-ledger-seq").unwrap().parse().unwrap()).await;
    assert_eq!(ev["subtype"][0]["code"], "GET /login");
    assert!(t.get("/healthz").await.header("x-ledger-seq").is_none());
}

#[tokio::test]
async fn when_the_ledger_cannot_write_requests_fail_closed_with_503() {
    let t = TestApp::single_replica("renames the SQLite state store's ledger tables", "").await;
    let id = t.create(patient("Closed")).await;
    let pool = sqlite(&t);
    sqlx::query("ALTER TABLE ledger_entries RENAME TO ledger_entries_away")
        .execute(pool)
        .await
        .unwrap();
    let r = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert!(
        !r.text().contains("Closed"),
        "nothing from the upstream: {}",
        r.text()
    );
    assert!(r.header("x-ledger-seq").is_none());
    let r = t.request_raw(Method::GET, "/auth/jwks", &[], None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!r.text().contains("\"keys\""));
    sqlx::query("ALTER TABLE ledger_entries_away RENAME TO ledger_entries")
        .execute(pool)
        .await
        .unwrap();
    let r = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("x-ledger-seq").is_some());
    // The payload table failing also fails closed.
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_away")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        t.get(&format!("/fhir/Patient/{id}")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn pseudonyms_are_stable_per_deployment_and_keyed() {
    let a = TestApp::new().await;
    let b = TestApp::new().await;
    let p = a.app.audit.pseudonym("Patient/42");
    assert_eq!(p, a.app.audit.pseudonym("Patient/42"));
    assert_eq!(p.len(), 64);
    assert_ne!(p, b.app.audit.pseudonym("Patient/42"), "another key file");
    assert!(a.dir.path().join("keys/audit-pseudonym.key").exists());
    assert!(a.dir.path().join("keys/audit-master.key").exists());
}

#[tokio::test]
async fn a_tampered_payload_fails_to_decrypt_and_the_chain_still_verifies() {
    let t =
        TestApp::single_replica("tampers with the SQLite state store's audit payloads", "").await;
    let id = t.create(patient("Tamper")).await;
    let r = t.get(&format!("/fhir/Patient/{id}")).await;
    let seq: i64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    let report = verify_payloads(&t.app.audit).await.unwrap();
    assert!(report.ok() && report.ok == report.checked, "{report:?}");
    let pool = sqlite(&t);
    let (payload,): (String,) = sqlx::query_as("SELECT payload FROM audit_events WHERE seq = $1")
        .bind(seq)
        .fetch_one(pool)
        .await
        .unwrap();
    let mut bytes = payload.into_bytes();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    sqlx::query("UPDATE audit_events SET payload = $1 WHERE seq = $2")
        .bind(String::from_utf8(bytes).unwrap())
        .bind(seq)
        .execute(pool)
        .await
        .unwrap();
    let read = support::read(&t, &auditor_ctx(&t).await, &seq.to_string()).await;
    assert_eq!(read.unwrap_err().status, StatusCode::INTERNAL_SERVER_ERROR);
    let report = verify_payloads(&t.app.audit).await.unwrap();
    assert_eq!(report.bad, vec![seq as u64]);
    assert!(t.app.audit.ledger().verify(&t.app.keys).await.unwrap().ok());
    // Moving a payload to another seq is caught as well (seq is bound in).
    sqlx::query("UPDATE audit_events SET payload = (SELECT payload FROM audit_events WHERE seq = 0), nonce = (SELECT nonce FROM audit_events WHERE seq = 0) WHERE seq = 1")
        .execute(pool)
        .await
        .unwrap();
    let report = verify_payloads(&t.app.audit).await.unwrap();
    assert!(report.bad.contains(&1), "{report:?}");
}

#[tokio::test]
async fn erasure_leaves_the_chain_verifying_and_the_payloads_unreadable() {
    let t = TestApp::new().await;
    let id = t.create(patient("Erase")).await;
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let r = t.get(&format!("/fhir/Patient/{id}")).await;
        seqs.push(r.header("x-ledger-seq").unwrap());
    }
    let ctx = auditor_ctx(&t).await;
    assert!(support::read(&t, &ctx, &seqs[0]).await.is_ok());
    let before = fhirgate::audit::history_for_patient(&t.app, &format!("Patient/{id}"), 10)
        .await
        .unwrap();
    assert!(before.len() >= 3);
    // The admin API (bearer token of an admin user).
    let admin = t
        .token_for(
            "openid fhirUser",
            None,
            Some("Practitioner/admin"),
            Some("admin"),
        )
        .await;
    let not_admin = t.token.clone();
    let body = serde_json::to_vec(&json!({"patient": format!("Patient/{id}")})).unwrap();
    let r = t
        .request(
            Method::POST,
            "/admin/api/ledger/erase-patient",
            &[
                ("authorization", &format!("Bearer {not_admin}")),
                ("content-type", "application/json"),
            ],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .request(
            Method::POST,
            "/admin/api/ledger/erase-patient",
            &[
                ("authorization", &format!("Bearer {admin}")),
                ("content-type", "application/json"),
            ],
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["keys_destroyed"], 1);
    assert_eq!(
        r.json["pseudonym"],
        t.app.audit.pseudonym(&format!("Patient/{id}"))
    );
    let erasure_seq = r.json["seq"].as_u64().unwrap();
    let chained: Value = serde_json::from_str(&entry(&t, erasure_seq).await.entry).unwrap();
    assert_eq!(chained["kind"], "erasure");
    assert!(
        r.header("x-ledger-seq").is_some(),
        "the admin call itself is audited"
    );
    // Payloads unreadable: 410 on read, left out of searches and history.
    for s in &seqs {
        let e = support::read(&t, &ctx, s).await.unwrap_err();
        assert_eq!(e.status, StatusCode::GONE);
    }
    let found = support::search(&t, &ctx, &[("patient", &format!("Patient/{id}"))])
        .await
        .unwrap();
    assert_eq!(found["total"], 0, "{found}");
    assert!(
        fhirgate::audit::history_for_patient(&t.app, &format!("Patient/{id}"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The chain verifies; the payload check counts them as erased, not bad.
    assert!(t.app.audit.ledger().verify(&t.app.keys).await.unwrap().ok());
    let report = verify_payloads(&t.app.audit).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(report.erased >= 3, "{report:?}");
    // Later accesses are audited under a fresh key and readable again.
    let r = t.get(&format!("/fhir/Patient/{id}")).await;
    assert!(support::read(&t, &ctx, &r.header("x-ledger-seq").unwrap())
        .await
        .is_ok());
}

#[tokio::test]
async fn auditing_can_be_switched_off_for_benchmarks_only() {
    let t = TestApp::with_config("[audit]\nenabled = false\n").await;
    let r = t.get("/fhir/metadata").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("x-ledger-seq").is_none());
    assert_eq!(t.app.audit.ledger().size().await.unwrap(), 0);
}

#[tokio::test]
async fn the_checkpoint_timer_signs_checkpoints() {
    let t = TestApp::with_config("[audit]\ncheckpoint_every = 2\ncheckpoint_seconds = 1\n").await;
    let _timer = fhirgate::audit::checkpoint::spawn(&t.app);
    for _ in 0..3 {
        t.get("/fhir/metadata").await;
    }
    let mut found = None;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        found = t.app.audit.ledger().latest_checkpoint().await.unwrap();
        if found.as_ref().is_some_and(|c| c.tree_size >= 3) {
            break;
        }
    }
    assert!(found.unwrap().tree_size >= 3);
}

#[tokio::test]
async fn group_commit_latency_under_concurrency() {
    let t = TestApp::new().await;
    let n = 400usize;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let app = t.app.clone();
        tasks.push(tokio::spawn(async move {
            let http = HttpFacts {
                method: "GET".into(),
                path: format!("/fhir/Patient/p{i}"),
                recorded: 1_700_000_000_000,
                ..HttpFacts::default()
            };
            let mut d = Disclosure::default();
            d.patient(&format!("Patient/p{}", i % 50)).released =
                vec![format!("Patient/p{}", i % 50)];
            let t0 = std::time::Instant::now();
            let r = app
                .audit
                .record_fhir(&format!("r{i}"), &http, None, &d, 200)
                .await
                .unwrap();
            (t0.elapsed(), r.seqs)
        }));
    }
    let mut lat = Vec::new();
    let mut all = Vec::new();
    for t in tasks {
        let (d, seqs) = t.await.unwrap();
        lat.push(d);
        all.extend(seqs);
    }
    let total = started.elapsed();
    all.sort_unstable();
    all.dedup();
    // each request: its own event, then authz + rest for its patient
    assert_eq!(all.len(), 3 * n, "every event got its own seq");
    lat.sort();
    eprintln!(
        "audit append (debug build, SQLite, {n} concurrent requests): {:.0} events/s, p50 {:?}, p99 {:?}",
        n as f64 / total.as_secs_f64(),
        lat[n / 2],
        lat[n * 99 / 100]
    );
    assert!(t.app.audit.ledger().verify(&t.app.keys).await.unwrap().ok());
    assert!(verify_payloads(&t.app.audit).await.unwrap().ok());
}

#[tokio::test]
async fn an_exempt_clients_search_is_in_every_patients_accounting() {
    let t = TestApp::new().await;
    for p in ["pa", "pb"] {
        t.put(
            &format!("/fhir/Patient/{p}"),
            &serde_json::json!({"resourceType": "Patient", "id": p}),
        )
        .await;
        t.put(
            &format!("/fhir/Observation/o-{p}"),
            &serde_json::json!({"resourceType": "Observation", "id": format!("o-{p}"), "status": "final",
                "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}}),
        )
        .await;
    }
    // test-client is exempt from consent; its search still names both patients
    let r = t.get("/fhir/Observation?code:text=x").await;
    assert_eq!(r.status, StatusCode::OK);
    let last: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    for p in ["pa", "pb"] {
        let found = t
            .get(&format!("/fhir/AuditEvent?patient=Patient/{p}&action=E"))
            .await;
        let seqs: Vec<u64> = found.json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["resource"]["id"].as_str()?.parse().ok())
            .collect();
        assert!(
            seqs.iter().any(|s| *s + 4 >= last && *s <= last),
            "{p}: {seqs:?} (last {last})"
        );
    }
}
