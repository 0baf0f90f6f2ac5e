use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, StatusCode, Uri};
use rcgen::{
    date_time_ymd, CertificateRevocationListParams, CrlDistributionPoint,
    CrlIssuingDistributionPoint, CrlScope, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;

use super::*;
use crate::udap::trust::test_pki::*;
use crate::udap::trust::{validate_chain, Anchors, Verified};

/// A CRL server on 127.0.0.1: path → body, counting requests.
struct Server {
    base: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Self {
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let (f, h) = (Arc::clone(&files), Arc::clone(&hits));
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let (f, h) = (Arc::clone(&f), Arc::clone(&h));
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                if uri.path() == "/redirect.crl" {
                    return (
                        StatusCode::FOUND,
                        [(header::LOCATION, "/inter.crl")],
                        vec![],
                    );
                }
                match f.lock().unwrap().get(uri.path()) {
                    Some(body) => (
                        StatusCode::OK,
                        [(header::CACHE_CONTROL, "no-store")],
                        body.clone(),
                    ),
                    None => (
                        StatusCode::NOT_FOUND,
                        [(header::CACHE_CONTROL, "no-store")],
                        vec![],
                    ),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, files, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn put(&self, path: &str, body: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_owned(), body);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn crl_params(
    revoked: &[&[u8]],
    this: OffsetDateTime,
    next: OffsetDateTime,
) -> CertificateRevocationListParams {
    CertificateRevocationListParams {
        this_update: this,
        next_update: next,
        crl_number: SerialNumber::from(7u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(s),
                revocation_time: date_time_ymd(2026, 6, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
}

/// A DER CRL by `by`, valid 2026-12-01 .. 2027-02-01 (around [`NOW`]).
fn crl(by: &Cert, revoked: &[&[u8]]) -> Vec<u8> {
    crl_params(
        revoked,
        date_time_ymd(2026, 12, 1),
        date_time_ymd(2027, 2, 1),
    )
    .signed_by(&by.issuer())
    .unwrap()
    .der()
    .to_vec()
}

const LEAF_SERIAL: &[u8] = &[0x42, 0x01];

fn cache() -> CrlCache {
    CrlCache::new(Duration::from_secs(2), Duration::from_secs(3600))
}

/// A PKI whose leaf names `url` as its CRL distribution point.
fn pki_with_crl(url: &str) -> Pki {
    Pki::with_leaf(with_crl(leaf_params(ISS), url), ec_key())
}

async fn validate(pki: &Pki, now: i64, crls: &CrlCache) -> Result<Verified, TrustError> {
    validate_chain(&pki.x5c(), &pki.anchors(), now, crls).await
}

#[tokio::test]
async fn unrevoked_leaf_passes_and_the_crl_is_cached() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    srv.put("/inter.crl", crl(&pki.inter, &[&[0x99]]));
    let crls = cache();
    validate(&pki, NOW, &crls).await.unwrap();
    validate(&pki, NOW + 60, &crls).await.unwrap();
    assert_eq!(srv.hits(), 1);
}

#[tokio::test]
async fn revoked_leaf_is_refused() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    srv.put("/inter.crl", crl(&pki.inter, &[&[0x99], LEAF_SERIAL]));
    let err = validate(&pki, NOW, &cache()).await;
    assert_eq!(err.unwrap_err(), TrustError::Revoked);
}

#[tokio::test]
async fn pem_crl_is_read() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    let pem = crl_params(
        &[LEAF_SERIAL],
        date_time_ymd(2026, 12, 1),
        date_time_ymd(2027, 2, 1),
    )
    .signed_by(&pki.inter.issuer())
    .unwrap()
    .pem()
    .unwrap();
    srv.put("/inter.crl", pem.into_bytes());
    let err = validate(&pki, NOW, &cache()).await;
    assert_eq!(err.unwrap_err(), TrustError::Revoked);
}

#[tokio::test]
async fn revoked_intermediate_is_refused() {
    let srv = Server::start().await;
    let root = self_signed(ca_params("Test Community Root"), ec_key());
    let inter = signed(
        with_crl(ca_params("Inter"), &srv.url("/root.crl")),
        ec_key(),
        &root,
    );
    let mut leaf_p = leaf_params(ISS);
    leaf_p.serial_number = Some(SerialNumber::from_slice(&[0x77]));
    let leaf = signed(leaf_p, ec_key(), &inter);
    let inter_serial = crate::udap::trust::parse_cert(&inter.der)
        .unwrap()
        .raw_serial()
        .to_vec();
    srv.put("/root.crl", crl(&root, &[&inter_serial]));
    let anchors = Anchors::from_pem(&root.pem()).unwrap();
    let x5c = [leaf.b64(), inter.b64()];
    let err = validate_chain(&x5c, &anchors, NOW, &cache()).await;
    assert_eq!(err.unwrap_err(), TrustError::Revoked);
    srv.put("/root.crl", crl(&root, &[&[0x77]])); // the leaf's serial, from the wrong CRL
    validate_chain(&x5c, &anchors, NOW, &cache()).await.unwrap();
}

#[tokio::test]
async fn unreachable_crl_fails_closed() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pki = pki_with_crl(&format!("http://127.0.0.1:{port}/inter.crl"));
    let err = validate(&pki, NOW, &cache()).await;
    assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
}

#[tokio::test]
async fn missing_garbage_or_redirected_crl_fails_closed() {
    let srv = Server::start().await;
    srv.put("/garbage.crl", b"not a crl".to_vec());
    for path in ["/missing.crl", "/garbage.crl", "/redirect.crl"] {
        let pki = pki_with_crl(&srv.url(path));
        srv.put("/inter.crl", crl(&pki.inter, &[]));
        let err = validate(&pki, NOW, &cache()).await;
        assert!(
            matches!(err, Err(TrustError::CrlUnavailable(_))),
            "{path}: {err:?}"
        );
    }
}

#[tokio::test]
async fn crl_with_trailing_bytes_fails_closed() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    srv.put("/inter.crl", [crl(&pki.inter, &[]), vec![0]].concat());
    let err = validate(&pki, NOW, &cache()).await;
    assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
}

#[tokio::test]
async fn crl_signed_by_another_key_fails_closed() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    // Same issuer name as the intermediate, different key.
    let forger = self_signed(ca_params("Test Community Intermediate"), ec_key());
    srv.put("/inter.crl", crl(&forger, &[]));
    let err = validate(&pki, NOW, &cache()).await;
    assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
    // A CRL by another issuer altogether.
    srv.put("/inter.crl", crl(&pki.root, &[]));
    let err = validate(&pki, NOW, &cache()).await;
    assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
}

#[tokio::test]
async fn stale_or_future_crl_fails_closed() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    for (this, next) in [
        (date_time_ymd(2026, 10, 1), date_time_ymd(2026, 11, 1)),
        (date_time_ymd(2027, 3, 1), date_time_ymd(2027, 4, 1)),
    ] {
        let der = crl_params(&[], this, next)
            .signed_by(&pki.inter.issuer())
            .unwrap()
            .der()
            .to_vec();
        srv.put("/inter.crl", der);
        let err = validate(&pki, NOW, &cache()).await;
        assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
    }
}

