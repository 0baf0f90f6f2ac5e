//! Ledger tests: the generic suite (run on SQLite and PostgreSQL from
//! `state::tests::suite`), tampering with every stored column (SQLite),
//! concurrent appenders, and an ignored append benchmark.

use std::sync::OnceLock;

use serde_json::json;
use smart_launch::keys::KeySet;

use super::{ledger::GENESIS, merkle, Ledger, NewEntry, Problem};
use crate::state::StateStore;

/// One key set per test binary (RSA keygen is slow in debug builds).
pub(crate) fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        KeySet::load_or_create(&dir.join("keys")).unwrap()
    })
}

pub(crate) fn entries(n: usize, tag: &str) -> Vec<NewEntry> {
    (0..n)
        .map(|i| NewEntry {
            request_id: Some(format!("req-{tag}-{i}")),
            entry: json!({"type": "rest", "action": "R", "patient": format!("pseud-{tag}-{i}"), "n": i, "outcome": "0"}),
        })
        .collect()
}

fn h(s: &str) -> merkle::Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// The generic suite every backend must pass (on a ledger that is empty).
pub(crate) async fn suite(store: &StateStore) {
    let ledger = Ledger::new(store.clone());
    let keys = keys();
    assert_eq!(ledger.size().await.unwrap(), 0);
    let empty = ledger.verify(keys).await.unwrap();
    assert!(empty.ok() && empty.entries == 0, "{empty:?}");
    assert_eq!(empty.root_hash, hex::encode(merkle::root(&[])));
    assert_eq!(ledger.append(&[]).await.unwrap(), Vec::<u64>::new());

    assert_eq!(
        ledger.append(&entries(5, "a")).await.unwrap(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(ledger.append(&entries(1, "b")).await.unwrap(), vec![5]);
    let c1 = ledger.checkpoint(keys).await.unwrap();
    assert_eq!(c1.tree_size, 6);
    assert_eq!(
        ledger.checkpoint(keys).await.unwrap(),
        c1,
        "no new entries, same checkpoint"
    );
    for seq in 0..6 {
        let p = ledger.inclusion_proof(seq, 6).await.unwrap();
        assert_eq!(p.root_hash, c1.root_hash);
        assert_eq!(
            hex::encode(merkle::leaf_hash(p.leaf_data.as_bytes())),
            p.leaf_hash
        );
        let path: Vec<_> = p.audit_path.iter().map(|s| h(s)).collect();
        assert!(merkle::verify_inclusion(
            seq,
            6,
            &h(&p.leaf_hash),
            &path,
            &h(&c1.root_hash)
        ));
    }
    assert!(ledger.inclusion_proof(6, 6).await.is_err());
    assert!(ledger.inclusion_proof(0, 7).await.is_err());

    // Concurrent appenders: no fork, no gap, every seq handed out once.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for b in 0..10 {
                seqs.extend(
                    ledger
                        .append(&entries(3, &format!("t{t}b{b}")))
                        .await
                        .unwrap(),
                );
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (6..126).collect::<Vec<u64>>());
    assert_eq!(ledger.size().await.unwrap(), 126);

    let c2 = ledger.checkpoint(keys).await.unwrap();
    assert_eq!(c2.tree_size, 126);
    assert_eq!(ledger.latest_checkpoint().await.unwrap(), Some(c2.clone()));
    let cp = ledger.consistency_proof(6, 126).await.unwrap();
    assert_eq!(
        (cp.first_hash.as_str(), cp.second_hash.as_str()),
        (c1.root_hash.as_str(), c2.root_hash.as_str())
    );
    let path: Vec<_> = cp.consistency_path.iter().map(|s| h(s)).collect();
    assert!(merkle::verify_consistency(
        6,
        126,
        &h(&cp.first_hash),
        &h(&cp.second_hash),
        &path
    ));
    assert!(ledger.consistency_proof(0, 5).await.is_err());
    assert!(ledger.consistency_proof(7, 6).await.is_err());
    assert!(ledger.consistency_proof(6, 127).await.is_err());

    let report = ledger.verify(keys).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.entries, report.checkpoints), (126, 2));
    assert_eq!(report.root_hash, c2.root_hash);
    assert_ne!(GENESIS, h(&c2.root_hash));
}

