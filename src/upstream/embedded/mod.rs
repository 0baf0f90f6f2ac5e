//! The embedded FHIR R4 store: one SQLite file in the data directory, the
//! default upstream. Versioned resources with history (`crud`, `history`),
//! atomic transactions and batches (`bundle`), search over index tables
//! (`index` writes them, `search` reads them) and `Patient/$everything`.
//!
//! Writes are serialised by one async mutex (SQLite has one writer anyway),
//! so every write is a short `BEGIN IMMEDIATE` transaction that never waits
//! on `SQLITE_BUSY`; reads run concurrently in WAL mode.

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    SqlitePool,
};
use tokio::sync::Mutex;

use super::{RequestContext, Upstream};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
};

pub mod bundle;
pub mod crud;
pub mod everything;
pub mod history;
pub mod index;
mod instance;
pub mod journal;
mod paging;
pub mod search;
#[cfg(test)]
mod tests_replicas;

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    /// Connection pool (WAL; readers in parallel).
    pub(crate) pool: SqlitePool,
    /// Serialises writers so transactions never contend.
    pub(crate) write_lock: Arc<Mutex<()>>,
}

/// A write transaction holding the store's writer lock; dereferences to the
/// connection the `crud` rules take. Dropping it without `commit` rolls back.
///
/// `BEGIN IMMEDIATE`: the writer lock only serialises this process's
/// writers; replicas sharing the data dir open the same file, and a
/// deferred transaction that read before it wrote would fail with
/// `SQLITE_BUSY` (no busy wait for a stale read snapshot) when another
/// process wrote in between. The transaction is managed here rather than
/// by `sqlx::Transaction`: a transaction that does not commit (an error, a
/// dropped request) ends with its connection closed, which rolls it back,
/// instead of a `ROLLBACK` on a pooled connection, which fails when SQLite
/// already ended the transaction itself (`SQLITE_FULL`) and would leave
/// sqlx's transaction depth wrong on that connection for good.
pub(crate) struct WriteTx<'a> {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    committed: bool,
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

impl WriteTx<'_> {
    /// Commits, then releases the writer lock.
    pub(crate) async fn commit(mut self) -> FhirResult<()> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.committed = true;
        journal::Journal::commit();
        Ok(())
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/upstream/embedded/migrations");

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `path` and migrates it.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            // 2 MiB of page cache per connection (at most 16 MiB for the
            // pool, whatever the data size); the OS file cache does the rest
            .pragma("cache_size", "-2048")
            .pragma("temp_store", "memory")
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    /// Number of current (not deleted) resources of a type; `None` counts all.
    pub async fn count(&self, resource_type: Option<&str>) -> FhirResult<i64> {
        let n: i64 = match resource_type {
            Some(t) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM resource WHERE type = ? AND deleted = 0")
                    .bind(t)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_scalar("SELECT COUNT(*) FROM resource WHERE deleted = 0")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(n)
    }

    /// Starts the one write transaction the store allows at a time (the
    /// writer lock is held until the transaction commits or drops).
    pub(crate) async fn write(&self) -> FhirResult<WriteTx<'_>> {
        let guard = self.write_lock.lock().await;
        let mut conn = self.pool.acquire().await?;
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(e.into());
        }
        journal::Journal::begin();
        Ok(WriteTx {
            conn,
            committed: false,
            _guard: guard,
        })
    }

    /// Runs `PRAGMA optimize` (after bulk loads, so the planner has statistics).
    pub async fn optimize(&self) -> FhirResult<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl Upstream for EmbeddedStore {
    async fn execute(&self, req: &FhirRequest, ctx: &RequestContext) -> FhirResult<FhirResponse> {
        match req.interaction {
            Interaction::Capabilities => Ok(FhirResponse::ok(capability::embedded_statement(
                &ctx.base,
                crate::search::params::SEARCH_PARAMS_FOR_CAPABILITY,
                crate::search::params::COMMON_PARAMS,
            ))),
            Interaction::Read => instance::read(self, req, ctx).await,
            Interaction::Vread => instance::vread(self, req, ctx).await,
            Interaction::Create => instance::create(self, req, ctx).await,
            Interaction::Update => instance::update(self, req, ctx).await,
            Interaction::ConditionalUpdate => instance::conditional_update(self, req, ctx).await,
            Interaction::Delete => instance::delete(self, req, ctx).await,
            Interaction::ConditionalDelete => instance::conditional_delete(self, req, ctx).await,
            Interaction::SearchType
            | Interaction::SearchSystem
            | Interaction::SearchCompartment => search::search(self, req, ctx).await,
            Interaction::HistoryInstance
            | Interaction::HistoryType
            | Interaction::HistorySystem => history::history(self, req, ctx).await,
            Interaction::BatchOrTransaction => bundle::batch_or_transaction(self, req, ctx).await,
            Interaction::Operation => match (
                req.resource_type.as_deref(),
                req.id.is_some(),
                req.operation.as_deref(),
            ) {
                (Some("Patient"), true, Some("everything")) => {
                    everything::everything(self, req, ctx).await
                }
                (_, _, Some(op)) => Err(FhirError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    crate::error::IssueType::NotSupported,
                    format!("operation ${op} is not supported here"),
                )),
                _ => Err(FhirError::not_found("no such operation")),
            },
        }
    }

    fn name(&self) -> &'static str {
        "embedded"
    }

    fn embedded(&self) -> Option<&EmbeddedStore> {
        Some(self)
    }
}