#[tokio::test]
async fn cache_expires_at_ttl_and_at_next_update() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    srv.put("/inter.crl", crl(&pki.inter, &[]));
    let crls = CrlCache::new(Duration::from_secs(2), Duration::from_secs(60));
    validate(&pki, NOW, &crls).await.unwrap();
    validate(&pki, NOW + 59, &crls).await.unwrap();
    assert_eq!(srv.hits(), 1);
    validate(&pki, NOW + 61, &crls).await.unwrap();
    assert_eq!(srv.hits(), 2);
    // nextUpdate (2027-02-01) comes before the ttl: refetched, and now stale.
    let crls = cache();
    validate(&pki, NOW, &crls).await.unwrap();
    let after_next_update = 1_801_440_001; // 2027-02-01T00:00:01Z
    let err = validate(&pki, after_next_update, &crls).await;
    assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
    assert_eq!(srv.hits(), 4);
}

#[tokio::test]
async fn issuer_without_crl_sign_fails_closed() {
    let srv = Server::start().await;
    let root = self_signed(ca_params("Test Community Root"), ec_key());
    let mut p = ca_params("Inter");
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let inter = signed(p, ec_key(), &root);
    let leaf = signed(
        with_crl(leaf_params(ISS), &srv.url("/inter.crl")),
        ec_key(),
        &inter,
    );
    let anchors = Anchors::from_pem(&root.pem()).unwrap();
    let err = validate_chain(&[leaf.b64(), inter.b64()], &anchors, NOW, &cache()).await;
    assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
    assert_eq!(srv.hits(), 0);
}

#[tokio::test]
async fn no_distribution_point_means_no_fetch() {
    let pki = Pki::new();
    validate(&pki, NOW, &cache()).await.unwrap();
}

