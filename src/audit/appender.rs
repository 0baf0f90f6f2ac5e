//! The ledger's appends on a SQLite file, on the audit writer's own thread.
//!
//! Through sqlx every SQLite statement is a message to the connection's
//! worker thread and back, and the audit writer was a task that then woke
//! the requests: each batch crossed threads three times before a request
//! saw its seqs, and had its statement script parsed anew. The writer now
//! runs on a thread of its own ([`super::writer`]) and appends here, on a
//! connection that thread owns, with prepared statements: a batch is handed
//! to the thread once and answered from it once.
//!
//! An append is the locked transaction of [`super::Ledger::append_with`]:
//! `BEGIN IMMEDIATE` (appenders of every process on the file serialize
//! there), the head read under that lock, the entry rows, the sidecar rows
//! (payloads, built once the seqs are known), the new head, `COMMIT` (WAL,
//! `synchronous=FULL`: durable on return, one fsync for the batch). Any
//! error rolls the whole batch back and the connection is not used again:
//! the next append opens a fresh one (SQLite rolls some failures back by
//! itself, a full disk for one).

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::ledger::{build_rows, now_ms, LedgerError, NewEntry, Sidecar, SqlValue};
use crate::state::StateStore;

/// How long an append waits for another process's append on the same
/// file (the pool's `busy_timeout`).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The appends of one SQLite file, on the thread that owns this.
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
    conn: Option<Connection>,
    /// The `max_page_count` test hook's value the connection has applied.
    cap: u64,
}

impl Appender {
    /// An appender for `store` when it is a SQLite file (`None`: PostgreSQL
    /// or an in-memory database, which keep the pooled append).
    pub fn for_store(store: &StateStore) -> Option<Self> {
        let StateStore::Sqlite(pool) = store else {
            return None;
        };
        Some(Self {
            path: crate::state::inline::file_of(pool)?,
            conn: None,
            cap: 0,
        })
    }

    /// Appends `batch` and the rows `sidecar` builds from its seqs in one
    /// durable transaction; returns the seqs and the new head (size, hex
    /// chain hash).
    pub fn append_with<F>(
        &mut self,
        batch: &[NewEntry],
        sidecar: F,
    ) -> Result<(Vec<u64>, (i64, String)), LedgerError>
    where
        F: FnOnce(&[u64]) -> Result<Vec<Sidecar>, String>,
    {
        let conn = self.connection()?;
        match append_in(&conn, batch, sidecar) {
            Ok(done) => {
                self.conn = Some(conn);
                Ok(done)
            }
            Err(e) => {
                // rolled back (or SQLite already did); the connection is
                // dropped, not reused
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Copies the write-ahead log into the main file (`PRAGMA
    /// wal_checkpoint(PASSIVE)`); returns the pages the log held.
    pub fn checkpoint_wal(&mut self) -> Result<i64, LedgerError> {
        let conn = self.connection()?;
        let log: i64 = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .map_err(LedgerError::from)?;
        self.conn = Some(conn);
        Ok(log.max(0))
    }
}

impl Appender {
    /// The open connection (taken: put back after a success), or a new one;
    /// with the state store's `max_page_count` test hook applied.
    fn connection(&mut self) -> Result<Connection, LedgerError> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => {
                self.cap = 0;
                connect(&self.path)?
            }
        };
        // the test hook of `state::SQLITE_MAX_PAGE_COUNT` (a full disk): a
        // test changes it while this connection is open
        let cap = crate::state::SQLITE_MAX_PAGE_COUNT.load(std::sync::atomic::Ordering::Relaxed);
        if cap != self.cap {
            let pages = if cap == 0 { 4_294_967_294 } else { cap };
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
            self.cap = cap;
        }
        Ok(conn)
    }
}

fn connect(path: &Path) -> Result<Connection, LedgerError> {
    let conn = crate::state::inline::open_existing(path, BUSY_WAIT)?;
    // as the pool's connections (sqlx's defaults): durable commits, and
    // foreign keys enforced
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")?;
    Ok(conn)
}

fn append_in<F>(
    conn: &Connection,
    batch: &[NewEntry],
    sidecar: F,
) -> Result<(Vec<u64>, (i64, String)), LedgerError>
where
    F: FnOnce(&[u64]) -> Result<Vec<Sidecar>, String>,
{
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let (size, head): (i64, String) = conn
        .prepare_cached("SELECT size, chain_hash FROM ledger_head WHERE id = 0")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let rows = build_rows(size, &head, batch, now_ms())?;
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO ledger_entries (seq, created_at, request_id, entry, leaf_hash, chain_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in &rows {
            insert.execute(rusqlite::params![
                r.seq,
                r.created_at,
                r.request_id,
                r.entry,
                r.leaf_hash,
                r.chain_hash
            ])?;
        }
    }
    let seqs: Vec<u64> = rows.iter().map(|r| r.seq as u64).collect();
    for s in sidecar(&seqs).map_err(|e| LedgerError::Db(sqlx::Error::Protocol(e)))? {
        let Some(width) = s.rows.first().map(Vec::len) else {
            continue;
        };
        let marks = vec!["?"; width].join(", ");
        let mut insert = conn.prepare_cached(&format!("{}VALUES ({marks})", s.insert))?;
        for row in &s.rows {
            insert.execute(rusqlite::params_from_iter(row.iter().map(
                |v| -> &dyn rusqlite::ToSql {
                    match v {
                        SqlValue::Int(i) => i,
                        SqlValue::Text(t) => t,
                    }
                },
            )))?;
        }
    }
    let new_head = match rows.last() {
        Some(r) => (r.seq + 1, r.chain_hash.clone()),
        None => (size, head),
    };
    conn.prepare_cached("UPDATE ledger_head SET size = ?1, chain_hash = ?2 WHERE id = 0")?
        .execute(rusqlite::params![new_head.0, new_head.1])?;
    conn.execute_batch("COMMIT")?;
    Ok((seqs, new_head))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::{
        tests::{entries, keys},
        Ledger,
    };

    #[tokio::test]
    async fn appenders_of_several_processes_and_the_pool_extend_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        // two writers (two processes on one file) and a pooled append
        let mut a = Appender::for_store(&store).unwrap();
        let mut b = Appender::for_store(&store).unwrap();
        let pooled = Ledger::new(store.clone());
        let none = |_: &[u64]| Ok(Vec::new());
        assert_eq!(
            a.append_with(&entries(3, "a"), none).unwrap().0,
            vec![0, 1, 2]
        );
        assert_eq!(b.append_with(&entries(2, "b"), none).unwrap().0, vec![3, 4]);
        assert_eq!(pooled.append(&entries(1, "c")).await.unwrap(), vec![5]);
        let (seqs, head) = a.append_with(&entries(2, "d"), none).unwrap();
        assert_eq!(seqs, vec![6, 7]);
        let last = &pooled.entries(7, 1).await.unwrap()[0];
        assert_eq!(head, (8, last.chain_hash.clone()));
        let report = pooled.verify(keys()).await.unwrap();
        assert!(report.ok() && report.entries == 8, "{report:?}");
    }

