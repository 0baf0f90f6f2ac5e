//! RFC 6962 reference vectors and exhaustive proof checks up to 40 leaves.

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
