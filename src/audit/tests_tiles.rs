//! Merkle tiles: checkpoints and proofs from `ledger_tiles` equal the
//! full-list computation, another replica on the same store agrees, a
//! checkpoint reads only the new leaves, and `verify` checks stored tiles.

use super::{entries, h, keys};
use crate::{
    audit::{merkle, Ledger, LedgerError, Problem},
    state::{tests::Schema, StateStore},
};

async fn tile_rows(store: &StateStore) -> i64 {
    let sql = "SELECT COUNT(*) FROM ledger_tiles";
    let (n,): (i64,) =
        crate::state::on_pool!(store, |p| sqlx::query_as(sql).fetch_one(p).await.unwrap());
    n
}

/// Checks an inclusion proof from `ledger` against the full-list root.
async fn check_inclusion(ledger: &Ledger, seq: u64, size: u64, leaves: &[merkle::Hash]) {
    let p = ledger.inclusion_proof(seq, size).await.unwrap();
    let root = merkle::root(&leaves[..size as usize]);
    assert_eq!(p.root_hash, hex::encode(root), "{seq}/{size}");
    assert_eq!(p.leaf_hash, hex::encode(leaves[seq as usize]));
    assert_eq!(
        hex::encode(merkle::leaf_hash(p.leaf_data.as_bytes())),
        p.leaf_hash
    );
    let path: Vec<_> = p.audit_path.iter().map(|s| h(s)).collect();
    assert_eq!(
        Some(path.clone()),
        merkle::inclusion_proof(seq as usize, &leaves[..size as usize])
    );
    assert!(merkle::verify_inclusion(
        seq,
        size,
        &h(&p.leaf_hash),
        &path,
        &root
    ));
    let json = super::super::proof::proof_json(&p, None);
    assert_eq!(json["audit_path"].as_array().unwrap().len(), path.len());
}

/// `a` and `b` are two replicas (separate pools) on one store.
async fn tiles_suite(a: &Ledger, b: &Ledger, store: &StateStore) {
    let keys = keys();
    let mut sizes = Vec::new();
    let batches = [97usize, 100, 59, 256, 1, 300, 255, 2, 180];
    for (i, n) in batches.iter().enumerate() {
        // The replicas take turns appending.
        let writer = if i % 2 == 0 { a } else { b };
        writer.append(&entries(*n, &format!("t{i}"))).await.unwrap();
        if i % 3 == 2 || i == batches.len() - 1 {
            let checkpointer = if i % 2 == 0 { b } else { a };
            let c = checkpointer.checkpoint(keys).await.unwrap();
            let size = c.tree_size as u64;
            let leaves = a.leaf_hashes(size).await.unwrap();
            assert_eq!(c.root_hash, hex::encode(merkle::root(&leaves)), "{size}");
            assert_eq!(tile_rows(store).await as u64, size / 256, "{size}");
            // The other replica agrees, from the stored tiles.
            let other = if i % 2 == 0 { a } else { b };
            assert_eq!(hex::encode(other.root_at(size).await.unwrap()), c.root_hash);
            sizes.push(size);
        }
    }
    let size = a.size().await.unwrap();
    assert_eq!(size, batches.iter().sum::<usize>() as u64);
    assert!(size > 1_000);
    let leaves = b.leaf_hashes(size).await.unwrap();
    assert!(matches!(
        a.root_at(size + 1).await,
        Err(LedgerError::Range(_))
    ));
    // Every earlier size from either replica, including those with no
    // checkpoint (tiles beyond a size must not leak into its root).
    for n in [0u64, 1, 255, 256, 257, 511, 512, 513, 1_000, size - 1, size] {
        assert_eq!(
            a.root_at(n).await.unwrap(),
            merkle::root(&leaves[..n as usize])
        );
        assert_eq!(
            b.root_at(n).await.unwrap(),
            merkle::root(&leaves[..n as usize])
        );
    }
    for seq in [0u64, 1, 255, 256, 300, 511, 512, 767, 1_000, size - 1] {
        check_inclusion(a, seq, size, &leaves).await;
        check_inclusion(b, seq, size, &leaves).await;
    }
    check_inclusion(a, 700, 701, &leaves).await;
    check_inclusion(b, 256, 512, &leaves).await;
    // Consistency between every pair of checkpoints, and odd sizes.
    let mut pairs: Vec<(u64, u64)> = sizes
        .iter()
        .flat_map(|&x| sizes.iter().map(move |&y| (x, y)))
        .filter(|(x, y)| x <= y)
        .collect();
    pairs.extend([(1, size), (256, size), (255, 257), (512, 513), (600, 1_000)]);
    for (first, second) in pairs {
        let cp = a.consistency_proof(first, second).await.unwrap();
        let path: Vec<_> = cp.consistency_path.iter().map(|s| h(s)).collect();
        assert_eq!(
            Some(path.clone()),
            merkle::consistency_proof(first as usize, &leaves[..second as usize])
        );
        assert_eq!(
            cp.first_hash,
            hex::encode(merkle::root(&leaves[..first as usize]))
        );
        assert!(merkle::verify_consistency(
            first,
            second,
            &h(&cp.first_hash),
            &h(&cp.second_hash),
            &path
        ));
    }
    let report = b.verify(keys).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.entries, size);
}

