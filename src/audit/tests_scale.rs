//! Scale-out and throughput: two replicas on one PostgreSQL, and the
//! (ignored) durable-append benchmark.

use super::{entries, keys};
use crate::{
    audit::{Ledger, NewEntry},
    state::{tests::Schema, StateStore},
};

async fn bench(
    name: &str,
    fresh: impl std::future::Future<Output = Ledger>,
    batch: usize,
    batches: usize,
) {
    let ledger = fresh.await;
    let work: Vec<Vec<NewEntry>> = (0..batches)
        .map(|b| entries(batch, &b.to_string()))
        .collect();
    let start = std::time::Instant::now();
    for w in &work {
        ledger.append(w).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name} batch {batch:>3}: {:>8.0} durable appends/s ({:.0} commits/s)",
        (batch * batches) as f64 / secs,
        batches as f64 / secs
    );
}

/// Durable appends per second, batches of 1, 64 and 512, on SQLite (and on
/// PostgreSQL with `FHIRGATE_TEST_DATABASE_URL`); one appender, so the
/// batch size is the group-commit size:
/// `cargo test -p fhirgate --lib audit::tests::bench -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_appends() {
    for (batch, batches) in [(1usize, 500usize), (64, 100), (512, 40)] {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = async { Ledger::new(StateStore::open(None, dir.path()).await.unwrap()) };
        bench("sqlite  ", sqlite, batch, batches).await;
        if let Ok(url) = std::env::var("FHIRGATE_TEST_DATABASE_URL") {
            let schema = Schema::create(&url, "b").await;
            let pg = async { Ledger::new(schema.open().await) };
            bench("postgres", pg, batch, batches).await;
            schema.drop_schema().await;
        }
    }
}

/// Two "replicas" (separate pools) on one PostgreSQL append concurrently:
/// one gap-free chain that verifies. Runs with `FHIRGATE_TEST_DATABASE_URL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_share_one_gap_free_chain() {
    let Ok(url) = std::env::var("FHIRGATE_TEST_DATABASE_URL") else {
        eprintln!("skipped: FHIRGATE_TEST_DATABASE_URL not set");
        return;
    };
    let schema = Schema::create(&url, "l").await;
    let a = Ledger::new(schema.open().await);
    let b = Ledger::new(schema.open().await);
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let ledger = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                ledger
                    .append(&entries(1 + (t + i) % 5, &format!("{t}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected: u64 = (0..8u64)
        .flat_map(|t| (0..20u64).map(move |i| 1 + (t + i) % 5))
        .sum();
    a.checkpoint(keys()).await.unwrap();
    let report = b.verify(keys()).await.unwrap();
    assert!(report.ok() && report.entries == expected, "{report:?}");
    schema.drop_schema().await;
}
