//! `fhirgate ledger verify`: recompute everything from the stored entries and
//! report the first problem.
//!
//! For each seq in order: the row exists (no gap), `entry` is canonical
//! RFC 8785 JSON, the leaf hash recomputed from the record matches the
//! stored one (RFC 9162 §2.1.1), and the chain hash recomputed from the
//! previous one matches. Then the head matches the last entry, and every
//! checkpoint's root equals `MTH(D[tree_size])` recomputed from the
//! recomputed leaves, its JWS verifies under the server's key set, and its
//! signed claims equal the stored columns. An attacker who rewrites an entry
//! *and* every later hash is caught by the first checkpoint after it; the
//! report then names the range of seqs between the last good checkpoint and
//! that one (the exact seq is unknowable without the original leaves).
//! Last, every stored Merkle tile (`ledger_tiles`, which checkpoints and
//! proofs are computed from) must equal the hash recomputed from its 256
//! leaves; a tile that does not is reported as a [`Problem::Entry`] at the
//! tile's first seq (its reason names the tile): either the tile or an
//! entry in its range was rewritten, and a later checkpoint would be signed
//! over it.
//!
//! Verification deliberately uses the full-list Merkle functions, not the
//! tiles. Cost: one pass over the entries (paged), plus O(n) per checkpoint.

use serde_json::Value;
use smart_launch::keys::{KeySet, VerifyOptions};

use super::{
    jcs,
    ledger::{
        chain_hash, leaf_bytes, parse_hash, CheckpointClaims, Ledger, LedgerError, StoredEntry,
        CHECKPOINT_TYP, GENESIS,
    },
    merkle::{self, Hash},
};

/// Rows read per page.
const PAGE: u64 = 5_000;
/// Stored tiles read per page.
const TILE_PAGE: i64 = 4_096;