#[tokio::test]
async fn tiles_on_sqlite_give_the_full_tree_roots_and_proofs_to_both_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(None, dir.path()).await.unwrap();
    let a = Ledger::new(store.clone());
    let b = Ledger::new(StateStore::open(None, dir.path()).await.unwrap());
    tiles_suite(&a, &b, &store).await;
}

/// Runs with `FHIRGATE_TEST_DATABASE_URL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_on_postgres_give_the_full_tree_roots_and_proofs_to_both_replicas() {
    let Ok(url) = std::env::var("FHIRGATE_TEST_DATABASE_URL") else {
        eprintln!("skipped: FHIRGATE_TEST_DATABASE_URL not set");
        return;
    };
    let schema = Schema::create(&url, "tiles").await;
    let store = schema.open().await;
    let a = Ledger::new(store.clone());
    let b = Ledger::new(schema.open().await);
    tiles_suite(&a, &b, &store).await;
    // Two replicas building the same tiles at once: the same rows, once.
    let c = Ledger::new(schema.open().await);
    let d = Ledger::new(schema.open().await);
    c.append(&entries(2_000, "race")).await.unwrap();
    let size = c.size().await.unwrap();
    let (rc, rd) = tokio::join!(c.root_at(size), d.root_at(size));
    let root = merkle::root(&c.leaf_hashes(size).await.unwrap());
    assert_eq!((rc.unwrap(), rd.unwrap()), (root, root));
    assert_eq!(tile_rows(&store).await as u64, size / 256);
    schema.drop_schema().await;
}

#[tokio::test]
async fn a_checkpoint_reads_only_the_new_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(None, dir.path()).await.unwrap();
    let ledger = Ledger::new(store.clone());
    for i in 0..5 {
        ledger
            .append(&entries(1_000, &format!("big{i}")))
            .await
            .unwrap();
    }
    // The first checkpoint builds the tiles: every leaf once.
    let before = ledger.leaf_rows_read();
    ledger.checkpoint(keys()).await.unwrap();
    assert_eq!(ledger.leaf_rows_read() - before, 5_000);
    assert_eq!(tile_rows(&store).await, 5_000 / 256);
    for round in 0..5 {
        ledger
            .append(&entries(40, &format!("small{round}")))
            .await
            .unwrap();
        let before = ledger.leaf_rows_read();
        let c = ledger.checkpoint(keys()).await.unwrap();
        let read = ledger.leaf_rows_read() - before;
        // New complete tiles plus the trailing partial one, not 5,000+.
        assert!(read <= 40 + 2 * 256, "round {round}: {read} leaf rows read");
        let size = c.tree_size as u64;
        let leaves = ledger.leaf_hashes(size).await.unwrap();
        assert_eq!(c.root_hash, hex::encode(merkle::root(&leaves)));
    }
    // A new replica (cold cache) reads the stored tiles, not the leaves.
    let other = Ledger::new(store.clone());
    let size = other.size().await.unwrap();
    other.root_at(size).await.unwrap();
    assert!(other.leaf_rows_read() < 256, "{}", other.leaf_rows_read());
    // A proof reads at most two tiles of leaves.
    let before = other.leaf_rows_read();
    other.inclusion_proof(1_234, size).await.unwrap();
    assert!(other.leaf_rows_read() - before <= 2 * 256);
    let before = other.leaf_rows_read();
    other.consistency_proof(3_000, size).await.unwrap();
    assert!(other.leaf_rows_read() - before <= 2 * 256);
}

