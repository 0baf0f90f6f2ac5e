//! The anchor exporter (issue 5 item 5): every signed checkpoint of the
//! ledger is also written to Azure Confidential Ledger, so that rewriting
//! fhirgate's own store cannot go unnoticed even by whoever controls it.
//!
//! Wire protocol (data plane, `api-version=2022-05-13`, the GA version; REST
//! spec `Microsoft.ConfidentialLedger/stable/2022-05-13/confidentialledger.json`):
//! - `POST {ledger_url}/app/transactions?api-version=…[&collectionId=…]`
//!   (`CreateLedgerEntry`), `Authorization: Bearer <Entra ID token>` (client
//!   credentials, scope `https://confidential-ledger.azure.com/.default`),
//!   JSON body `{"contents": "<string>"}`. 200 answers the transaction id in
//!   the `x-ms-ccf-transaction-id` header and `{"collectionId": …}`.
//! - `GET {ledger_url}/app/transactions/{transactionId}/receipt?api-version=…`
//!   (`GetReceipt`): `{"state": "Loading"}` until the transaction is
//!   committed, then `{"state": "Ready", "receipt": {…}, "transactionId": …}`.
//!
//! `contents` is the RFC 8785 canonical JSON of [`contents`]: the tree size,
//! root hash and time of the checkpoint and the size and root of the one
//! before it. Hashes and counts only: no PHI, no pseudonym, no request id.
//!
//! Runs in a background task ([`Anchor::spawn`]); a failure is logged and
//! retried (exponential backoff within a pass, then again on a later pass),
//! never seen by a request. The HTTP calls are in `wire`; the state is the
//! `ledger_anchors` table (migration `0006_anchor.sql`, `rows`): a replica
//! claims a row for a lease before posting, so replicas on one PostgreSQL do
//! not post the same checkpoint twice (after a crash mid-post the lease
//! expires and the checkpoint may be posted again, with the same contents).

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use url::Url;

use super::{
    jcs,
    ledger::{on_pool, Checkpoint, Ledger, LedgerError},
};
use crate::{config::AnchorConfig, upstream::http::auth::EntraToken};

mod rows;
mod wire;

pub use rows::records;

/// The response header carrying the transaction id.
pub const TRANSACTION_ID_HEADER: &str = "x-ms-ccf-transaction-id";
/// How long a replica owns a row it is posting, ms.
const LEASE_MS: i64 = 10 * 60 * 1000;
/// Longest wait before a failed row is tried again on a later pass, ms.
const MAX_PASS_BACKOFF_MS: i64 = 15 * 60 * 1000;
/// Checkpoints taken up per pass.
const BATCH: i64 = 100;
/// Longest error text kept in `last_error`.
const ERROR_CHARS: usize = 300;

/// Retry timing within one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Attempts per request (POST, or receipt polls) before giving up for this pass.
    pub tries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            tries: 6,
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `n` (0-based): `initial * 2^n`, at most `max`.
    pub fn delay(&self, n: u32) -> Duration {
        self.initial
            .saturating_mul(1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX))
            .min(self.max)
    }
}

/// One row of `ledger_anchors`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AnchorRecord {
    /// The checkpoint's tree size.
    pub tree_size: i64,
    /// Its root hash (hex).
    pub root_hash: String,
    /// The checkpoint before it.
    pub previous_tree_size: Option<i64>,
    /// Its root hash.
    pub previous_root_hash: Option<String>,
    /// The string posted as `contents`.
    pub contents: String,
    /// `x-ms-ccf-transaction-id`, once accepted.
    pub transaction_id: Option<String>,
    /// The collection Azure wrote to.
    pub collection_id: Option<String>,
    /// The `receipt` object (JSON text), once Ready.
    pub receipt: Option<String>,
    /// Failed passes so far.
    pub attempts: i64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

const RECORD_COLUMNS: &str = "tree_size, root_hash, previous_tree_size, previous_root_hash, contents, transaction_id, collection_id, receipt, attempts, last_error, created_at, updated_at";

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Checkpoints posted (transaction id stored).
    pub posted: usize,
    /// Receipts stored.
    pub receipts: usize,
    /// Rows that failed this pass (logged; tried again later).
    pub failed: usize,
}

