use std::time::Duration;

use rcgen::{BasicConstraints, CustomExtension, IsCa, KeyUsagePurpose};

use super::test_pki::*;
use super::*;

fn crls() -> CrlCache {
    CrlCache::new(Duration::from_secs(2), Duration::from_secs(60))
}

async fn validate(x5c: &[String], anchors: &Anchors) -> Result<Verified, TrustError> {
    validate_chain(x5c, anchors, NOW, &crls()).await
}

#[tokio::test]
async fn valid_chain_verifies_and_reports_the_leaf() {
    let pki = Pki::new();
    let v = validate(&pki.x5c(), &pki.anchors()).await.unwrap();
    assert_eq!(v.san_uris, vec![ISS.to_owned()]);
    assert_eq!(v.leaf_der, pki.leaf.der);
    assert_eq!(v.subject, "CN=UDAP test client");
    assert_eq!(v.anchor_subject, "CN=Test Community Root");
    assert_eq!(v.not_after, 1_830_297_600); // 2028-01-01
}

#[tokio::test]
async fn anchor_included_in_x5c_and_intermediates_out_of_order() {
    let pki = Pki::new();
    let x5c = vec![pki.root.b64(), pki.inter.b64()];
    let x5c = [vec![pki.leaf.b64()], x5c].concat();
    validate(&x5c, &pki.anchors()).await.unwrap();
}

#[tokio::test]
async fn leaf_issued_by_an_anchor_directly() {
    let pki = Pki::new();
    let leaf = signed(leaf_params(ISS), ec_key(), &pki.root);
    validate(&[leaf.b64()], &pki.anchors()).await.unwrap();
}

#[tokio::test]
async fn leaf_signed_by_unrelated_ca_is_untrusted() {
    let pki = Pki::new();
    let leaf = signed(leaf_params(ISS), ec_key(), &pki.other);
    let err = validate(&[leaf.b64(), pki.inter.b64()], &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::UntrustedAnchor);
    // The whole unrelated chain, its root included, is not trusted either.
    let err = validate(&[leaf.b64(), pki.other.b64()], &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::UntrustedAnchor);
}

#[tokio::test]
async fn missing_intermediate_is_untrusted() {
    let pki = Pki::new();
    let err = validate(&[pki.leaf.b64()], &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::UntrustedAnchor);
}

#[tokio::test]
async fn forged_issuer_name_is_untrusted() {
    let pki = Pki::new();
    // Claims the intermediate's name but is signed by another key.
    let mut forger = ca_params("Test Community Intermediate");
    forger.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let forger = self_signed(forger, ec_key());
    let leaf = signed(leaf_params(ISS), ec_key(), &forger);
    let err = validate(&[leaf.b64(), pki.inter.b64()], &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::UntrustedAnchor);
    // Same for an anchor's name.
    let mut fake_root = ca_params("Test Community Root");
    fake_root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let fake_root = self_signed(fake_root, ec_key());
    let leaf = signed(leaf_params(ISS), ec_key(), &fake_root);
    let err = validate(&[leaf.b64()], &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::UntrustedAnchor);
}

#[tokio::test]
async fn expired_leaf() {
    let mut p = leaf_params(ISS);
    p.not_after = rcgen::date_time_ymd(2026, 6, 1);
    let pki = Pki::with_leaf(p, ec_key());
    let err = validate(&pki.x5c(), &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::Expired);
}

#[tokio::test]
async fn not_yet_valid_leaf() {
    let mut p = leaf_params(ISS);
    p.not_before = rcgen::date_time_ymd(2027, 6, 1);
    let pki = Pki::with_leaf(p, ec_key());
    let err = validate(&pki.x5c(), &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::NotYetValid);
}

#[tokio::test]
async fn expired_intermediate_and_expired_anchor() {
    let pki = Pki::new();
    let mut p = ca_params("Old Intermediate");
    p.not_after = rcgen::date_time_ymd(2026, 6, 1);
    let inter = signed(p, ec_key(), &pki.root);
    let leaf = signed(leaf_params(ISS), ec_key(), &inter);
    let err = validate(&[leaf.b64(), inter.b64()], &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::Expired);

    let mut p = ca_params("Old Root");
    p.not_after = rcgen::date_time_ymd(2026, 6, 1);
    let root = self_signed(p, ec_key());
    let leaf = signed(leaf_params(ISS), ec_key(), &root);
    let anchors = Anchors::from_pem(&root.pem()).unwrap();
    let err = validate(&[leaf.b64()], &anchors).await;
    assert_eq!(err.unwrap_err(), TrustError::Expired);
}

