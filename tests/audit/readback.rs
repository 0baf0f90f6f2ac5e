//! AuditEvent read-back from the ledger's decrypted payloads: every search
//! parameter, paging, and who may see what (auditor, the patient, nobody
//! else), plus the portal's access history.

use axum::http::StatusCode;
use fhirgate::{
    audit::{history_for_patient, FhirFacts, HttpFacts},
    fhir::{FhirRequest, Interaction},
    pipeline::disclosure::{Caller, ConsentNote, Disclosure},
};
use serde_json::Value;

use crate::{
    common::TestApp,
    support::{auditor_ctx, ctx_for, read, search},
};

const T1: i64 = 1_672_531_200_000; // 2023-01-01T00:00:00Z
const T2: i64 = 1_685_577_600_000; // 2023-06-01T00:00:00Z
const T3: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

fn caller(client: &str, user: Option<&str>) -> Caller {
    Caller {
        client_id: client.into(),
        fhir_user: user.map(str::to_owned),
        role: user.map(|_| "clinician".to_owned()),
        jti: format!("jti-{client}"),
        purpose: Some("TREAT".into()),
        organization: None,
        acr: None,
        amr: Vec::new(),
    }
}

fn http(path: &str, at: i64) -> HttpFacts {
    HttpFacts {
        method: "GET".into(),
        path: path.into(),
        query: None,
        client_addr: None,
        recorded: at,
    }
}

fn facts(interaction: Interaction, ty: &str, id: Option<&str>) -> FhirFacts {
    let mut r = FhirRequest::new(interaction);
    r.resource_type = Some(ty.into());
    r.id = id.map(str::to_owned);
    FhirFacts::of(&r)
}