/// The anchored contents of `checkpoint`: canonical JSON of
/// `{tree_size, root_hash, previous_tree_size, previous_root_hash, time}`
/// (`time` is the checkpoint's, ms since the epoch; `previous_*` are null
/// for the first checkpoint).
pub fn contents(checkpoint: &Checkpoint, previous: Option<&Checkpoint>) -> String {
    jcs::canonical_string(&json!({
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "previous_tree_size": previous.map(|p| p.tree_size),
        "previous_root_hash": previous.map(|p| p.root_hash.as_str()),
        "time": checkpoint.created_at,
    }))
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn clip(s: &str) -> String {
    s.chars().take(ERROR_CHARS).collect()
}

/// The exporter: configuration, HTTP client, token source, ledger.
pub struct Anchor {
    ledger: Ledger,
    http: reqwest::Client,
    token: EntraToken,
    /// `{ledger_url}/app/transactions`.
    transactions: Url,
    api_version: String,
    collection_id: Option<String>,
    poll: Duration,
    backoff: Backoff,
}

impl Anchor {
    /// An exporter for `cfg` writing its state next to `ledger`.
    pub fn new(cfg: &AnchorConfig, ledger: Ledger) -> anyhow::Result<Self> {
        cfg.validate()
            .map_err(|(key, msg)| anyhow::anyhow!("config key `{key}`: {msg}"))?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            // A redirect could send our token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = cfg.ledger_url.as_str().trim_end_matches('/');
        let transactions = Url::parse(&format!("{base}/app/transactions"))?;
        Ok(Self {
            token: EntraToken::new(&cfg.entra(), &http),
            ledger,
            http,
            transactions,
            api_version: cfg.api_version.clone(),
            collection_id: cfg.collection_id.clone(),
            poll: Duration::from_secs(cfg.poll_secs.max(1)),
            backoff: Backoff::default(),
        })
    }

    /// The same exporter with other retry timing (tests use milliseconds).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Runs passes every `poll_secs` until the process ends.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tracing::info!(url = %self.transactions, "ledger anchor exporter started");
            loop {
                match self.run_once().await {
                    Ok(r) if r != PassReport::default() => tracing::info!(
                        posted = r.posted,
                        receipts = r.receipts,
                        failed = r.failed,
                        "ledger anchor pass"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "ledger anchor pass failed"),
                }
                tokio::time::sleep(self.poll).await;
            }
        })
    }

    /// One pass: queue the checkpoints not yet anchored, then post each
    /// queued one and fetch its receipt.
    pub async fn run_once(&self) -> Result<PassReport, LedgerError> {
        self.enqueue().await?;
        let mut report = PassReport::default();
        for due in self.due().await? {
            // Another replica may have taken or finished it meanwhile.
            if let Some(row) = self.claim(due.tree_size).await? {
                self.process(row, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Posts (if not yet posted) and fetches the receipt of one claimed row.
    async fn process(&self, row: AnchorRecord, report: &mut PassReport) -> Result<(), LedgerError> {
        let size = row.tree_size;
        let transaction_id = match row.transaction_id {
            Some(t) => t,
            None => match self.retrying(|| self.post(&row.contents)).await {
                Ok(Some((id, collection))) => {
                    let sql = "UPDATE ledger_anchors SET transaction_id = $1, collection_id = $2, last_error = NULL, updated_at = $3 WHERE tree_size = $4";
                    on_pool!(&self.ledger.store, |p| sqlx::query(sql)
                        .bind(&id)
                        .bind(&collection)
                        .bind(now_ms())
                        .bind(size)
                        .execute(p)
                        .await
                        .map(|_| ()))?;
                    tracing::info!(tree_size = size, transaction_id = %id, "ledger checkpoint anchored");
                    report.posted += 1;
                    id
                }
                Ok(None) => {
                    let e = "no answer";
                    return self.failed(size, row.attempts, "post", e, report).await;
                }
                Err(e) => {
                    return self
                        .failed(size, row.attempts, "post", e.text(), report)
                        .await
                }
            },
        };
        match self.retrying(|| self.receipt(&transaction_id)).await {
            Ok(Some(receipt)) => {
                let sql = "UPDATE ledger_anchors SET receipt = $1, claimed_until = 0, last_error = NULL, updated_at = $2 WHERE tree_size = $3";
                on_pool!(&self.ledger.store, |p| sqlx::query(sql)
                    .bind(receipt.to_string())
                    .bind(now_ms())
                    .bind(size)
                    .execute(p)
                    .await
                    .map(|_| ()))?;
                report.receipts += 1;
                Ok(())
            }
            Ok(None) => {
                // Committed later: poll again on a later pass, without a failure.
                let sql = "UPDATE ledger_anchors SET claimed_until = $1, updated_at = $2 WHERE tree_size = $3";
                let now = now_ms();
                on_pool!(&self.ledger.store, |p| sqlx::query(sql)
                    .bind(now + self.poll.as_millis() as i64)
                    .bind(now)
                    .bind(size)
                    .execute(p)
                    .await
                    .map(|_| ()))?;
                Ok(())
            }
            Err(e) => {
                self.failed(size, row.attempts, "receipt", e.text(), report)
                    .await
            }
        }
    }

    /// Records a failed pass for a row and backs it off.
    async fn failed(
        &self,
        size: i64,
        attempts: i64,
        what: &str,
        error: &str,
        report: &mut PassReport,
    ) -> Result<(), LedgerError> {
        tracing::warn!(tree_size = size, attempts = attempts + 1, error = %error, "ledger anchor {what} failed; will retry");
        let wait = (self.poll.as_millis() as i64)
            .saturating_mul(1i64 << attempts.clamp(0, 20))
            .min(MAX_PASS_BACKOFF_MS);
        let now = now_ms();
        let sql = "UPDATE ledger_anchors SET attempts = attempts + 1, last_error = $1, claimed_until = $2, updated_at = $3 WHERE tree_size = $4";
        on_pool!(&self.ledger.store, |p| sqlx::query(sql)
            .bind(clip(&format!("{what}: {error}")))
            .bind(now + wait)
            .bind(now)
            .bind(size)
            .execute(p)
            .await
            .map(|_| ()))?;
        report.failed += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            tries: 5,
        };
        let d: Vec<u128> = (0..6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn contents_are_canonical_and_carry_no_more_than_the_tree_head() {
        let cp = |size: i64, root: &str, t: i64| Checkpoint {
            tree_size: size,
            root_hash: root.into(),
            created_at: t,
            signature: "jws".into(),
        };
        let first = contents(&cp(5, "aa", 1000), None);
        assert_eq!(
            first,
            r#"{"previous_root_hash":null,"previous_tree_size":null,"root_hash":"aa","time":1000,"tree_size":5}"#
        );
        let next = contents(&cp(9, "bb", 2000), Some(&cp(5, "aa", 1000)));
        assert_eq!(
            next,
            r#"{"previous_root_hash":"aa","previous_tree_size":5,"root_hash":"bb","time":2000,"tree_size":9}"#
        );
    }
}