#[tokio::test]
async fn intermediate_without_ca_flag_is_not_a_ca() {
    for is_ca in [IsCa::ExplicitNoCa, IsCa::NoCa] {
        let pki = Pki::new();
        let mut p = ca_params("Not A CA");
        p.is_ca = is_ca;
        p.key_usages = vec![];
        let inter = signed(p, ec_key(), &pki.root);
        let leaf = signed(leaf_params(ISS), ec_key(), &inter);
        let err = validate(&[leaf.b64(), inter.b64()], &pki.anchors()).await;
        assert!(matches!(err, Err(TrustError::NotCa(_))), "{err:?}");
    }
}

#[tokio::test]
async fn path_len_constraint_is_enforced() {
    let mut p = ca_params("Constrained Root");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let root = self_signed(p, ec_key());
    let anchors = Anchors::from_pem(&root.pem()).unwrap();
    let inter = signed(ca_params("Inter"), ec_key(), &root);
    let leaf = signed(leaf_params(ISS), ec_key(), &inter);
    let err = validate(&[leaf.b64(), inter.b64()], &anchors).await;
    assert!(matches!(err, Err(TrustError::NotCa(_))), "{err:?}");
    // pathLen 0 still lets the root issue the leaf itself.
    let leaf = signed(leaf_params(ISS), ec_key(), &root);
    validate(&[leaf.b64()], &anchors).await.unwrap();
}

#[tokio::test]
async fn issuer_without_key_cert_sign_is_refused() {
    let pki = Pki::new();
    let mut p = ca_params("No keyCertSign");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let inter = signed(p, ec_key(), &pki.root);
    let leaf = signed(leaf_params(ISS), ec_key(), &inter);
    let err = validate(&[leaf.b64(), inter.b64()], &pki.anchors()).await;
    assert!(matches!(err, Err(TrustError::KeyUsage(_))), "{err:?}");
    // Without keyUsage at all, the CA flag is enough.
    let mut p = ca_params("No keyUsage");
    p.key_usages = vec![];
    let inter = signed(p, ec_key(), &pki.root);
    let leaf = signed(leaf_params(ISS), ec_key(), &inter);
    validate(&[leaf.b64(), inter.b64()], &pki.anchors())
        .await
        .unwrap();
}

#[tokio::test]
async fn leaf_without_digital_signature_is_refused() {
    let mut p = leaf_params(ISS);
    p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let pki = Pki::with_leaf(p, ec_key());
    let err = validate(&pki.x5c(), &pki.anchors()).await;
    assert!(matches!(err, Err(TrustError::KeyUsage(_))), "{err:?}");
    // No keyUsage at all is fine for the leaf.
    let mut p = leaf_params(ISS);
    p.key_usages = vec![];
    let pki = Pki::with_leaf(p, ec_key());
    validate(&pki.x5c(), &pki.anchors()).await.unwrap();
}

/// root → n intermediates → leaf, as (x5c, anchors).
fn deep_chain(n: usize) -> (Vec<String>, Anchors) {
    let root = self_signed(ca_params("Deep Root"), ec_key());
    let anchors = Anchors::from_pem(&root.pem()).unwrap();
    let mut chain = vec![root];
    for i in 0..n {
        let next = signed(ca_params(&format!("Deep {i}")), ec_key(), &chain[i]);
        chain.push(next);
    }
    let leaf = signed(leaf_params(ISS), ec_key(), &chain[n]);
    let mut x5c = vec![leaf.b64()];
    x5c.extend(chain[1..].iter().rev().map(Cert::b64));
    (x5c, anchors)
}

#[tokio::test]
async fn path_longer_than_five_is_refused() {
    let (x5c, anchors) = deep_chain(4);
    validate(&x5c, &anchors).await.unwrap();
    let (x5c, anchors) = deep_chain(5);
    let err = validate(&x5c, &anchors).await;
    assert!(matches!(err, Err(TrustError::Malformed(_))), "{err:?}");
}

