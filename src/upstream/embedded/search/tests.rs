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

/// Every id of a searchset page's matches.
fn page_ids(body: &Value) -> Vec<String> {
    body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// The query of a page's `next` link, as request parameters.
fn next_params(body: &Value) -> Option<Vec<(String, String)>> {
    let url = body["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()?;
    let q = url.split_once('?')?.1;
    Some(
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

async fn write(store: &EmbeddedStore, rtype: &str, id: &str, body: Option<Value>) {
    let mut tx = store.pool.begin().await.unwrap();
    let prev = crate::upstream::embedded::crud::current(&mut tx, rtype, id)
        .await
        .unwrap();
    let method = if body.is_none() { "DELETE" } else { "PUT" };
    write_version(&mut tx, rtype, id, body.map(obj), prev.as_ref(), method)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn observation(pid: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "k"}]},
        "subject": {"reference": format!("Patient/{pid}")}})
}

/// Keyset paging (`_cursor` in `next` links): following the links returns
/// every row exactly once, also when rows are deleted behind the cursor and
/// inserted between pages (an offset would skip a row after the deletion).
#[tokio::test]
async fn keyset_paging_returns_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).await.unwrap();
    seed(&store, 4, 10).await;
    let mut req = search_req("Observation", &[("_count", "7")]);
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let body = search(&store, &req, &ctx()).await.unwrap().body.unwrap();
        let ids = page_ids(&body);
        pages += 1;
        if pages == 1 {
            assert_eq!(body["total"], 40);
            // between pages: a row of the first page goes, two rows come
            write(&store, "Observation", &ids[0], None).await;
            write(&store, "Observation", "new-1", Some(observation("p1"))).await;
            write(&store, "Observation", "new-2", Some(observation("p2"))).await;
        }
        if pages == 3 {
            write(&store, "Observation", "new-3", Some(observation("p3"))).await;
        }
        seen.extend(ids);
        let Some(next) = next_params(&body) else {
            break;
        };
        assert!(next.iter().any(|(k, _)| k == "_cursor"), "{next:?}");
        assert!(next.iter().any(|(k, _)| k == "_offset"), "{next:?}");
        req.params = next;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a row came twice: {seen:?}");
    for p in 0..4 {
        for o in 0..10 {
            let id = format!("o{p}-{o}");
            assert!(seen.contains(&id), "{id} was skipped");
        }
    }
    for id in ["new-1", "new-2", "new-3"] {
        assert!(
            seen.contains(&id.to_owned()),
            "{id} inserted ahead was missed"
        );
    }
    assert_eq!(seen.len(), 43);
    // an explicit `_sort` keeps offset paging (no cursor)
    let body = search(
        &store,
        &search_req("Observation", &[("_count", "7"), ("_sort", "_id")]),
        &ctx(),
    )
    .await
    .unwrap()
    .body
    .unwrap();
    let next = next_params(&body).unwrap();
    assert!(!next.iter().any(|(k, _)| k == "_cursor"), "{next:?}");
}

/// The export scan pages by id: every current row of the type once, rows
/// inserted ahead of the cursor included, deleted ones left out; the patient
/// and query restrictions are those of the search.
#[tokio::test]
async fn export_scan_pages_by_keyset() {
    use super::export::{ExportScan, ScanQuery};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).await.unwrap();
    seed(&store, 5, 6).await;
    let all = ExportScan::new("Observation", &[], None, "http://h/fhir").unwrap();
    let mut after = String::new();
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let rows = all.page(&store, &after, 4).await.unwrap();
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        pages += 1;
        if pages == 2 {
            write(&store, "Observation", "o0-0", None).await; // behind: already read
            write(&store, "Observation", "o4-5", None).await; // ahead: never read
            write(&store, "Observation", "zz", Some(observation("p1"))).await;
        }
        for r in rows {
            let v: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["id"], r.id.as_str());
            seen.push(r.id);
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "{seen:?}");
    assert!(seen.contains(&"o0-0".to_owned()) && seen.contains(&"zz".to_owned()));
    assert!(!seen.contains(&"o4-5".to_owned()));
    assert_eq!(seen.len(), 30);
    // two queries OR'd, within two patients' compartments
    let q = |k: &str, v: &str| ScanQuery {
        params: vec![(k.to_owned(), v.to_owned())],
        compartment: None,
    };
    let patients = vec!["p1".to_owned(), "p2".to_owned()];
    let some = ExportScan::new(
        "Observation",
        &[
            q("code", "http://loinc.org|c1"),
            q("code", "http://loinc.org|c2"),
        ],
        Some(&patients),
        "http://h/fhir",
    )
    .unwrap();
    let rows = some.page(&store, "", 100).await.unwrap();
    let mut ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, vec!["o1-1", "o1-2", "o2-1", "o2-2"]);
    let pats = ExportScan::new("Patient", &[], Some(&patients), "http://h/fhir").unwrap();
    let rows = pats.page(&store, "", 100).await.unwrap();
    assert_eq!(rows.len(), 2);
    let none = ExportScan::new("Observation", &[], Some(&[]), "http://h/fhir").unwrap();
    assert!(none.page(&store, "", 100).await.unwrap().is_empty());
}