/// ev1: A's Observation read by Practitioner/7 (app-1), 2023-01-01;
/// ev2: B's Observations searched by Practitioner/8 (app-2), 2023-06-01;
/// ev3: a read of Patient/A refused (403) to app-2, with a consent deny, 2024.
/// Each request writes its own event, then per known patient an
/// AuthZ-consent event and a RESTful event. Returns the 9 seqs:
/// [r1 request, r1 authz A, r1 rest A, r2 request, r2 authz B, r2 rest B,
///  r3 request, r3 authz A (deny), r3 rest A (403)].
async fn seed(t: &TestApp) -> Vec<String> {
    let mut seqs = Vec::new();
    let mut d = Disclosure {
        caller: Some(caller("app-1", Some("Practitioner/7"))),
        ..Disclosure::default()
    };
    d.patient("Patient/A").released = vec!["Observation/oa".into()];
    let f = facts(Interaction::Read, "Observation", Some("oa"));
    let r = t
        .app
        .audit
        .record_fhir("r1", &http("/fhir/Observation/oa", T1), Some(&f), &d, 200)
        .await
        .unwrap();
    seqs.extend(r.seqs);
    let mut d = Disclosure {
        caller: Some(caller("app-2", Some("Practitioner/8"))),
        ..Disclosure::default()
    };
    d.patient("Patient/B").released = vec!["Observation/ob1".into(), "Observation/ob2".into()];
    let f = facts(Interaction::SearchType, "Observation", None);
    let r = t
        .app
        .audit
        .record_fhir("r2", &http("/fhir/Observation", T2), Some(&f), &d, 200)
        .await
        .unwrap();
    seqs.extend(r.seqs);
    let mut d = Disclosure {
        caller: Some(caller("app-2", None)),
        ..Disclosure::default()
    };
    d.note(
        "Patient/A",
        ConsentNote {
            effect: "deny".into(),
            basis: "Consent/c1 v2 provision".into(),
            consent: Some("Consent/c1/_history/2".into()),
            resources: 1,
        },
    );
    let f = facts(Interaction::Read, "Patient", Some("A"));
    let r = t
        .app
        .audit
        .record_fhir("r3", &http("/fhir/Patient/A", T3), Some(&f), &d, 403)
        .await
        .unwrap();
    seqs.extend(r.seqs);
    assert_eq!(seqs.len(), 9);
    seqs.into_iter().map(|s| s.to_string()).collect()
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_auditor_searches_every_parameter() {
    let t = TestApp::new().await;
    let s = seed(&t).await;
    let v = |idx: &[usize]| -> Vec<String> { idx.iter().map(|i| s[*i].clone()).collect() };
    let ctx = auditor_ctx(&t).await;
    let q = |params: Vec<(&'static str, String)>| {
        let ctx = ctx.clone();
        let t = &t;
        async move {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let b = search(t, &ctx, &p).await.unwrap();
            assert_eq!(b["resourceType"], "Bundle");
            assert_eq!(b["total"].as_u64().unwrap() as usize, ids(&b).len(), "{b}");
            ids(&b)
        }
    };
    // Everything, newest first.
    assert_eq!(q(vec![]).await, v(&[8, 7, 6, 5, 4, 3, 2, 1, 0]));
    assert_eq!(
        q(vec![("patient", "Patient/A".into())]).await,
        v(&[8, 7, 2, 1])
    );
    assert_eq!(q(vec![("patient", "A".into())]).await.len(), 4);
    assert_eq!(q(vec![("patient", "A,B".into())]).await.len(), 6);
    assert_eq!(q(vec![("_id", s[5].clone())]).await, v(&[5]));
    assert_eq!(
        q(vec![("_id", "nonsense".into())]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        q(vec![("date", "ge2023-06-01".into())]).await,
        v(&[8, 7, 6, 5, 4, 3])
    );
    assert_eq!(q(vec![("date", "lt2023-02".into())]).await, v(&[2, 1, 0]));
    assert_eq!(
        q(vec![("date", "2023".into())]).await,
        v(&[5, 4, 3, 2, 1, 0])
    );
    assert_eq!(q(vec![("date", "gt2023".into())]).await, v(&[8, 7, 6]));
    assert_eq!(
        q(vec![
            ("date", "ge2023-01-01T00:00:00Z".into()),
            ("date", "le2023-06-01".into())
        ])
        .await,
        v(&[5, 4, 3, 2, 1, 0])
    );
    assert_eq!(
        q(vec![("agent", "Practitioner/7".into())]).await,
        v(&[2, 1, 0])
    );
    assert_eq!(
        q(vec![("agent", "app-2".into())]).await,
        v(&[8, 7, 6, 5, 4, 3])
    );
    assert_eq!(q(vec![("entity-type", "Consent".into())]).await, v(&[7]));
    assert_eq!(
        q(vec![(
            "entity-type",
            "http://hl7.org/fhir/resource-types|Observation".into()
        )])
        .await,
        v(&[5, 2])
    );
    assert_eq!(q(vec![("action", "R".into())]).await, v(&[8, 6, 2, 0]));
    assert_eq!(q(vec![("outcome", "4".into())]).await, v(&[8, 6]));
    assert_eq!(q(vec![("outcome", "8".into())]).await, v(&[7]));
    assert_eq!(
        q(vec![
            ("patient", "Patient/A".into()),
            ("action", "E".into())
        ])
        .await,
        v(&[7, 1])
    );
    // Paging.
    let b = search(&t, &ctx, &[("_count", "1")]).await.unwrap();
    assert_eq!(ids(&b), v(&[8]));
    assert_eq!(b["total"], 9);
    let next = b["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        next.starts_with("http://fhirgate.test/fhir/AuditEvent?") && next.contains("_offset=1"),
        "{next}"
    );
    let b = search(&t, &ctx, &[("_count", "1"), ("_offset", "3")])
        .await
        .unwrap();
    assert_eq!(ids(&b), v(&[5]));
    assert!(search(&t, &ctx, &[("date", "yesterday")]).await.is_err());
    // Read.
    let ev = read(&t, &ctx, &s[2]).await.unwrap();
    assert_eq!(ev["resourceType"], "AuditEvent");
    assert_eq!(&ev["id"], s[2].as_str());
    assert_eq!(
        read(&t, &ctx, "999").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        read(&t, &ctx, "x").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    // Writes are refused.
    let mut req = FhirRequest::new(Interaction::Create);
    req.resource_type = Some("AuditEvent".into());
    let e = fhirgate::audit::search_audit(&t.app, &ctx, &req)
        .await
        .unwrap_err();
    assert_eq!(e.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_patient_sees_only_their_own_events_and_others_see_nothing() {
    let t = TestApp::new().await;
    let s = seed(&t).await;
    let me = ctx_for(
        &t,
        "patient/AuditEvent.rs",
        Some("A"),
        Some("Patient/A"),
        Some("patient"),
    )
    .await;
    let b = search(&t, &me, &[]).await.unwrap();
    let mine: Vec<String> = [8, 7, 2, 1].iter().map(|i| s[*i].clone()).collect();
    assert_eq!(ids(&b), mine);
    let b = search(&t, &me, &[("patient", "Patient/B")]).await.unwrap();
    assert_eq!(b["total"], 0, "another patient's events are not found");
    assert!(read(&t, &me, &s[2]).await.is_ok());
    assert_eq!(
        read(&t, &me, &s[5]).await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    // patient/*.rs covers AuditEvent too.
    let wide = ctx_for(
        &t,
        "patient/*.rs",
        Some("A"),
        Some("Patient/A"),
        Some("patient"),
    )
    .await;
    assert_eq!(search(&t, &wide, &[]).await.unwrap()["total"], 4);
    // Everyone else: 403.
    for (scope, patient, user) in [
        ("patient/AuditEvent.rs", Some("A"), Some("Practitioner/7")),
        ("patient/AuditEvent.rs", Some("B"), Some("Patient/A")),
        ("user/*.rs", None, Some("Practitioner/7")),
        ("system/Patient.rs", None, None),
        ("patient/Observation.rs", Some("A"), Some("Patient/A")),
    ] {
        let ctx = ctx_for(&t, scope, patient, user, None).await;
        let e = search(&t, &ctx, &[]).await.unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN, "{scope} {user:?}");
        assert_eq!(
            read(&t, &ctx, &s[2]).await.unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn the_portal_access_history_says_who_when_what_why_and_how_it_went() {
    let t = TestApp::new().await;
    let s = seed(&t).await;
    let rows = history_for_patient(&t.app, "Patient/A", 10).await.unwrap();
    assert_eq!(rows.len(), 2, "RESTful accesses only: {rows:?}");
    assert_eq!(rows[0].seq.to_string(), s[8]);
    assert_eq!(rows[0].outcome, "4");
    assert_eq!(rows[0].client.as_deref(), Some("app-2"));
    assert_eq!(rows[0].who, None);
    assert_eq!(rows[0].when, "2024-01-01T00:00:00Z");
    let r = &rows[1];
    assert_eq!(r.who.as_deref(), Some("Practitioner/7"));
    assert_eq!(r.role.as_deref(), Some("clinician"));
    assert_eq!(r.client.as_deref(), Some("app-1"));
    assert_eq!(r.interaction.as_deref(), Some("read"));
    assert_eq!(r.resource_types, vec!["Observation"]);
    assert_eq!(r.purpose, vec!["TREAT"]);
    assert_eq!(r.outcome, "0");
    assert!(!r.break_glass);
    assert_eq!(history_for_patient(&t.app, "B", 1).await.unwrap().len(), 1);
    assert!(history_for_patient(&t.app, "Patient/Z", 10)
        .await
        .unwrap()
        .is_empty());
}