async fn sqlite_ledger() -> (tempfile::TempDir, StateStore, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(None, dir.path()).await.unwrap();
    let ledger = Ledger::new(store.clone());
    (dir, store, ledger)
}

/// Runs raw SQL past the append-only triggers (an attacker with file access).
async fn tamper(store: &StateStore, sql: &str) {
    let StateStore::Sqlite(p) = store else {
        unreachable!()
    };
    for t in [
        "ledger_entries_no_update",
        "ledger_checkpoints_no_update",
        "ledger_entries_no_delete",
    ] {
        sqlx::query(&format!("DROP TRIGGER IF EXISTS {t}"))
            .execute(p)
            .await
            .unwrap();
    }
    sqlx::query(sql).execute(p).await.unwrap();
}

/// A 20-entry ledger with checkpoints at 8 and 20.
async fn populated() -> (tempfile::TempDir, StateStore, Ledger) {
    let (dir, store, ledger) = sqlite_ledger().await;
    ledger.append(&entries(8, "x")).await.unwrap();
    ledger.checkpoint(keys()).await.unwrap();
    ledger.append(&entries(12, "y")).await.unwrap();
    ledger.checkpoint(keys()).await.unwrap();
    assert!(ledger.verify(keys()).await.unwrap().ok());
    (dir, store, ledger)
}

async fn first_problem(sql: &str) -> Problem {
    let (_dir, store, ledger) = populated().await;
    tamper(&store, sql).await;
    let report = ledger.verify(keys()).await.unwrap();
    report
        .problem
        .unwrap_or_else(|| panic!("tampering not detected: {sql}"))
}

fn entry_at(seq: u64) -> impl Fn(&Problem) -> bool {
    move |p| matches!(p, Problem::Entry { seq: s, .. } if *s == seq)
}

