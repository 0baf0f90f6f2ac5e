//! The anchor exporter's state in `ledger_anchors` (migration
//! `0006_anchor.sql`): queueing new checkpoints, finding the rows due, and
//! claiming one with a lease so replicas do not post it twice.

use super::{contents, now_ms, Anchor, AnchorRecord, BATCH, LEASE_MS, RECORD_COLUMNS};
use crate::audit::ledger::{on_pool, Checkpoint, Ledger, LedgerError};

/// Every anchor row, oldest checkpoint first (for the admin API).
pub async fn records(ledger: &Ledger) -> Result<Vec<AnchorRecord>, LedgerError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM ledger_anchors ORDER BY tree_size");
    Ok(on_pool!(&ledger.store, |p| sqlx::query_as(&sql)
        .fetch_all(p)
        .await)?)
}

impl Anchor {
    /// Adds a row for every checkpoint above the newest anchored one.
    pub(super) async fn enqueue(&self) -> Result<(), LedgerError> {
        let max_sql = "SELECT COALESCE(MAX(tree_size), -1) FROM ledger_anchors";
        let (max,): (i64,) = on_pool!(&self.ledger.store, |p| sqlx::query_as(max_sql)
            .fetch_one(p)
            .await)?;
        let cols = "tree_size, root_hash, created_at, signature";
        let new_sql = format!("SELECT {cols} FROM ledger_checkpoints WHERE tree_size > $1 ORDER BY tree_size LIMIT $2");
        let new: Vec<Checkpoint> = on_pool!(&self.ledger.store, |p| sqlx::query_as(&new_sql)
            .bind(max)
            .bind(BATCH)
            .fetch_all(p)
            .await)?;
        let Some(first) = new.first() else {
            return Ok(());
        };
        let prev_sql = format!("SELECT {cols} FROM ledger_checkpoints WHERE tree_size < $1 ORDER BY tree_size DESC LIMIT 1");
        let mut previous: Option<Checkpoint> =
            on_pool!(&self.ledger.store, |p| sqlx::query_as(&prev_sql)
                .bind(first.tree_size)
                .fetch_optional(p)
                .await)?;
        let insert = "INSERT INTO ledger_anchors (tree_size, root_hash, previous_tree_size, previous_root_hash, contents, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (tree_size) DO NOTHING";
        for c in new {
            let body = contents(&c, previous.as_ref());
            let now = now_ms();
            on_pool!(&self.ledger.store, |p| sqlx::query(insert)
                .bind(c.tree_size)
                .bind(&c.root_hash)
                .bind(previous.as_ref().map(|p| p.tree_size))
                .bind(previous.as_ref().map(|p| p.root_hash.clone()))
                .bind(&body)
                .bind(now)
                .execute(p)
                .await
                .map(|_| ()))?;
            previous = Some(c);
        }
        Ok(())
    }

    /// Rows still needing a post or a receipt whose lease or backoff is over.
    pub(super) async fn due(&self) -> Result<Vec<AnchorRecord>, LedgerError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM ledger_anchors WHERE (transaction_id IS NULL OR receipt IS NULL) AND claimed_until < $1 ORDER BY tree_size LIMIT $2");
        Ok(on_pool!(&self.ledger.store, |p| sqlx::query_as(&sql)
            .bind(now_ms())
            .bind(BATCH)
            .fetch_all(p)
            .await)?)
    }

    /// Takes the row for a lease if it still needs work and no other
    /// replica holds it; answers the row as it is now.
    pub(super) async fn claim(&self, tree_size: i64) -> Result<Option<AnchorRecord>, LedgerError> {
        let now = now_ms();
        let sql = "UPDATE ledger_anchors SET claimed_until = $1 WHERE tree_size = $2 AND claimed_until < $3 AND (transaction_id IS NULL OR receipt IS NULL)";
        let done = on_pool!(&self.ledger.store, |p| sqlx::query(sql)
            .bind(now + LEASE_MS)
            .bind(tree_size)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if done != 1 {
            return Ok(None);
        }
        let sql = format!("SELECT {RECORD_COLUMNS} FROM ledger_anchors WHERE tree_size = $1");
        Ok(on_pool!(&self.ledger.store, |p| sqlx::query_as(&sql)
            .bind(tree_size)
            .fetch_optional(p)
            .await)?)
    }
}
