//! RFC 6962 / RFC 9162 Merkle trees over SHA-256.
//!
//! - Leaf hash `SHA-256(0x00 || data)`, node hash `SHA-256(0x01 || l || r)`,
//!   and the Merkle Tree Hash `MTH(D[n])` splitting at the largest power of
//!   two smaller than `n` (RFC 9162 §2.1.1; the empty tree hashes to
//!   `SHA-256()`).
//! - Inclusion proofs `PATH(m, D[n])` (§2.1.3.1) and their verification
//!   (§2.1.3.2); consistency proofs `PROOF(m, D[n])` via `SUBPROOF`
//!   (§2.1.4.1) and their verification (§2.1.4.2). The verifiers are the
//!   RFC's iterative algorithms, independent of the generators.
//!
//! Generation works on the full list of leaf hashes and recomputes subtree
//! hashes as it recurses: O(n) hashing per proof and per root. Fine for the
//! ledger's current sizes; a persisted tile/compact-range cache (RFC 9162
//! §2.1.5-style) is the scale-up path.

use sha2::{Digest, Sha256};

/// A SHA-256 output.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)` (RFC 9162 §2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// `MTH(D[n])` over already-hashed leaves (RFC 9162 §2.1.1).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// `PATH(m, D[n])` (RFC 9162 §2.1.3.1); `None` when `m >= n`.
pub fn inclusion_proof(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(m, leaves, &mut path);
    Some(path)
}

fn path_into(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path_into(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path_into(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// `PROOF(m, D[n])` (RFC 9162 §2.1.4.1) for `0 < m <= n`; `None` otherwise.
/// `m == n` gives the empty proof.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(m, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf: &Hash,
    path: &[Hash],
    root_hash: &Hash,
) -> bool {
    if leaf_index >= tree_size {
        return false;
    }
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root_hash
}

/// Verifies a consistency proof between tree heads of sizes `first` and
/// `second` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal
/// hashes; a first size of 0 is consistent with anything (empty proof).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_hash: &Hash,
    second_hash: &Hash,
    path: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return path.is_empty() && first_hash == second_hash;
    }
    if first == 0 {
        return path.is_empty();
    }
    // 1. An empty path cannot prove 0 < first < second.
    if path.is_empty() {
        return false;
    }
    // 2. A power-of-two first tree is itself a node of the second: prepend it.
    let mut nodes: Vec<Hash> = Vec::with_capacity(path.len() + 1);
    if first.is_power_of_two() {
        nodes.push(*first_hash);
    }
    nodes.extend_from_slice(path);
    // 3-4.
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5.
    let (mut fr, mut sr) = (nodes[0], nodes[0]);
    // 6.
    for c in &nodes[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7.
    fr == *first_hash && sr == *second_hash && sn == 0
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