    #[tokio::test]
    async fn a_failed_append_leaves_nothing_and_the_next_one_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        let mut w = Appender::for_store(&store).unwrap();
        let refused = w.append_with(&entries(2, "x"), |_| Err("sealing failed".to_owned()));
        assert!(refused.is_err());
        assert!(
            w.conn.is_none(),
            "the connection of a failed append is dropped"
        );
        // sidecar rows the schema refuses (the same primary key twice)
        let orphan = |seqs: &[u64]| {
            Ok(vec![Sidecar {
                insert: "INSERT INTO audit_event_agents (agent, seq) ",
                rows: vec![
                    vec![SqlValue::Text("a".into()), SqlValue::Int(seqs[0] as i64)],
                    vec![SqlValue::Text("a".into()), SqlValue::Int(seqs[0] as i64)],
                ],
            }])
        };
        assert!(
            w.append_with(&entries(1, "y"), orphan).is_err(),
            "duplicate key"
        );
        let pooled = Ledger::new(store.clone());
        assert_eq!(pooled.size().await.unwrap(), 0, "nothing of either stayed");
        let StateStore::Sqlite(pool) = &store else {
            unreachable!()
        };
        let agents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_event_agents")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(agents, 0);
        let written = |seqs: &[u64]| {
            Ok(vec![Sidecar {
                insert: "INSERT INTO audit_event_agents (agent, seq) ",
                rows: seqs
                    .iter()
                    .map(|s| vec![SqlValue::Text("a".into()), SqlValue::Int(*s as i64)])
                    .collect(),
            }])
        };
        assert_eq!(
            w.append_with(&entries(2, "z"), written).unwrap().0,
            vec![0, 1]
        );
        let agents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_event_agents")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(agents, 2);
        assert!(pooled.verify(keys()).await.unwrap().ok());
    }

    #[tokio::test]
    async fn only_a_sqlite_file_gets_an_appender() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        assert!(Appender::for_store(&StateStore::Sqlite(pool)).is_none());
    }
}