/// Runs raw SQL past the tiles' append-only triggers.
async fn tamper_tiles(store: &StateStore, sql: &str) {
    let StateStore::Sqlite(p) = store else {
        unreachable!()
    };
    for t in ["ledger_tiles_no_update", "ledger_tiles_no_delete"] {
        sqlx::query(&format!("DROP TRIGGER IF EXISTS {t}"))
            .execute(p)
            .await
            .unwrap();
    }
    sqlx::query(sql).execute(p).await.unwrap();
}

#[tokio::test]
async fn verify_catches_a_rewritten_tile_and_a_bad_tile_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(None, dir.path()).await.unwrap();
    let ledger = Ledger::new(store.clone());
    ledger.append(&entries(800, "v")).await.unwrap();
    ledger.checkpoint(keys()).await.unwrap();
    assert_eq!(tile_rows(&store).await, 3);
    assert!(ledger.verify(keys()).await.unwrap().ok());
    let StateStore::Sqlite(p) = &store else {
        unreachable!()
    };
    // The triggers refuse changes to a tile.
    assert!(
        sqlx::query("UPDATE ledger_tiles SET hash = 'x' WHERE idx = 0")
            .execute(p)
            .await
            .is_err()
    );
    assert!(sqlx::query("DELETE FROM ledger_tiles")
        .execute(p)
        .await
        .is_err());

    // Another tile's hash in tile 1: verify names it.
    tamper_tiles(
        &store,
        "UPDATE ledger_tiles SET hash = (SELECT hash FROM ledger_tiles WHERE idx = 0) WHERE idx = 1",
    )
    .await;
    let p = ledger.verify(keys()).await.unwrap().problem.unwrap();
    assert!(
        matches!(&p, Problem::Entry { seq: 256, reason } if reason.contains("tile 1")),
        "{p}"
    );
    assert!(p.to_string().contains("seqs 256..=511"), "{p}");

    // A tile that is not a hash: a fresh replica's root is `Corrupt`.
    tamper_tiles(&store, "UPDATE ledger_tiles SET hash = 'zz' WHERE idx = 2").await;
    let fresh = Ledger::new(store.clone());
    assert!(matches!(
        fresh.root_at(800).await,
        Err(LedgerError::Corrupt(_))
    ));
    // A tile beyond the entries.
    tamper_tiles(&store, "DELETE FROM ledger_tiles WHERE idx = 2").await;
    tamper_tiles(
        &store,
        "INSERT INTO ledger_tiles (idx, hash) VALUES (9, 'aa')",
    )
    .await;
    let p = ledger.verify(keys()).await.unwrap().problem.unwrap();
    assert!(matches!(&p, Problem::Entry { seq: 256, .. }), "{p}");
    tamper_tiles(&store, "DELETE FROM ledger_tiles WHERE idx = 1").await;
    let p = ledger.verify(keys()).await.unwrap().problem.unwrap();
    assert!(
        matches!(&p, Problem::Entry { seq: 2_304, reason } if reason.contains("covers more")),
        "{p}"
    );
    // With tiles 1 and 2 gone, a fresh replica rebuilds them from the leaves.
    tamper_tiles(&store, "DELETE FROM ledger_tiles WHERE idx = 9").await;
    let fresh = Ledger::new(store.clone());
    let leaves = fresh.leaf_hashes(800).await.unwrap();
    assert_eq!(fresh.root_at(800).await.unwrap(), merkle::root(&leaves));
    assert_eq!(tile_rows(&store).await, 3);
    assert!(ledger.verify(keys()).await.unwrap().ok());
}
