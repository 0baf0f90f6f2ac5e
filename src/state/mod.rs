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

    /// A store on a fresh schema of the PostgreSQL the test command starts
    /// (`FHIRGATE_TEST_DATABASE_URL`), for each backend's store suite;
    /// [`Scratch::drop_schema`] removes it. `None` (the test is skipped, and
    /// says so) without that variable, unless `FHIRGATE_REQUIRE_POSTGRES=1`
    /// (set by the test command) makes its absence a failure.
    pub(crate) struct Scratch {
        /// The store, its `search_path` the fresh schema.
        pub store: StateStore,
        admin: PgPool,
        schema: String,
    }

    impl Scratch {
        pub(crate) async fn postgres() -> Option<Self> {
            let Ok(url) = std::env::var("FHIRGATE_TEST_DATABASE_URL") else {
                assert!(
                    std::env::var("FHIRGATE_REQUIRE_POSTGRES").is_err(),
                    "FHIRGATE_REQUIRE_POSTGRES is set but FHIRGATE_TEST_DATABASE_URL is not"
                );
                eprintln!("skipped: FHIRGATE_TEST_DATABASE_URL not set");
                return None;
            };
            let admin = PgPool::connect(&url).await.unwrap();
            let schema = format!("t{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
            let store = StateStore::open(Some(&scoped), Path::new("."))
                .await
                .unwrap();
            Some(Self {
                store,
                admin,
                schema,
            })
        }

        pub(crate) async fn drop_schema(self) {
            sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
                .execute(&self.admin)
                .await
                .unwrap();
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