#[tokio::test]
async fn tampering_with_any_stored_column_is_caught_at_the_right_seq() {
    let cases: &[(&str, u64)] = &[
        (r#"UPDATE ledger_entries SET entry = replace(entry, '"n":3', '"n":4') WHERE seq = 11"#, 11),
        (r#"UPDATE ledger_entries SET entry = ' ' || entry WHERE seq = 2"#, 2),
        ("UPDATE ledger_entries SET chain_hash = leaf_hash WHERE seq = 7", 7),
        ("UPDATE ledger_entries SET leaf_hash = (CASE WHEN leaf_hash LIKE '00%' THEN 'ff' ELSE '00' END) || substr(leaf_hash, 3) WHERE seq = 0", 0),
        ("UPDATE ledger_entries SET created_at = created_at + 1 WHERE seq = 13", 13),
        ("UPDATE ledger_entries SET request_id = 'other' WHERE seq = 19", 19),
        ("DELETE FROM ledger_entries WHERE seq = 9", 9),
    ];
    for (sql, seq) in cases {
        let p = first_problem(sql).await;
        assert!(entry_at(*seq)(&p), "{sql}: {p}");
        assert!(p.to_string().contains(&format!("seq {seq}")), "{p}");
    }
    // Deleting the tail: the head (or a checkpoint) notices.
    let p = first_problem("DELETE FROM ledger_entries WHERE seq = 19").await;
    assert!(entry_at(19)(&p), "{p}");
}

#[tokio::test]
async fn tampering_with_checkpoints_and_rewritten_chains_is_caught() {
    let p = first_problem("UPDATE ledger_checkpoints SET root_hash = (CASE WHEN root_hash LIKE '00%' THEN 'ff' ELSE '00' END) || substr(root_hash, 3) WHERE tree_size = 20").await;
    assert!(
        matches!(p, Problem::Checkpoint { tree_size: 20, .. }),
        "{p}"
    );
    let p = first_problem("UPDATE ledger_checkpoints SET signature = substr(signature, 1, length(signature) - 4) || 'AAAA' WHERE tree_size = 8").await;
    assert!(
        matches!(
            p,
            Problem::Checkpoint {
                tree_size: 8,
                from_seq: None,
                ..
            }
        ),
        "{p}"
    );
    let p = first_problem(
        "UPDATE ledger_checkpoints SET created_at = created_at + 1 WHERE tree_size = 8",
    )
    .await;
    assert!(matches!(p, Problem::Checkpoint { tree_size: 8, .. }), "{p}");

    // Rewrite entry 12 and recompute every later hash and the head: only the
    // signed checkpoint at 20 can tell, and it names the range 8..=19.
    let (_dir, store, ledger) = populated().await;
    let rows = ledger.entries(0, 100).await.unwrap();
    let mut prev =
        super::merkle::Hash::try_from(hex::decode(&rows[11].chain_hash).unwrap()).unwrap();
    for r in &rows[12..] {
        let mut entry: serde_json::Value = serde_json::from_str(&r.entry).unwrap();
        if r.seq == 12 {
            entry["outcome"] = json!("8");
        }
        let leaf =
            super::ledger::leaf_bytes(r.seq as u64, r.created_at, r.request_id.as_deref(), &entry);
        prev = super::ledger::chain_hash(&prev, &leaf);
        tamper(&store, &format!(
            "UPDATE ledger_entries SET entry = '{}', leaf_hash = '{}', chain_hash = '{}' WHERE seq = {}",
            super::jcs::canonical_string(&entry), hex::encode(merkle::leaf_hash(&leaf)), hex::encode(prev), r.seq
        )).await;
    }
    tamper(
        &store,
        &format!(
            "UPDATE ledger_head SET chain_hash = '{}'",
            hex::encode(prev)
        ),
    )
    .await;
    let p = ledger.verify(keys()).await.unwrap().problem.unwrap();
    assert_eq!(
        p,
        Problem::Checkpoint {
            tree_size: 20,
            from_seq: Some(8),
            reason: "root hash does not match the entries".into()
        }
    );
    assert!(p.to_string().contains("seq 8..=19"), "{p}");
}

#[tokio::test]
async fn the_append_only_triggers_refuse_updates() {
    let (_dir, store, ledger) = populated().await;
    let StateStore::Sqlite(p) = &store else {
        unreachable!()
    };
    assert!(
        sqlx::query("UPDATE ledger_entries SET entry = '{}' WHERE seq = 1")
            .execute(p)
            .await
            .is_err()
    );
    assert!(sqlx::query("DELETE FROM ledger_checkpoints")
        .execute(p)
        .await
        .is_err());
    assert!(ledger.verify(keys()).await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_on_sqlite_produce_one_gap_free_chain() {
    let (_dir, _store, ledger) = sqlite_ledger().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..25 {
                ledger
                    .append(&entries(1 + (t + b) % 4, &format!("{t}-{b}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected: u64 = (0..8u64)
        .flat_map(|t| (0..25u64).map(move |b| 1 + (t + b) % 4))
        .sum();
    assert_eq!(ledger.size().await.unwrap(), expected);
    ledger.checkpoint(keys()).await.unwrap();
    let report = ledger.verify(keys()).await.unwrap();
    assert!(report.ok() && report.entries == expected, "{report:?}");
}

#[tokio::test]
async fn the_checkpoint_policy_signs_every_n_entries_or_t_ms() {
    let (_dir, _store, ledger) = sqlite_ledger().await;
    let k = keys();
    assert_eq!(ledger.maybe_checkpoint(k, 10, 60_000).await.unwrap(), None);
    ledger.append(&entries(9, "p")).await.unwrap();
    assert_eq!(ledger.maybe_checkpoint(k, 10, 60_000).await.unwrap(), None);
    ledger.append(&entries(1, "q")).await.unwrap();
    let c = ledger
        .maybe_checkpoint(k, 10, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.tree_size, 10);
    ledger.append(&entries(1, "r")).await.unwrap();
    assert_eq!(ledger.maybe_checkpoint(k, 10, 60_000).await.unwrap(), None);
    let c = ledger.maybe_checkpoint(k, 10, 0).await.unwrap().unwrap();
    assert_eq!(c.tree_size, 11, "the time limit is reached at once");
    assert!(ledger.verify(k).await.unwrap().ok());
}

#[tokio::test]
async fn sqlite_commits_are_durable() {
    let (_dir, store, _ledger) = sqlite_ledger().await;
    let StateStore::Sqlite(p) = &store else {
        unreachable!()
    };
    // 2 = FULL: every commit fsyncs the WAL, so an appended entry survives a crash.
    let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(sync, 2);
}

#[path = "tests_scale.rs"]
mod scale;

#[path = "tests_tiles.rs"]
mod tiles;
