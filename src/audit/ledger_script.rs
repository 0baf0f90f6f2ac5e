//! The SQLite append in one round trip: a batch's whole transaction
//! (`BEGIN IMMEDIATE`, the entry rows, the sidecar rows, the head update,
//! `COMMIT`) as one multi-statement script, run by the connection's worker
//! thread in one go.
//!
//! sqlx runs each SQLite statement as a message to a worker thread and back,
//! so the locked append of [`super::ledger`] (begin, read the head, insert,
//! insert the sidecars, update, commit) cost seven thread handoffs per batch,
//! and on a busy two-core host each handoff waits for a CPU. The script needs
//! the head before it starts, so the [`super::Ledger`] remembers the head its
//! last append left ([`HeadCache`]). The remembered head may be stale (another
//! process appended to the same file); then the script's first INSERT meets
//! the existing row of that seq (`seq` is the primary key and seqs have no
//! gaps), the script stops before `COMMIT`, the transaction is rolled back
//! and the caller falls back to the locked append, which reads the head. So
//! a stale head costs a retry, never a fork of the chain.
//!
//! PostgreSQL takes no multi-statement scripts with binds; its appends stay
//! on the locked path (and it is a network round trip per statement anyway).

use std::sync::Mutex;

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::ledger::{
    push_entries, push_sidecar, sidecar_chunks, LedgerError, Sidecar, StoredEntry, INSERT_CHUNK,
};

/// The head (`size`, hex chain hash) the last append of this process left;
/// shared by a ledger's clones.
#[derive(Debug, Default)]
pub(crate) struct HeadCache(Mutex<Option<(i64, String)>>);

impl HeadCache {
    pub(crate) fn get(&self) -> Option<(i64, String)> {
        self.0.lock().ok().and_then(|h| h.clone())
    }

    pub(crate) fn set(&self, head: Option<(i64, String)>) {
        if let Ok(mut h) = self.0.lock() {
            *h = head;
        }
    }
}

/// How a script append ended.
pub(crate) enum Outcome {
    /// Committed.
    Done,
    /// The remembered head was stale: nothing was written; use the locked
    /// append.
    Stale,
}

/// Appends `rows` (built on the remembered head) and `extra` in one
/// transaction, one statement script; `new_head` is what `ledger_head`
/// becomes.
pub(crate) async fn append(
    pool: &SqlitePool,
    rows: &[StoredEntry],
    extra: &[Sidecar],
    new_head: (i64, &str),
) -> Result<Outcome, LedgerError> {
    let mut q: QueryBuilder<'_, Sqlite> = QueryBuilder::new("BEGIN IMMEDIATE");
    for chunk in rows.chunks(INSERT_CHUNK) {
        q.push("; ");
        push_entries(&mut q, chunk);
    }
    for s in extra {
        for chunk in sidecar_chunks(s) {
            q.push("; ");
            push_sidecar(&mut q, s.insert, chunk);
        }
    }
    q.push("; UPDATE ledger_head SET size = ");
    q.push_bind(new_head.0);
    q.push(", chain_hash = ");
    q.push_bind(new_head.1);
    q.push(" WHERE id = 0; COMMIT");

    let mut conn = pool.acquire().await?;
    match q.build().execute(&mut *conn).await {
        Ok(_) => Ok(Outcome::Done),
        Err(e) => {
            // The script stopped part-way, inside its transaction (or SQLite
            // already rolled it back, e.g. on a full disk): roll back, and
            // do not hand this connection back to the pool either way.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            conn.close_on_drop();
            match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => Ok(Outcome::Stale),
                e => Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::{
        audit::{tests::entries, Ledger},
        state::StateStore,
    };

    #[tokio::test]
    async fn appends_remember_the_head_and_a_stale_one_falls_back_to_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        // Two ledgers on one file: two processes, each remembering its own head.
        let a = Ledger::new(store.clone());
        let b = Ledger::new(store.clone());
        assert_eq!(a.append(&entries(3, "a")).await.unwrap(), vec![0, 1, 2]);
        let stored = a.entries(2, 1).await.unwrap();
        assert_eq!(
            a.remembered_head(),
            Some((3, stored[0].chain_hash.clone())),
            "the head of the last append is remembered"
        );
        // The script on the remembered head.
        assert_eq!(a.append(&entries(2, "a")).await.unwrap(), vec![3, 4]);
        assert_eq!(a.remembered_head().map(|h| h.0), Some(5));
        // The other process appends; `a`'s head is now stale.
        assert_eq!(b.append(&entries(2, "b")).await.unwrap(), vec![5, 6]);
        // `a`'s script meets seq 5, rolls back and retries under the lock.
        assert_eq!(a.append(&entries(1, "c")).await.unwrap(), vec![7]);
        assert_eq!(a.remembered_head().map(|h| h.0), Some(8));
        assert_eq!(b.append(&entries(1, "d")).await.unwrap(), vec![8]);
        let report = a.verify(crate::audit::tests::keys()).await.unwrap();
        assert!(report.ok() && report.entries == 9, "{report:?}");
        // Nothing of a rolled-back script stayed behind.
        let StateStore::Sqlite(pool) = &store else {
            return;
        };
        let (n, head): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM ledger_entries), (SELECT size FROM ledger_head)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!((n, head), (9, 9));
    }
}
