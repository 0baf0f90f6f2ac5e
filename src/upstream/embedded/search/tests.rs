//! Store-level search tests that need no HTTP: conditional matching inside a
//! write transaction, the query plan of the benchmark query, and (ignored by
//! default) a timing run on a large synthetic population:
//! `FHIRGATE_BENCH_PATIENTS=10000 cargo test -p fhirgate --lib search_scale -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use serde_json::{json, Map, Value};
use sqlx::Row;

use super::{conditional_matches, search, EmbeddedStore};
use crate::{
    fhir::{FhirRequest, Interaction},
    upstream::{embedded::crud::write_version, RequestContext},
};

fn ctx() -> RequestContext {
    RequestContext {
        base: "http://h/fhir".into(),
        request_id: "t".into(),
        default_page_size: 50,
        max_page_size: 1000,
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Writes `patients` patients with `per` observations each (half laboratory).
async fn seed(store: &EmbeddedStore, patients: usize, per: usize) {
    let mut tx = store.pool.begin().await.unwrap();
    for p in 0..patients {
        let pid = format!("p{p}");
        let pat = json!({"resourceType": "Patient", "name": [{"family": format!("Fam{p}")}], "gender": "female", "birthDate": "1970-01-01"});
        write_version(&mut tx, "Patient", &pid, Some(obj(pat)), None, "POST")
            .await
            .unwrap();
        for o in 0..per {
            let cat = if o % 2 == 0 {
                "laboratory"
            } else {
                "vital-signs"
            };
            let ob = json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": cat}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": format!("c{}", o % 7)}]},
                "subject": {"reference": format!("Patient/{pid}")},
                "effectiveDateTime": format!("2020-01-{:02}", o % 28 + 1),
                "valueQuantity": {"value": o, "unit": "mg"}});
            write_version(
                &mut tx,
                "Observation",
                &format!("o{p}-{o}"),
                Some(obj(ob)),
                None,
                "POST",
            )
            .await
            .unwrap();
        }
        if p % 200 == 199 {
            tx.commit().await.unwrap();
            tx = store.pool.begin().await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    store.optimize().await.unwrap();
}

fn search_req(rtype: &str, params: &[(&str, &str)]) -> FhirRequest {
    let mut r = FhirRequest::new(Interaction::SearchType);
    r.resource_type = Some(rtype.into());
    r.params = params
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    r
}

#[tokio::test]
async fn conditional_matches_sees_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).await.unwrap();
    seed(&store, 3, 2).await;
    let mut tx = store.pool.begin().await.unwrap();
    let q = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    assert_eq!(
        conditional_matches(&mut tx, "Patient", &q("family", "fam1"), "http://h/fhir")
            .await
            .unwrap(),
        vec!["p1"]
    );
    let pat = json!({"resourceType": "Patient", "name": [{"family": "Fam1"}]});
    write_version(&mut tx, "Patient", "new", Some(obj(pat)), None, "POST")
        .await
        .unwrap();
    let got = conditional_matches(
        &mut tx,
        "Patient",
        &q("family:exact", "Fam1"),
        "http://h/fhir",
    )
    .await
    .unwrap();
    assert_eq!(got, vec!["p1", "new"]);
    assert!(
        conditional_matches(&mut tx, "Patient", &q("bogus", "1"), "http://h/fhir")
            .await
            .is_err()
    );
    let got = conditional_matches(&mut tx, "Observation", &q("patient", "p2"), "http://h/fhir")
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
}

#[tokio::test]
async fn benchmark_query_uses_the_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).await.unwrap();
    seed(&store, 20, 10).await;
    let req = search_req(
        "Observation",
        &[("patient", "p3"), ("category", "laboratory")],
    );
    let r = search(&store, &req, &ctx()).await.unwrap();
    let body = r.body.unwrap();
    assert_eq!(body["total"], 5);
    let q = crate::search::query::parse("Observation", &req.params, "http://h/fhir").unwrap();
    let p = super::plan(
        &super::Target {
            rtype: Some("Observation"),
            compartment: None,
        },
        &q,
    );
    let sql = format!(
        "EXPLAIN QUERY PLAN SELECT r.res FROM resource r WHERE {} ORDER BY {} LIMIT 51",
        p.where_sql, p.order_sql
    );
    let mut binds = p.binds.clone();
    binds.extend(p.order_binds.iter().cloned());
    let plan: Vec<String> = super::bind_all(&sql, &binds)
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(3))
        .collect();
    let text = plan.join("\n");
    assert!(
        text.contains("USING INTEGER PRIMARY KEY") && text.contains("target_id=?"),
        "{text}"
    );
    assert!(text.contains("idx_token_res"), "{text}");
    assert!(!text.contains("SCAN r"), "{text}");
}

#[tokio::test]
#[ignore = "timing run; see the module docs"]
async fn search_scale() {
    let patients: usize = std::env::var("FHIRGATE_BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).await.unwrap();
    let t0 = Instant::now();
    seed(&store, patients, 100).await;
    println!(
        "seeded {patients} patients x 100 observations in {:?}",
        t0.elapsed()
    );
    for params in [
        vec![("patient", "p7"), ("category", "laboratory")],
        vec![
            ("patient", "p7"),
            ("category", "laboratory"),
            ("_sort", "-date"),
        ],
        vec![("code", "c3"), ("date", "ge2020-01-20"), ("_count", "10")],
        vec![("patient.family", "fam7"), ("_count", "10")],
    ] {
        let req = search_req("Observation", &params);
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            search(&store, &req, &ctx()).await.unwrap();
        }
        println!("{params:?}: {:?} per search", t.elapsed() / n);
    }
}