#[tokio::test]
async fn unsupported_critical_extension_is_refused() {
    let mut p = leaf_params(ISS);
    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
    ext.set_criticality(true);
    p.custom_extensions = vec![ext];
    let pki = Pki::with_leaf(p, ec_key());
    let err = validate(&pki.x5c(), &pki.anchors()).await;
    assert!(matches!(err, Err(TrustError::Malformed(_))), "{err:?}");
    // The same extension, not critical, is ignored.
    let mut p = leaf_params(ISS);
    p.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 99999, 1],
        vec![5, 0],
    )];
    let pki = Pki::with_leaf(p, ec_key());
    validate(&pki.x5c(), &pki.anchors()).await.unwrap();
}

#[tokio::test]
async fn sha1_certificate_signature_is_refused() {
    // An RSA intermediate signs the leaf with sha256WithRSAEncryption; the
    // leaf is then relabelled sha1WithRSAEncryption (same OID length).
    let pki = Pki::new();
    let mut inter_params = ca_params("RSA Intermediate");
    inter_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let inter = signed(inter_params, rsa_key(), &pki.root);
    let leaf = signed(leaf_params(ISS), ec_key(), &inter);
    validate(&[leaf.b64(), inter.b64()], &pki.anchors())
        .await
        .unwrap();
    let sha256_rsa = [6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 0x0b];
    let mut der = leaf.der.clone();
    let mut patched = 0;
    for i in 0..der.len() - sha256_rsa.len() {
        if der[i..i + sha256_rsa.len()] == sha256_rsa {
            der[i + sha256_rsa.len() - 1] = 0x05;
            patched += 1;
        }
    }
    assert_eq!(patched, 2);
    let err = validate(&[b64(&der), inter.b64()], &pki.anchors()).await;
    assert!(matches!(err, Err(TrustError::Alg(_))), "{err:?}");
    // Only the TBS copy relabelled: the two algorithm fields disagree.
    let mut der = leaf.der.clone();
    let at = (0..der.len() - sha256_rsa.len())
        .find(|&i| der[i..i + sha256_rsa.len()] == sha256_rsa)
        .unwrap();
    der[at + sha256_rsa.len() - 1] = 0x05;
    let err = validate(&[b64(&der), inter.b64()], &pki.anchors()).await;
    assert!(matches!(err, Err(TrustError::Malformed(_))), "{err:?}");
}

#[tokio::test]
async fn garbage_x5c_is_malformed() {
    let pki = Pki::new();
    for x5c in [
        vec!["not base64!".to_owned()],
        vec![b64(b"not a certificate")],
        vec![b64(&[pki.leaf.der.clone(), vec![0]].concat())],
        vec![pki.leaf.b64(); MAX_X5C + 1],
    ] {
        let err = validate(&x5c, &pki.anchors()).await;
        assert!(matches!(err, Err(TrustError::Malformed(_))), "{err:?}");
    }
    let err = validate(&[], &pki.anchors()).await;
    assert_eq!(err.unwrap_err(), TrustError::MissingX5c);
}

#[test]
fn anchors_from_pem_requires_ca_certificates() {
    let pki = Pki::new();
    let two = format!("{}{}", pki.root.pem(), pki.other.pem());
    assert_eq!(Anchors::from_pem(&two).unwrap().len(), 2);
    assert!(!Anchors::from_pem(&two).unwrap().is_empty());
    let err = Anchors::from_pem(&pki.leaf.pem());
    assert!(matches!(err, Err(TrustError::NotCa(_))), "{err:?}");
    let err = Anchors::from_pem(&pki.inter.pem().replace("CERTIFICATE", "PRIVATE KEY"));
    assert!(matches!(err, Err(TrustError::Malformed(_))), "{err:?}");
    for bad in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
    ] {
        let err = Anchors::from_pem(bad);
        assert!(
            matches!(err, Err(TrustError::Malformed(_))),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn anchors_from_pem_files_concatenates() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.pem");
    let b = dir.path().join("b.pem");
    std::fs::write(&a, pki.root.pem()).unwrap();
    std::fs::write(&b, pki.other.pem()).unwrap();
    assert_eq!(Anchors::from_pem_files(&[a.clone(), b]).unwrap().len(), 2);
    let err = Anchors::from_pem_files(&[a, dir.path().join("missing.pem")]);
    assert!(matches!(err, Err(TrustError::Malformed(_))), "{err:?}");
}
