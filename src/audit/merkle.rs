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
//! Two ways to generate:
//! - [`root`], [`inclusion_proof`], [`consistency_proof`] work on the full
//!   list of leaf hashes and recompute subtree hashes as they recurse: O(n)
//!   hashing per proof and per root. `fhirgate ledger verify` uses them,
//!   deliberately recomputing everything from the entries.
//! - [`TiledView`] gives the same results from a *tiled view*: the hashes of
//!   the complete, aligned tiles of [`TILE_WIDTH`] leaves (tile `i` is
//!   `MTH(D[i*256 .. (i+1)*256])`) plus the leaf hashes of the few partial
//!   ranges a hash needs ([`view_tiles`]). Every left subtree of an MTH split
//!   is perfect and aligned, so a range that is a whole number of aligned
//!   tiles hashes as `MTH` over those tiles' hashes: a root or proof of size
//!   `n` costs O(n/256 + 256 + log n) hashing. The ledger persists the tile
//!   hashes (`ledger_tiles`, see [`super::ledger`]).

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

/// log2 of [`TILE_WIDTH`].
pub const TILE_HEIGHT: u32 = 8;
/// Leaves per tile: 256.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split64(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Whether `i` is a multiple of [`TILE_WIDTH`] (a tile boundary).
fn aligned(i: u64) -> bool {
    i & (TILE_WIDTH - 1) == 0
}

/// Leaf hashes of consecutive leaves from `start` on, for a [`TiledView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafRun {
    /// Index of the first leaf.
    pub start: u64,
    /// Their hashes, in order.
    pub hashes: Vec<Hash>,
}

/// The tiles (indices, ascending, no duplicates) whose leaves a
/// [`TiledView`] of the first `size` leaves needs, clipped to `size`, to
/// hash the root of `size` and proofs about the leaves or tree sizes in
/// `at`: the tile holding each `at` below `size`, and the trailing partial
/// tile. For an inclusion proof of `m` pass `[m]`; for a consistency proof
/// from `first` pass `[first]` (its partial tile; also correct when `first`
/// is aligned). Tiles below `size / TILE_WIDTH` come as hashes.
pub fn view_tiles(size: u64, at: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = at
        .iter()
        .filter(|&&x| x < size)
        .map(|x| x / TILE_WIDTH)
        .collect();
    if !aligned(size) {
        out.push(size / TILE_WIDTH);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A tiled view of a tree's leaves: the hashes of the complete tiles
/// `0..tiles.len()` and some runs of leaf hashes. Its methods give what
/// [`root`], [`inclusion_proof`] and [`consistency_proof`] give over the full
/// list, or `None` when the view lacks a tile or leaf they need (or, like
/// those functions, when the sizes are out of range).
#[derive(Debug, Clone, Copy)]
pub struct TiledView<'a> {
    tiles: &'a [Hash],
    runs: &'a [LeafRun],
}

impl<'a> TiledView<'a> {
    /// `tiles[i] = MTH(D[i*TILE_WIDTH .. (i+1)*TILE_WIDTH])`; `runs` hold
    /// leaf hashes (any order; [`view_tiles`] says which a hash needs).
    pub fn new(tiles: &'a [Hash], runs: &'a [LeafRun]) -> Self {
        Self { tiles, runs }
    }

    /// The leaf hashes `lo..hi`, when one run holds them.
    fn leaves(&self, lo: u64, hi: u64) -> Option<&'a [Hash]> {
        self.runs.iter().find_map(|r| {
            let end = r.start + r.hashes.len() as u64;
            (r.start <= lo && hi <= end)
                .then(|| &r.hashes[(lo - r.start) as usize..(hi - r.start) as usize])
        })
    }

    /// The hash of leaf `i`.
    pub fn leaf(&self, i: u64) -> Option<Hash> {
        self.leaves(i, i + 1).map(|l| l[0])
    }

    /// `MTH(D[lo..hi])` for `lo < hi`, a range of the MTH recursion from 0.
    fn range(&self, lo: u64, hi: u64) -> Option<Hash> {
        if aligned(lo) && aligned(hi) {
            let (a, b) = ((lo / TILE_WIDTH) as usize, (hi / TILE_WIDTH) as usize);
            if b <= self.tiles.len() {
                // 256·k leaves split at 256·split(k): MTH over the tiles.
                return Some(root(&self.tiles[a..b]));
            }
        }
        if let Some(leaves) = self.leaves(lo, hi) {
            return Some(root(leaves));
        }
        if hi - lo <= 1 {
            return None;
        }
        let k = split64(hi - lo);
        Some(node_hash(
            &self.range(lo, lo + k)?,
            &self.range(lo + k, hi)?,
        ))
    }

    /// `MTH(D[size])`, as [`root`].
    pub fn root(&self, size: u64) -> Option<Hash> {
        if size == 0 {
            return Some(Sha256::digest([]).into());
        }
        self.range(0, size)
    }

    /// `PATH(m, D[size])`, as [`inclusion_proof`].
    pub fn inclusion_proof(&self, m: u64, size: u64) -> Option<Vec<Hash>> {
        if m >= size {
            return None;
        }
        let mut path = Vec::new();
        self.path_into(m, 0, size, &mut path)?;
        Some(path)
    }

    fn path_into(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) -> Option<()> {
        if hi - lo <= 1 {
            return Some(());
        }
        let k = split64(hi - lo);
        if m < lo + k {
            self.path_into(m, lo, lo + k, out)?;
            out.push(self.range(lo + k, hi)?);
        } else {
            self.path_into(m, lo + k, hi, out)?;
            out.push(self.range(lo, lo + k)?);
        }
        Some(())
    }

    /// `PROOF(m, D[size])`, as [`consistency_proof`].
    pub fn consistency_proof(&self, m: u64, size: u64) -> Option<Vec<Hash>> {
        if m == 0 || m > size {
            return None;
        }
        let mut proof = Vec::new();
        self.subproof(m, 0, size, true, &mut proof)?;
        Some(proof)
    }

    /// `SUBPROOF(m - lo, D[lo..hi], complete)`, `m` absolute.
    fn subproof(
        &self,
        m: u64,
        lo: u64,
        hi: u64,
        complete: bool,
        out: &mut Vec<Hash>,
    ) -> Option<()> {
        if m == hi {
            if !complete {
                out.push(self.range(lo, hi)?);
            }
            return Some(());
        }
        let k = split64(hi - lo);
        if m <= lo + k {
            self.subproof(m, lo, lo + k, complete, out)?;
            out.push(self.range(lo + k, hi)?);
        } else {
            self.subproof(m, lo + k, hi, false, out)?;
            out.push(self.range(lo, lo + k)?);
        }
        Some(())
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
