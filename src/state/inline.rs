//! Point reads of the SQLite state store on the calling thread (and the
//! opening of a thread's own connection to its file, shared with the audit
//! writer's [`crate::audit::appender`]).
//!
//! sqlx runs every SQLite statement on a worker thread of its connection:
//! each query is a message to that thread, a wake-up there and one back. For
//! the reads made on every request (is this access token revoked, what
//! generation are this patient's Consents at, what is the consent epoch) that
//! round trip costs far more than the query; issue 10's profile put two of
//! them at a fifth of the facade's CPU per read.
//!
//! Here each thread keeps its own connection per database file (a few at
//! most) and runs such a read in place. Nothing is cached: every statement
//! is its own read transaction, which in WAL mode sees every write committed
//! before it by any connection or process (the server's own pool, the CLI),
//! exactly as the pooled query did, and never waits for a writer. The
//! connection is `query_only`, so these reads can never write.
//!
//! Only files: an in-memory database is private to its pool, so [`read`]
//! answers `None` and the caller runs the query through sqlx as before (as
//! it does on PostgreSQL, whose queries cross the network anyway).

use std::{cell::RefCell, path::Path, time::Duration};

use rusqlite::{Connection, OpenFlags};
use sqlx::SqlitePool;

/// Database files one thread keeps a connection to (tests open many
/// stores in one process; the server has one).
const PER_THREAD: usize = 4;

/// How long a read waits when SQLite reports the file busy (in WAL mode
/// only while a crashed writer's log is being recovered). It blocks the
/// calling thread, so it is short.
const BUSY_WAIT: Duration = Duration::from_millis(250);

thread_local! {
    /// This thread's connections, least recently used first.
    static OPEN: RefCell<Vec<(Box<Path>, Connection)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's connection to `pool`'s database file; `None`
/// when the pool's database is not a file (the caller uses the pool).
pub(crate) fn read<T>(
    pool: &SqlitePool,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Option<Result<T, sqlx::Error>> {
    let options = pool.connect_options();
    let path = options.get_filename();
    if !is_file_name(path) {
        return None;
    }
    OPEN.with(|open| {
        // `f` cannot reach this again, but a borrow failure must not panic
        let mut open = open.try_borrow_mut().ok()?;
        let at = match open.iter().position(|(p, _)| **p == *path) {
            Some(i) => {
                let hit = open.remove(i);
                open.push(hit);
                open.len() - 1
            }
            None => {
                let conn = match connect(path) {
                    Ok(c) => c,
                    Err(e) => return Some(Err(to_sqlx(e))),
                };
                if open.len() >= PER_THREAD {
                    open.remove(0);
                }
                open.push((path.into(), conn));
                open.len() - 1
            }
        };
        let result = f(&open[at].1);
        if result.is_err() {
            // a connection that failed is not trusted again: reopened next time
            open.remove(at);
        }
        Some(result.map_err(to_sqlx))
    })
}

/// Whether sqlx's file name for a pool names a file on disk (sqlx names an
/// in-memory database `:memory:` or a `file:` URI of its own).
fn is_file_name(path: &Path) -> bool {
    match path.to_str() {
        Some(s) => !(s.is_empty() || s == ":memory:" || s.starts_with("file:")),
        None => true,
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open_existing(path, BUSY_WAIT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// The database file of a SQLite pool, when it is one (not in memory).
pub(crate) fn file_of(pool: &SqlitePool) -> Option<std::path::PathBuf> {
    let options = pool.connect_options();
    let path = options.get_filename();
    is_file_name(path).then(|| path.to_path_buf())
}

/// A connection of this thread's own to the state store's file, which the
/// pool has created and migrated already (no CREATE; WAL mode is in the
/// file), waiting up to `busy` for another writer.
pub(crate) fn open_existing(path: &Path, busy: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy)?;
    Ok(conn)
}

fn to_sqlx(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!("SQLite read: {e}")))
}

/// Whether this thread holds a connection to `pool`'s file (for tests: the
/// read ran here, not on a pool connection).
#[cfg(test)]
pub(crate) fn open_here(pool: &SqlitePool) -> bool {
    let options = pool.connect_options();
    let path = options.get_filename();
    OPEN.with(|open| open.borrow().iter().any(|(p, _)| **p == *path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;
    use rusqlite::OptionalExtension;

    async fn file_store(dir: &Path) -> SqlitePool {
        match StateStore::open(None, dir).await.unwrap() {
            StateStore::Sqlite(p) => p,
            StateStore::Postgres(_) => unreachable!(),
        }
    }

    fn meta(pool: &SqlitePool, key: &str) -> Option<String> {
        read(pool, |c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()
        })
        .expect("a file store is read in place")
        .unwrap()
    }

    #[tokio::test]
    async fn a_read_in_place_sees_every_write_committed_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let pool = file_store(dir.path()).await;
        let store = StateStore::Sqlite(pool.clone());
        assert_eq!(meta(&pool, "k"), None);
        assert!(open_here(&pool), "the read ran on this thread's connection");
        // the pool's writes, one after the other, on the same open connection
        store.set_meta("k", "1").await.unwrap();
        assert_eq!(meta(&pool, "k").as_deref(), Some("1"));
        store.set_meta("k", "2").await.unwrap();
        assert_eq!(meta(&pool, "k").as_deref(), Some("2"));
        // another process's write (the CLI's own connection)
        let other = Connection::open(dir.path().join("state.db")).unwrap();
        other
            .execute("UPDATE meta SET value = '3' WHERE key = 'k'", [])
            .unwrap();
        assert_eq!(meta(&pool, "k").as_deref(), Some("3"));
    }

    #[tokio::test]
    async fn the_connection_cannot_write_and_a_failed_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let pool = file_store(dir.path()).await;
        let wrote = read(&pool, |c| {
            c.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')", [])
        })
        .unwrap();
        assert!(wrote.is_err(), "query_only refuses a write");
        assert!(!open_here(&pool), "the failed connection was dropped");
        assert_eq!(meta(&pool, "x"), None);
        assert!(open_here(&pool));
    }

    #[tokio::test]
    async fn an_in_memory_database_is_left_to_the_pool() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        assert!(read(&pool, |c| c
            .query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
        .is_none());
    }

    #[tokio::test]
    async fn a_thread_keeps_a_few_files_open_the_latest_used() {
        let dirs: Vec<_> = (0..PER_THREAD + 1)
            .map(|_| tempfile::tempdir().unwrap())
            .collect();
        let mut pools = Vec::new();
        for d in &dirs {
            pools.push(file_store(d.path()).await);
        }
        for p in &pools {
            assert_eq!(meta(p, "k"), None);
        }
        assert!(!open_here(&pools[0]), "the least recently used was closed");
        assert!(pools[1..].iter().all(open_here));
        assert_eq!(meta(&pools[0], "k"), None);
        assert!(open_here(&pools[0]));
        assert!(!open_here(&pools[1]));
    }
}
