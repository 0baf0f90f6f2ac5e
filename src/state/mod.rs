//! The facade's own state store: SQLite (`state.db` in the data directory) by
//! default, PostgreSQL when `database_url` is set, so replicas can share it.
//! Each backend has its own migrations (same shape); every query here is
//! written once per backend where the dialects differ and covered by one
//! generic test suite run on both (`tests::suite`).
//!
//! Holds: instance metadata, the embedded user directory, and the SMART
//! authorization server's clients, codes, tokens, launch contexts and
//! sessions (`oauth`). Later capabilities (consent index, bulk jobs, ledger)
//! add tables.

use std::{
    path::Path,
    str::FromStr,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use sqlx::{
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    PgPool, Row, SqlitePool,
};

/// Runs the same expression on whichever pool `$store` (a [`StateStore`])
/// has: one SQL text with `$N` placeholders serves both backends, the
/// expression is written once and expanded per pool type.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match $store {
            $crate::state::StateStore::Sqlite($p) => $body,
            $crate::state::StateStore::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

pub(crate) mod inline;
pub mod oauth;
pub mod users;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("src/state/migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("src/state/migrations/postgres");

/// Test hook, not configuration: when non-zero, each new SQLite connection
/// of the state store runs `PRAGMA max_page_count` with this value, so a
/// test can simulate a full disk without root (`tests/ledger_full.rs`);
/// the pragma is per connection, and the ledger replaces a connection
/// after a failed append. Zero, the default, leaves SQLite's own limit.
#[doc(hidden)]
pub static SQLITE_MAX_PAGE_COUNT: AtomicU64 = AtomicU64::new(0);

/// A pooled connection for one transaction, handed back to the pool only
/// once the work on it has finished ([`TxConn::done`]). When a step fails,
/// or the future holding it is dropped mid-transaction (a client gone, a
/// request deadline), the connection is closed instead: SQLite rolls a
/// transaction back by itself on some errors (`SQLITE_FULL`, a full disk),
/// the `ROLLBACK` sqlx then sends fails and its transaction depth stays at
/// 1, so every later `begin_with` on that pooled connection would fail; a
/// PostgreSQL connection dropped mid-statement is in an unknown state. The
/// ledger's append does the same (`audit::ledger`).
pub(crate) struct TxConn<DB: sqlx::Database> {
    conn: sqlx::pool::PoolConnection<DB>,
    done: bool,
}

impl<DB: sqlx::Database> TxConn<DB> {
    /// A connection from `pool`.
    pub(crate) async fn acquire(pool: &sqlx::Pool<DB>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: pool.acquire().await?,
            done: false,
        })
    }

    /// The transaction on it committed or rolled back: back to the pool.
    pub(crate) fn done(mut self) {
        self.done = true;
    }
}

impl<DB: sqlx::Database> std::ops::Deref for TxConn<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for TxConn<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl<DB: sqlx::Database> Drop for TxConn<DB> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.close_on_drop();
        }
    }
}

/// The state store, on one of its two backends. Cheap to clone.
#[derive(Clone, Debug)]
pub enum StateStore {
    /// Single-node default.
    Sqlite(SqlitePool),
    /// Scale-out mode.
    Postgres(PgPool),
}