/// The first problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Entry `seq` is missing or does not match its hashes.
    Entry {
        /// The first bad seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The head row disagrees with the entries.
    Head(String),
    /// A checkpoint does not match the recomputed tree or its signature.
    Checkpoint {
        /// The checkpoint's tree size.
        tree_size: u64,
        /// When the root does not match: entries `[from_seq, tree_size)`
        /// hold the rewrite (everything before is covered by a good checkpoint).
        from_seq: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Entry { seq, reason } => write!(f, "first bad entry: seq {seq}: {reason}"),
            Self::Head(reason) => write!(f, "ledger head: {reason}"),
            Self::Checkpoint { tree_size, from_seq: Some(from), reason } => write!(
                f,
                "checkpoint at tree size {tree_size}: {reason}: the first bad entry is in seq {from}..={}",
                tree_size.saturating_sub(1)
            ),
            Self::Checkpoint { tree_size, from_seq: None, reason } => {
                write!(f, "checkpoint at tree size {tree_size}: {reason}")
            }
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Hex root of the whole tree (as recomputed).
    pub root_hash: String,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// Whether everything verified.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

fn check_row(row: &StoredEntry, seq: u64, prev: &Hash) -> Result<(Hash, Hash), String> {
    if row.seq as u64 != seq {
        return Err(format!("missing (the next stored seq is {})", row.seq));
    }
    let entry: Value =
        serde_json::from_str(&row.entry).map_err(|e| format!("entry is not JSON: {e}"))?;
    if jcs::canonical_string(&entry) != row.entry {
        return Err("entry is not in canonical form (RFC 8785)".into());
    }
    let leaf = leaf_bytes(seq, row.created_at, row.request_id.as_deref(), &entry);
    let leaf_hash = merkle::leaf_hash(&leaf);
    if parse_hash(&row.leaf_hash) != Some(leaf_hash) {
        return Err("leaf hash does not match the entry".into());
    }
    let chained = chain_hash(prev, &leaf);
    if parse_hash(&row.chain_hash) != Some(chained) {
        return Err("chain hash does not match the previous entry and this one".into());
    }
    Ok((leaf_hash, chained))
}

impl Ledger {
    /// Recomputes the chain and the tree and checks every checkpoint.
    pub async fn verify(&self, keys: &KeySet) -> Result<VerifyReport, LedgerError> {
        let mut leaves: Vec<Hash> = Vec::new();
        let mut prev = GENESIS;
        let mut report = VerifyReport {
            entries: 0,
            checkpoints: 0,
            root_hash: String::new(),
            problem: None,
        };
        'pages: loop {
            let rows = self.entries(leaves.len() as u64, PAGE).await?;
            let n = rows.len() as u64;
            for row in &rows {
                let seq = leaves.len() as u64;
                match check_row(row, seq, &prev) {
                    Ok((leaf, chained)) => {
                        leaves.push(leaf);
                        prev = chained;
                    }
                    Err(reason) => {
                        report.problem = Some(Problem::Entry { seq, reason });
                        break 'pages;
                    }
                }
            }
            if n < PAGE {
                break;
            }
        }
        report.entries = leaves.len() as u64;
        report.root_hash = hex::encode(merkle::root(&leaves));
        if report.problem.is_some() {
            return Ok(report);
        }
        let head_sql = "SELECT size, chain_hash FROM ledger_head WHERE id = 0";
        let (size, head): (i64, String) =
            super::ledger::on_pool!(&self.store, |p| sqlx::query_as(head_sql).fetch_one(p).await)?;
        if size as u64 != report.entries {
            // Entries beyond the head, or the head beyond the entries (deleted tail).
            let seq = report.entries.min(size.max(0) as u64);
            report.problem = Some(Problem::Entry {
                seq,
                reason: format!(
                    "the head says {size} entries, {} are stored",
                    report.entries
                ),
            });
            return Ok(report);
        }
        if parse_hash(&head) != Some(prev) {
            report.problem = Some(Problem::Head(
                "chain hash differs from the last entry's".into(),
            ));
            return Ok(report);
        }
        let mut good_size = 0u64;
        for c in self.checkpoints().await? {
            report.checkpoints += 1;
            let tree_size = c.tree_size.max(0) as u64;
            let bad = |reason: String| Problem::Checkpoint {
                tree_size,
                from_seq: None,
                reason,
            };
            if tree_size > report.entries {
                report.problem = Some(bad(format!(
                    "covers more than the {} stored entries",
                    report.entries
                )));
                return Ok(report);
            }
            if parse_hash(&c.root_hash) != Some(merkle::root(&leaves[..tree_size as usize])) {
                report.problem = Some(Problem::Checkpoint {
                    tree_size,
                    from_seq: Some(good_size),
                    reason: "root hash does not match the entries".into(),
                });
                return Ok(report);
            }
            let options = VerifyOptions {
                now: c.created_at.div_euclid(1000),
                leeway_secs: 0,
                issuer: None,
                audience: None,
                typ: Some(CHECKPOINT_TYP),
            };
            match keys.verify::<CheckpointClaims>(&c.signature, &options) {
                Ok(claims)
                    if claims.tree_size == tree_size
                        && claims.root_hash == c.root_hash
                        && claims.time == c.created_at => {}
                Ok(_) => {
                    report.problem =
                        Some(bad("signed claims differ from the stored checkpoint".into()));
                    return Ok(report);
                }
                Err(e) => {
                    report.problem = Some(bad(format!("signature does not verify: {e}")));
                    return Ok(report);
                }
            }
            good_size = tree_size;
        }
        report.problem = self.check_tiles(&leaves).await?;
        Ok(report)
    }

    /// Checks every stored tile against `leaves` (all of them, recomputed).
    async fn check_tiles(&self, leaves: &[Hash]) -> Result<Option<Problem>, LedgerError> {
        let width = merkle::TILE_WIDTH as usize;
        let sql = "SELECT idx, hash FROM ledger_tiles WHERE idx >= $1 ORDER BY idx LIMIT $2";
        let mut from = 0i64;
        loop {
            let rows: Vec<(i64, String)> = super::ledger::on_pool!(&self.store, |p| {
                sqlx::query_as(sql)
                    .bind(from)
                    .bind(TILE_PAGE)
                    .fetch_all(p)
                    .await
            })?;
            for (idx, hash) in &rows {
                let start = (*idx).max(0) as usize * width;
                let bad = |reason: String| {
                    Some(Problem::Entry {
                        seq: start as u64,
                        reason: format!(
                            "the stored Merkle tile {idx} (ledger_tiles, seqs {start}..={}) {reason}",
                            start + width - 1
                        ),
                    })
                };
                if *idx < 0 || start + width > leaves.len() {
                    return Ok(bad(format!(
                        "covers more than the {} stored entries",
                        leaves.len()
                    )));
                }
                if parse_hash(hash) != Some(merkle::root(&leaves[start..start + width])) {
                    return Ok(bad(
                        "does not match these entries: the tile or an entry in it was rewritten"
                            .into(),
                    ));
                }
            }
            match rows.last() {
                Some((idx, _)) if rows.len() as i64 == TILE_PAGE => from = idx + 1,
                _ => return Ok(None),
            }
        }
    }
}
