//! Two replicas on one data dir (two pools on one `fhir.db`, as two
//! processes on a shared volume), and undoing a request's writes.

use serde_json::{json, Value};

use super::{
    crud::{create_in, update_in, CreateOutcome},
    journal::{Journal, Restored},
    EmbeddedStore,
};

fn patient(id: &str, family: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": family}]})
}

async fn update(store: &EmbeddedStore, id: &str, family: &str) -> crate::error::FhirResult<()> {
    let mut tx = store.write().await?;
    update_in(&mut tx, "Patient", id, Some(&patient(id, family)), None).await?;
    tx.commit().await
}

async fn count_where(store: &EmbeddedStore, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

/// Writers of two replicas interleave on one file: each write transaction
/// reads the current version before it writes, and a deferred `BEGIN`
/// failed with `SQLITE_BUSY` (a stale read snapshot gets no busy wait)
/// whenever the other replica had written in between.
#[tokio::test]
async fn writers_of_two_replicas_on_one_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fhir.db");
    let a = EmbeddedStore::open(&path).await.unwrap();
    let b = EmbeddedStore::open(&path).await.unwrap();
    update(&a, "p", "v0").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            update(&s, "p", &format!("v{i}")).await
        }));
    }
    let mut failed = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failed.push(e.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        failed.first()
    );
    let n = count_where(&a, "SELECT version FROM resource WHERE id = ?", "p").await;
    assert_eq!(n, 41);
}

/// `undo` removes exactly the versions the journal committed: an update
/// goes back to the previous version (body, history and search index), a
/// create is gone; a rolled-back transaction's writes are not undone (they
/// never were), and a version written over since is left alone.
#[tokio::test]
async fn undo_removes_exactly_the_committed_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("fhir.db"))
        .await
        .unwrap();
    update(&store, "p", "Before").await.unwrap();
    let journal = Journal::default();
    let created = journal
        .scope(async {
            update(&store, "p", "After").await.unwrap();
            // rolled back: never committed, not journaled
            {
                let mut tx = store.write().await.unwrap();
                update_in(&mut tx, "Patient", "p", Some(&patient("p", "Rolled")), None)
                    .await
                    .unwrap();
            }
            let mut tx = store.write().await.unwrap();
            let body = json!({"resourceType": "Patient", "name": [{"family": "New"}]});
            let CreateOutcome::Created(w) = create_in(&mut tx, "Patient", Some(&body), None, "b")
                .await
                .unwrap()
            else {
                unreachable!("no If-None-Exist")
            };
            tx.commit().await.unwrap();
            w.id
        })
        .await;
    let written: Vec<(String, i64)> = journal
        .committed()
        .into_iter()
        .map(|v| (v.id, v.version))
        .collect();
    assert_eq!(written, vec![("p".to_owned(), 2), (created.clone(), 1)]);
    let undone = store.undo(&journal).await.unwrap();
    assert_eq!(undone.len(), 2);
    assert_eq!(undone[0].version.id, created, "newest first");
    assert_eq!(undone[0].now, Restored::Gone);
    assert!(matches!(&undone[1].now, Restored::Live(b) if b["name"][0]["family"] == "Before"));
    let body: String = sqlx::query_scalar("SELECT body FROM resource WHERE id = 'p'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert!(
        body.contains("Before") && body.contains("\"versionId\":\"1\""),
        "{body}"
    );
    let versions = "SELECT COUNT(*) FROM resource_version WHERE id = ?";
    assert_eq!(count_where(&store, versions, "p").await, 1);
    assert_eq!(count_where(&store, versions, &created).await, 0);
    assert_eq!(
        count_where(
            &store,
            "SELECT COUNT(*) FROM resource WHERE id = ?",
            &created
        )
        .await,
        0
    );
    let indexed = |family: &'static str| {
        let store = store.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM idx_string WHERE param = 'family' AND exact = ?",
            )
            .bind(family)
            .fetch_one(&store.pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(indexed("Before").await, 1);
    assert_eq!(indexed("After").await, 0);
    assert_eq!(indexed("New").await, 0);
    // Written over since: left alone.
    let journal = Journal::default();
    journal
        .scope(async { update(&store, "p", "Mine").await.unwrap() })
        .await;
    update(&store, "p", "Theirs").await.unwrap();
    assert!(store.undo(&journal).await.unwrap().is_empty());
    assert_eq!(count_where(&store, versions, "p").await, 3);
}
