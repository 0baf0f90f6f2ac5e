//! RFC 9162 proofs out of the stored ledger: inclusion (§2.1.3) and
//! consistency (§2.1.4), hex-encoded with the RFC's field names. Generation
//! works on the ledger's Merkle tiles ([`super::merkle::TiledView`]): the tile
//! hashes plus the leaves of at most three tiles, not every leaf hash.

use serde::Serialize;
use serde_json::Value;

use super::ledger::{leaf_bytes, Checkpoint, Ledger, LedgerError};

/// An RFC 9162 inclusion proof, hex-encoded (`fhirgate ledger proof`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InclusionProof {
    /// The entry's seq.
    pub leaf_index: u64,
    /// Size of the tree proven against.
    pub tree_size: u64,
    /// `SHA-256(0x00 || leaf_data)`.
    pub leaf_hash: String,
    /// `PATH(leaf_index, D[tree_size])`.
    pub audit_path: Vec<String>,
    /// `MTH(D[tree_size])`.
    pub root_hash: String,
    /// The leaf bytes (canonical JSON), so a checker can rehash them.
    pub leaf_data: String,
}

/// An RFC 9162 consistency proof, hex-encoded (`fhirgate ledger consistency`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsistencyProof {
    /// Older tree size.
    pub first: u64,
    /// Newer tree size.
    pub second: u64,
    /// `MTH(D[first])`.
    pub first_hash: String,
    /// `MTH(D[second])`.
    pub second_hash: String,
    /// `PROOF(first, D[second])`.
    pub consistency_path: Vec<String>,
}

/// An inclusion proof with the checkpoint it is against (`null` when it is
/// against the current, not yet checkpointed tree): the JSON `fhirgate ledger
/// proof` prints and `GET /admin/api/ledger/proof/{seq}` answers.
pub fn proof_json(proof: &InclusionProof, checkpoint: Option<&Checkpoint>) -> Value {
    let mut out = serde_json::to_value(proof).unwrap_or(Value::Null);
    out["checkpoint"] = serde_json::to_value(checkpoint).unwrap_or(Value::Null);
    out
}

impl Ledger {
    /// The inclusion proof of `seq` against the latest checkpoint when that
    /// covers it, else against the current tree (no checkpoint).
    pub async fn proof_against_latest(
        &self,
        seq: u64,
    ) -> Result<(InclusionProof, Option<Checkpoint>), LedgerError> {
        let (tree_size, checkpoint) = match self.latest_checkpoint().await? {
            Some(c) if c.tree_size as u64 > seq => (c.tree_size as u64, Some(c)),
            _ => (self.size().await?, None),
        };
        Ok((self.inclusion_proof(seq, tree_size).await?, checkpoint))
    }

    /// The inclusion proof of `seq` in the tree of `tree_size` leaves.
    pub async fn inclusion_proof(
        &self,
        seq: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, LedgerError> {
        let size = self.size().await?;
        if seq >= tree_size || tree_size > size {
            return Err(LedgerError::Range(format!(
                "no inclusion proof for seq {seq} in a tree of {tree_size} (the ledger has {size} entries)"
            )));
        }
        let (leaf_hash, path, root) = self
            .tiled(tree_size, &[seq], |v| {
                Some((
                    v.leaf(seq)?,
                    v.inclusion_proof(seq, tree_size)?,
                    v.root(tree_size)?,
                ))
            })
            .await?;
        let row = self
            .entries(seq, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| LedgerError::Corrupt(format!("seq {seq} is missing")))?;
        let entry: Value = serde_json::from_str(&row.entry)
            .map_err(|e| LedgerError::Corrupt(format!("entry {seq}: {e}")))?;
        let leaf = leaf_bytes(seq, row.created_at, row.request_id.as_deref(), &entry);
        Ok(InclusionProof {
            leaf_index: seq,
            tree_size,
            leaf_hash: hex::encode(leaf_hash),
            audit_path: path.iter().map(hex::encode).collect(),
            root_hash: hex::encode(root),
            leaf_data: String::from_utf8_lossy(&leaf).into_owned(),
        })
    }

    /// The consistency proof between tree sizes `first` and `second`.
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, LedgerError> {
        let size = self.size().await?;
        if first == 0 || first > second || second > size {
            return Err(LedgerError::Range(format!(
                "no consistency proof from {first} to {second}: need 0 < first <= second <= {size}"
            )));
        }
        let (first_hash, second_hash, path) = self
            .tiled(second, &[first], |v| {
                Some((
                    v.root(first)?,
                    v.root(second)?,
                    v.consistency_proof(first, second)?,
                ))
            })
            .await?;
        Ok(ConsistencyProof {
            first,
            second,
            first_hash: hex::encode(first_hash),
            second_hash: hex::encode(second_hash),
            consistency_path: path.iter().map(hex::encode).collect(),
        })
    }
}
