//! The ledger's disk filling up (issue 10): FHIR routes fail closed with 503
//! and release no data, `/healthz` still answers, and once space is back
//! requests succeed again and the ledger verifies with no gap and no
//! half-written entry.
//!
//! The full disk is simulated without root with SQLite's `max_page_count`
//! on every connection of the state store's pool (the ledger lives in
//! `state.db`): the file may not grow past its current size, so the next
//! append that needs a page fails with `SQLITE_FULL`, as on a full volume.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{match_ids, TestApp};
use std::sync::atomic::Ordering;

use fhirgate::{
    audit::check::verify_payloads,
    state::{StateStore, SQLITE_MAX_PAGE_COUNT},
};
use serde_json::json;
use sqlx::SqlitePool;

/// A family name that must not appear in any answer while the disk is full.
const SECRET: &str = "Fullerton-Diskfull";

fn sqlite(t: &TestApp) -> &SqlitePool {
    match &t.app.state {
        StateStore::Sqlite(p) => p,
        StateStore::Postgres(_) => panic!("this suite runs on SQLite"),
    }
}

/// Sets `max_page_count` on every connection of the pool (the pragma is per
/// connection: all of them are held at once, so each is visited) and on
/// every connection opened later (the state store's test hook; the ledger
/// replaces a connection after a failed append). `None` caps the file at
/// its current size; `Some(0)` lifts the cap.
async fn cap_pages(pool: &SqlitePool, pages: Option<u64>) {
    let max = pool.options().get_max_connections() as usize;
    let mut held = Vec::with_capacity(max);
    for _ in 0..max {
        held.push(pool.acquire().await.unwrap());
    }
    let n = match pages {
        Some(n) => n,
        None => {
            let n: i64 = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&mut *held[0])
                .await
                .unwrap();
            n as u64
        }
    };
    SQLITE_MAX_PAGE_COUNT.store(n, Ordering::Relaxed);
    let pragma = if n == 0 { 4_294_967_294 } else { n };
    for c in &mut held {
        let set: i64 = sqlx::query_scalar(&format!("PRAGMA max_page_count = {pragma}"))
            .fetch_one(&mut **c)
            .await
            .unwrap();
        assert!(
            set as u64 >= pragma.min(1_073_741_823),
            "max_page_count {set}"
        );
    }
}

/// Uses up the free pages the capped file still has (as other data filling
/// the volume would), so the ledger cannot grow at all.
async fn fill(pool: &SqlitePool) -> usize {
    let mut rows = 0;
    loop {
        match sqlx::query("INSERT INTO filler (b) VALUES (zeroblob(2000))")
            .execute(pool)
            .await
        {
            Ok(_) => rows += 1,
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("full"),
                    "the filler stops on a full database, not: {text}"
                );
                return rows;
            }
        }
        assert!(rows < 100_000, "the page cap does not hold");
    }
}

