//! RFC 6962 reference vectors, exhaustive proof checks up to 40 leaves, and
//! the tiled view against the full-list functions.

use super::*;

fn h(s: &str) -> Hash {
    let v = hex::decode(s).unwrap();
    v.try_into().unwrap()
}

/// The Certificate Transparency reference leaves and roots (RFC 6962 test data).
fn ct_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| leaf_hash(&hex::decode(s).unwrap()))
    .collect()
}

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn reference_roots() {
    let leaves = ct_leaves();
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(hex::encode(root(&leaves[..n])), *want, "size {n}");
    }
}

#[test]
fn reference_proofs() {
    let leaves = ct_leaves();
    let inclusion: &[(usize, usize, &[&str])] = &[
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (m, n, want) in inclusion {
        let got = inclusion_proof(*m, &leaves[..*n]).unwrap();
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(got, want, "inclusion {m} in {n}");
        assert!(verify_inclusion(
            *m as u64,
            *n as u64,
            &leaves[*m],
            &got,
            &h(ROOTS[*n])
        ));
    }
    let consistency: &[(usize, usize, &[&str])] = &[
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (m, n, want) in consistency {
        let got = consistency_proof(*m, &leaves[..*n]).unwrap();
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(got, want, "consistency {m} -> {n}");
        let (a, b) = (h(ROOTS[*m]), h(ROOTS[*n]));
        assert!(verify_consistency(*m as u64, *n as u64, &a, &b, &got));
    }
}

fn synthetic(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
        .collect()
}

fn flip(x: &Hash) -> Hash {
    let mut y = *x;
    y[7] ^= 0x40;
    y
}

#[test]
fn every_inclusion_proof_up_to_40_verifies_and_tampering_fails() {
    let all = synthetic(41);
    for n in 1..=40 {
        let leaves = &all[..n];
        let r = root(leaves);
        for m in 0..n {
            let p = inclusion_proof(m, leaves).unwrap();
            let (mi, ni) = (m as u64, n as u64);
            assert!(verify_inclusion(mi, ni, &leaves[m], &p, &r), "{m}/{n}");
            assert!(!verify_inclusion(mi, ni, &flip(&leaves[m]), &p, &r));
            assert!(!verify_inclusion(mi, ni, &leaves[m], &p, &flip(&r)));
            assert!(!verify_inclusion(ni, ni, &leaves[m], &p, &r));
            if n > 1 {
                assert!(!verify_inclusion(
                    (m as u64 + 1) % ni,
                    ni,
                    &leaves[m],
                    &p,
                    &r
                ));
                // (A path may fit a bigger size too, e.g. leaf 0 in 3 and in 4
                // leaves; the signed (size, root) pair is what binds the size.)
                assert!(!verify_inclusion(
                    mi,
                    ni + 1,
                    &leaves[m],
                    &p,
                    &root(&all[..n + 1])
                ));
            }
            for i in 0..p.len() {
                let mut bad = p.clone();
                bad[i] = flip(&bad[i]);
                assert!(!verify_inclusion(mi, ni, &leaves[m], &bad, &r));
            }
            let mut long = p.clone();
            long.push(r);
            assert!(!verify_inclusion(mi, ni, &leaves[m], &long, &r));
        }
        assert!(inclusion_proof(n, leaves).is_none());
    }
}

#[test]
fn every_consistency_proof_up_to_40_verifies_and_tampering_fails() {
    let all = synthetic(40);
    let roots: Vec<Hash> = (0..=40).map(|n| root(&all[..n])).collect();
    for n in 1..=40usize {
        for m in 1..=n {
            let p = consistency_proof(m, &all[..n]).unwrap();
            let (mi, ni) = (m as u64, n as u64);
            assert!(
                verify_consistency(mi, ni, &roots[m], &roots[n], &p),
                "{m}->{n}"
            );
            assert!(!verify_consistency(mi, ni, &flip(&roots[m]), &roots[n], &p));
            assert!(!verify_consistency(mi, ni, &roots[m], &flip(&roots[n]), &p));
            for i in 0..p.len() {
                let mut bad = p.clone();
                bad[i] = flip(&bad[i]);
                assert!(!verify_consistency(mi, ni, &roots[m], &roots[n], &bad));
            }
            if m < n {
                assert!(!verify_consistency(mi, ni, &roots[m], &roots[n], &[]));
                assert!(!verify_consistency(ni, mi, &roots[n], &roots[m], &p));
            }
        }
    }
    assert!(verify_consistency(0, 5, &roots[0], &roots[5], &[]));
    assert!(consistency_proof(0, &all).is_none());
}

/// The tile hashes of `leaves` (complete tiles only), from the full list.
fn tiles_of(leaves: &[Hash]) -> Vec<Hash> {
    leaves.chunks_exact(TILE_WIDTH as usize).map(root).collect()
}

/// The leaf runs a view of `size` leaves needs for `at` ([`view_tiles`]).
fn runs_of(leaves: &[Hash], size: u64, at: &[u64]) -> Vec<LeafRun> {
    view_tiles(size, at)
        .into_iter()
        .map(|t| {
            let start = t * TILE_WIDTH;
            let end = (start + TILE_WIDTH).min(size);
            LeafRun {
                start,
                hashes: leaves[start as usize..end as usize].to_vec(),
            }
        })
        .collect()
}

/// Leaf indices (or first tree sizes) worth checking in a tree of `n`.
fn probes(n: u64) -> Vec<u64> {
    let mut out = vec![0, 1, n / 2, n.saturating_sub(1), n.saturating_sub(2), n];
    for k in [1u64, 2, 3, 5] {
        for d in [0u64, 1] {
            out.push((TILE_WIDTH * k).saturating_sub(d));
            out.push(TILE_WIDTH * k + d);
        }
    }
    out.push(n / 3 * 2 + 1);
    out.sort_unstable();
    out.dedup();
    out
}

/// Checks the tiled root, and inclusion and consistency proofs for `ms`,
/// against the full-list functions over `leaves[..n]`. The view gets the
/// tiles below `n / 256` as hashes and exactly the leaves [`view_tiles`]
/// asks for; a second view has every complete tile of `leaves` (a cache
/// that knows more than the tree size needs must not change anything).
fn check_tiled(leaves: &[Hash], tiles: &[Hash], n: usize, ms: &[u64]) {
    let full = &leaves[..n];
    let size = n as u64;
    let configs = [&tiles[..n / TILE_WIDTH as usize], tiles];
    let want = root(full);
    for t in configs {
        let runs = runs_of(leaves, size, &[]);
        assert_eq!(
            TiledView::new(t, &runs).root(size),
            Some(want),
            "root of {n}"
        );
    }
    for &m in ms {
        let runs = runs_of(leaves, size, &[m]);
        let inclusion = inclusion_proof(m as usize, full);
        let consistency = consistency_proof(m as usize, full);
        let first = (m > 0 && m <= size).then(|| root(&full[..m as usize]));
        for t in configs {
            let view = TiledView::new(t, &runs);
            assert_eq!(
                view.inclusion_proof(m, size),
                inclusion,
                "inclusion {m} in {n}"
            );
            assert_eq!(
                view.consistency_proof(m, size),
                consistency,
                "consistency {m} -> {n}"
            );
            if m < size {
                assert_eq!(view.leaf(m), Some(full[m as usize]));
                assert_eq!(view.root(size), Some(want));
            }
            if let Some(first) = first {
                // The first tree's own root, from the same view.
                assert_eq!(view.root(m), Some(first), "root {m} in view of {n}");
            }
        }
    }
}

#[test]
fn the_tiled_view_equals_the_full_list_up_to_600() {
    let all = synthetic(600);
    let tiles = tiles_of(&all);
    for n in 0..=600usize {
        let size = n as u64;
        let mut ms = probes(size);
        // Every m for a few sizes around tile boundaries.
        if matches!(n, 1 | 256 | 257 | 513) {
            ms = (0..=size).collect();
        }
        check_tiled(&all, &tiles, n, &ms);
    }
}

#[test]
fn the_tiled_view_equals_the_full_list_for_large_trees() {
    let all = synthetic(256 * 70 + 3);
    let tiles = tiles_of(&all);
    for k in [4u64, 7, 8, 9, 33, 64, 70] {
        for n in [256 * k - 1, 256 * k, 256 * k + 1, 256 * k + 129] {
            if n as usize > all.len() {
                continue;
            }
            let mut ms = probes(n);
            ms.extend([256 * (k / 2), 256 * (k / 2) + 77, 256 * k - 256, 1000]);
            check_tiled(&all, &tiles, n as usize, &ms);
        }
    }
}

#[test]
fn a_tiled_view_missing_data_says_so() {
    let all = synthetic(700);
    let tiles = tiles_of(&all);
    // No leaves of the trailing partial tile.
    assert_eq!(TiledView::new(&tiles, &[]).root(700), None);
    // Only the tile hashes: enough for an aligned size.
    assert_eq!(
        TiledView::new(&tiles, &[]).root(512),
        Some(root(&all[..512]))
    );
    // A proof inside a complete tile needs that tile's leaves.
    let runs = runs_of(&all, 700, &[]);
    let view = TiledView::new(&tiles, &runs);
    assert_eq!(view.inclusion_proof(3, 700), None);
    assert_eq!(view.consistency_proof(3, 700), None);
    assert_eq!(view.inclusion_proof(700, 700), None);
    assert_eq!(view.consistency_proof(0, 700), None);
    assert_eq!(view.consistency_proof(701, 700), None);
    assert_eq!(view_tiles(700, &[3, 700, 256, 5]), vec![0, 1, 2]);
    assert_eq!(view_tiles(512, &[]), Vec::<u64>::new());
}