#[tokio::test]
async fn crl_with_another_issuer_name_fails_closed() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    // The intermediate's own key, under another name.
    let same_key = KeyPair::from_pem(&pki.inter.key.serialize_pem()).unwrap();
    let renamed = ca_params("Another Name");
    let der = crl_params(&[], date_time_ymd(2026, 12, 1), date_time_ymd(2027, 2, 1))
        .signed_by(&Issuer::from_params(&renamed, &same_key))
        .unwrap()
        .der()
        .to_vec();
    srv.put("/inter.crl", der);
    let err = validate(&pki, NOW, &cache()).await;
    assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
}

#[tokio::test]
async fn partitioned_crl_fails_closed() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/inter.crl"));
    let mut params = crl_params(&[], date_time_ymd(2026, 12, 1), date_time_ymd(2027, 2, 1));
    params.issuing_distribution_point = Some(CrlIssuingDistributionPoint {
        distribution_point: CrlDistributionPoint {
            uris: vec![srv.url("/inter.crl")],
        },
        scope: Some(CrlScope::CaCertsOnly),
    });
    let der = params
        .signed_by(&pki.inter.issuer())
        .unwrap()
        .der()
        .to_vec();
    srv.put("/inter.crl", der);
    let err = validate(&pki, NOW, &cache()).await;
    assert!(matches!(err, Err(TrustError::CrlUnavailable(_))), "{err:?}");
    // The same distribution point without a scope is a full CRL.
    params.issuing_distribution_point = Some(CrlIssuingDistributionPoint {
        distribution_point: CrlDistributionPoint {
            uris: vec![srv.url("/inter.crl")],
        },
        scope: None,
    });
    let der = params
        .signed_by(&pki.inter.issuer())
        .unwrap()
        .der()
        .to_vec();
    srv.put("/inter.crl", der);
    validate(&pki, NOW, &cache()).await.unwrap();
}

#[tokio::test]
async fn oversized_or_failed_fetches_say_why() {
    let srv = Server::start().await;
    let pki = pki_with_crl(&srv.url("/big.crl"));
    srv.put("/big.crl", vec![0x30; MAX_CRL_BYTES + 1]);
    match validate(&pki, NOW, &cache()).await {
        Err(TrustError::CrlUnavailable(why)) => assert!(why.contains("too large"), "{why}"),
        other => panic!("{other:?}"),
    }
    let pki = pki_with_crl(&srv.url("/missing.crl"));
    match validate(&pki, NOW, &cache()).await {
        Err(TrustError::CrlUnavailable(why)) => assert!(why.contains("404"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cached_crl_is_bound_to_its_issuer_key() {
    let srv = Server::start().await;
    let url = srv.url("/shared.crl");
    let a = pki_with_crl(&url);
    let b = pki_with_crl(&url);
    let crls = cache();
    srv.put("/shared.crl", crl(&a.inter, &[]));
    validate(&a, NOW, &crls).await.unwrap();
    // B's intermediate has the same name and URL but another key: its
    // own CRL is fetched and verified, not A's reused.
    srv.put("/shared.crl", crl(&b.inter, &[LEAF_SERIAL]));
    let err = validate(&b, NOW, &crls).await;
    assert_eq!(err.unwrap_err(), TrustError::Revoked);
}

#[tokio::test]
async fn crls_are_fetched_only_for_a_validated_path() {
    let srv = Server::start().await;
    let url = srv.url("/inter.crl");
    let pki = Pki::new();
    let stranger = signed(with_crl(leaf_params(ISS), &url), ec_key(), &pki.other);
    let err = validate_chain(&[stranger.b64()], &pki.anchors(), NOW, &cache()).await;
    assert_eq!(err.unwrap_err(), TrustError::UntrustedAnchor);
    let mut p = with_crl(leaf_params(ISS), &url);
    p.not_after = date_time_ymd(2026, 6, 1);
    let expired = Pki::with_leaf(p, ec_key());
    let err = validate(&expired, NOW, &cache()).await;
    assert_eq!(err.unwrap_err(), TrustError::Expired);
    assert_eq!(srv.hits(), 0);
}

#[test]
fn serial_normalisation() {
    assert_eq!(normalise(&[0, 0, 0x80]), &[0x80]);
    assert_eq!(normalise(&[0x01]), &[0x01]);
    assert_eq!(normalise(&[0]), &[] as &[u8]);
}