#[tokio::test]
async fn a_full_ledger_disk_fails_fhir_routes_closed_and_recovers_without_a_gap() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("fhirgate=warn")
        .with_test_writer()
        .try_init();
    let t = TestApp::single_replica(
        "simulates a full disk with SQLite's max_page_count on state.db",
        "",
    )
    .await;
    let pool = sqlite(&t).clone();
    let id = t
        .create(json!({"resourceType": "Patient", "name": [{"family": SECRET}]}))
        .await;
    let r = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains(SECRET));
    sqlx::query("CREATE TABLE filler (b BLOB)")
        .execute(&pool)
        .await
        .unwrap();

    // The disk fills up.
    cap_pages(&pool, None).await;
    let filler_rows = fill(&pool).await;
    let ledger = t.app.audit.ledger();
    // Appends may still fit into free space left inside existing pages; read
    // until the first one does not.
    let mut ok_before_full = 0;
    loop {
        let r = t.get(&format!("/fhir/Patient/{id}")).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.header("x-ledger-seq").is_some());
        ok_before_full += 1;
        assert!(ok_before_full < 2_000, "the ledger never filled up");
    }
    let size_when_full = ledger.size().await.unwrap();

    // Every FHIR interaction now fails closed: 503 OperationOutcome, no
    // receipt, nothing of the resource in the body.
    let search = format!("/fhir/Patient?family={SECRET}");
    let everything = format!("/fhir/Patient/{id}/$everything");
    let read = format!("/fhir/Patient/{id}");
    let history = format!("/fhir/Patient/{id}/_history");
    for path in [
        read.as_str(),
        read.as_str(),
        search.as_str(),
        history.as_str(),
        everything.as_str(),
        read.as_str(),
    ] {
        let r = t.get(path).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            r.text()
        );
        assert_eq!(r.json["resourceType"], "OperationOutcome", "{path}");
        assert!(
            !r.text().contains(SECRET),
            "{path} leaked data: {}",
            r.text()
        );
        assert!(r.header("x-ledger-seq").is_none(), "{path}");
    }
    let r = t
        .post(
            "/fhir/Patient",
            &json!({"resourceType": "Patient", "name": [{"family": "WrittenWhileFull"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert!(r.header("location").is_none());
    // The liveness probe is not audited and still answers.
    let r = t.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    // The CapabilityStatement is audited like every /fhir route: it fails
    // closed too, but as a 503, never a hang or a 500.
    let r = t.get("/fhir/metadata").await;
    assert!(
        r.status == StatusCode::OK || r.status == StatusCode::SERVICE_UNAVAILABLE,
        "metadata: {}",
        r.status
    );
    let metadata_while_full = r.status;
    // Nothing was appended, not even half an entry.
    assert_eq!(ledger.size().await.unwrap(), size_when_full);

    // Space is back.
    sqlx::query("DROP TABLE filler")
        .execute(&pool)
        .await
        .unwrap();
    cap_pages(&pool, Some(0)).await;
    let r = t.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains(SECRET));
    // The receipt names the request's last entry; its first one is the
    // seq the ledger stood at when it filled up: no gap.
    let seq: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    let rid = r.header("x-request-id").unwrap();
    let first = ledger.entries(size_when_full, 1).await.unwrap();
    assert_eq!(first[0].seq as u64, size_when_full);
    assert_eq!(first[0].request_id.as_deref(), Some(rid.as_str()));
    assert!(seq >= size_when_full);
    let mut last = seq;
    for _ in 0..20 {
        let r = t.get(&read).await;
        assert_eq!(r.status, StatusCode::OK, "after recovery: {}", r.text());
        let s: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
        assert!(s > last);
        last = s;
    }
    let size = ledger.size().await.unwrap();
    assert_eq!(size, last + 1);
    let entries = ledger.entries(0, size + 10).await.unwrap();
    assert_eq!(entries.len() as u64, size, "one row per seq, none extra");
    // The create refused with 503 left nothing behind: the embedded store
    // (another file, written before the audit entry) undid it, history
    // included, so a retrying client does not make a duplicate.
    let r = t.get("/fhir/Patient?family=WrittenWhileFull").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        match_ids(&r.json).is_empty(),
        "a create refused with 503 was stored: {}",
        r.text()
    );
    let store = t.app.upstream.embedded().unwrap();
    assert_eq!(store.count(Some("Patient")).await.unwrap(), 1);
    let r = t.get("/fhir/Patient/_history").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !r.text().contains("WrittenWhileFull"),
        "the refused version is in the history: {}",
        r.text()
    );
    // The client retries now that space is back: exactly one.
    let r = t
        .post(
            "/fhir/Patient",
            &json!({"resourceType": "Patient", "name": [{"family": "WrittenWhileFull"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = t.get("/fhir/Patient?family=WrittenWhileFull").await;
    assert_eq!(match_ids(&r.json).len(), 1, "{}", r.text());
    let size = ledger.size().await.unwrap();
    let report = ledger.verify(&t.app.keys).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let payloads = verify_payloads(&t.app.audit).await.unwrap();
    assert!(payloads.ok(), "{payloads:?}");
    println!(
        "disk full after {filler_rows} filler rows and {ok_before_full} more reads; \
         metadata while full: {metadata_while_full}; \
         {size} entries verify"
    );
}