impl StateStore {
    /// Opens the configured backend and runs its migrations.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        match database_url {
            Some(url) if url.starts_with("postgres") => {
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Ok(Self::Postgres(pool))
            }
            other => {
                let url = match other {
                    Some(u) => u.to_owned(),
                    None => format!("sqlite://{}", data_dir.join("state.db").display()),
                };
                let options = SqliteConnectOptions::from_str(&url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30));
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    // A local file does not drop connections the way a
                    // server does: no ping (a worker-thread round trip)
                    // before every query.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            let pages = SQLITE_MAX_PAGE_COUNT.load(Ordering::Relaxed);
                            if pages > 0 {
                                sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
                                    .execute(conn)
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// Backend name for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
            Self::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
        }
    }

    /// Reads a metadata value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            Self::Sqlite(p) => sqlx::query("SELECT value FROM meta WHERE key = ?")
                .bind(key)
                .fetch_optional(p)
                .await
                .map(|r| r.map(|r| r.get(0))),
            Self::Postgres(p) => sqlx::query("SELECT value FROM meta WHERE key = $1")
                .bind(key)
                .fetch_optional(p)
                .await
                .map(|r| r.map(|r| r.get(0))),
        }
    }

    /// Writes a metadata value (insert or replace).
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        let sql_lite = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        let sql_pg = "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        match self {
            Self::Sqlite(p) => sqlx::query(sql_lite)
                .bind(key)
                .bind(value)
                .execute(p)
                .await
                .map(|_| ()),
            Self::Postgres(p) => sqlx::query(sql_pg)
                .bind(key)
                .bind(value)
                .execute(p)
                .await
                .map(|_| ()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The generic suite every backend must pass.
    pub(crate) async fn suite(store: &StateStore) {
        store.ping().await.unwrap();
        assert_eq!(store.meta("k").await.unwrap(), None);
        store.set_meta("k", "1").await.unwrap();
        store.set_meta("k", "2").await.unwrap();
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("2"));
        users::tests::suite(store).await;
        oauth::tests::suite(store).await;
        crate::audit::tests::suite(store).await;
        crate::bulk::tests::suite(store).await;
    }

    /// A migrated SQLite store in `dir` whose pool has one connection, so
    /// a test knows which connection the next statement runs on.
    pub(crate) async fn sqlite_one_connection(dir: &Path) -> StateStore {
        let url = format!("sqlite://{}", dir.join("state.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        SQLITE_MIGRATIONS.run(&pool).await.unwrap();
        StateStore::Sqlite(pool)
    }

    /// Caps the one connection of `pool` at the file's current size and
    /// uses up its free pages, as a full disk would (`PRAGMA
    /// max_page_count` is per connection: a new connection has no cap).
    pub(crate) async fn fill_disk(pool: &SqlitePool) {
        sqlx::query("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
            .execute(pool)
            .await
            .unwrap();
        let mut c = pool.acquire().await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&mut *c)
            .await
            .unwrap();
        for _ in 0..10_000 {
            if sqlx::query("INSERT INTO filler (b) VALUES (zeroblob(2000))")
                .execute(&mut *c)
                .await
                .is_err()
            {
                return;
            }
        }
        panic!("the page cap does not hold");
    }

    /// Space is back: the filler goes and the cap is lifted (on whichever
    /// connection the pool now has).
    pub(crate) async fn free_disk(pool: &SqlitePool) {
        let mut c = pool.acquire().await.unwrap();
        sqlx::query("PRAGMA max_page_count = 4294967294")
            .execute(&mut *c)
            .await
            .unwrap();
        sqlx::query("DROP TABLE filler")
            .execute(&mut *c)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sqlite_backend_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        suite(&store).await;
        // Re-opening runs no migration twice.
        drop(store);
        let again = StateStore::open(None, dir.path()).await.unwrap();
        assert_eq!(again.meta("k").await.unwrap().as_deref(), Some("2"));
    }

    /// The PostgreSQL the test command starts (`FHIRGATE_TEST_DATABASE_URL`).
    /// `None` (the test is skipped, and says so) without that variable,
    /// unless `FHIRGATE_REQUIRE_POSTGRES=1` (set by the test command) makes
    /// its absence a failure.
    pub(crate) fn test_database_url() -> Option<String> {
        let Ok(url) = std::env::var("FHIRGATE_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("FHIRGATE_REQUIRE_POSTGRES").is_err(),
                "FHIRGATE_REQUIRE_POSTGRES is set but FHIRGATE_TEST_DATABASE_URL is not"
            );
            eprintln!("skipped: FHIRGATE_TEST_DATABASE_URL not set");
            return None;
        };
        Some(url)
    }

    /// A fresh schema on a PostgreSQL: stores opened on it ([`Schema::open`],
    /// several for replicas sharing it) see only it; [`Schema::drop_schema`]
    /// removes it.
    pub(crate) struct Schema {
        admin: PgPool,
        name: String,
        /// The database URL with the schema as its `search_path`.
        pub url: String,
    }

    impl Schema {
        /// Creates it on the database at `url`, its name `prefix` and a
        /// random suffix.
        pub(crate) async fn create(url: &str, prefix: &str) -> Self {
            let admin = PgPool::connect(url).await.unwrap();
            let name = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&admin)
                .await
                .unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let url = format!("{url}{sep}options=-c%20search_path%3D{name}");
            Self { admin, name, url }
        }

        /// A store on it.
        pub(crate) async fn open(&self) -> StateStore {
            StateStore::open(Some(&self.url), Path::new("."))
                .await
                .unwrap()
        }

        pub(crate) async fn drop_schema(self) {
            sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
                .execute(&self.admin)
                .await
                .unwrap();
        }
    }

    /// A store on a fresh [`Schema`] of the PostgreSQL the test command
    /// starts, for each backend's store suite; [`Scratch::drop_schema`]
    /// removes it. `None` as [`test_database_url`].
    pub(crate) struct Scratch {
        /// The store, its `search_path` the fresh schema.
        pub store: StateStore,
        schema: Schema,
    }

    impl Scratch {
        pub(crate) async fn postgres() -> Option<Self> {
            let schema = Schema::create(&test_database_url()?, "t").await;
            let store = schema.open().await;
            Some(Self { store, schema })
        }

        pub(crate) async fn drop_schema(self) {
            self.schema.drop_schema().await;
        }
    }

    #[tokio::test]
    async fn postgres_backend_passes_the_suite() {
        let Some(pg) = Scratch::postgres().await else {
            return;
        };
        assert_eq!(pg.store.backend(), "postgres");
        suite(&pg.store).await;
        pg.drop_schema().await;
    }
}
