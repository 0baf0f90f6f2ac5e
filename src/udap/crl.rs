//! CRL fetching and checking for UDAP chains (RFC 5280 §5 and §6.3, the
//! subset a community PKI uses): full CRLs over http(s), DER or PEM, signed
//! by the certificate's issuer. Fails closed: a CRL that cannot be fetched,
//! parsed, verified, is stale or only partial is [`TrustError::CrlUnavailable`].
//!
//! Fetches follow no redirects, time out, and read at most
//! [`MAX_CRL_BYTES`]. A verified CRL is cached per (URL, issuer key) until
//! its nextUpdate or the configured ttl, whichever is first. Only URLs from
//! CA-signed certificates of an already validated path reach this module.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use x509_parser::extensions::ParsedExtension;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::error::TrustError;
use super::trust::check_sig_alg;

/// Largest CRL body read.
pub const MAX_CRL_BYTES: usize = 8 * 1024 * 1024;
/// Most cached CRLs; expired entries are dropped first when full.
const MAX_ENTRIES: usize = 256;

/// One certificate's revocation check: built by [`crate::udap::trust`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlCheck {
    /// The http(s) URIs of the certificate's CRL distribution points, tried in order.
    pub urls: Vec<String>,
    /// The certificate's serial number (DER INTEGER content).
    pub serial: Vec<u8>,
    /// DER of the issuer's subject name: the CRL's issuer must equal it.
    pub issuer_name: Vec<u8>,
    /// DER SubjectPublicKeyInfo of the issuer: the CRL must verify with it.
    pub issuer_spki: Vec<u8>,
    /// False when the issuer's keyUsage is present without cRLSign.
    pub issuer_may_sign_crl: bool,
}

/// (CRL URL, issuer SubjectPublicKeyInfo DER).
type CacheKey = (String, Vec<u8>);

/// A verified CRL as much as a check needs.
#[derive(Debug)]
struct Entry {
    /// Normalised (no leading zero bytes) revoked serial numbers.
    revoked: HashSet<Vec<u8>>,
    /// thisUpdate, unix seconds.
    this_update: i64,
    /// min(nextUpdate, fetch time + ttl), unix seconds.
    expires_at: i64,
}

/// Fetches and caches CRLs. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct CrlCache {
    /// No redirects, with the timeout; `None` if the client could not be
    /// built, in which case every fetch fails closed.
    client: Option<reqwest::Client>,
    /// How long a verified CRL is trusted at most, even before its nextUpdate.
    ttl: Duration,
    /// (URL, issuer SPKI DER) → verified CRL.
    entries: Mutex<HashMap<CacheKey, Arc<Entry>>>,
}

impl CrlCache {
    /// A cache whose fetches time out after `timeout` and whose entries live
    /// at most `ttl` (or until the CRL's nextUpdate, if sooner).
    pub fn new(timeout: Duration, ttl: Duration) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .ok();
        Self {
            client,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Ok if a CRL at one of `check.urls` is valid at `now` and does not list
    /// `check.serial`; [`TrustError::Revoked`] if it does.
    pub async fn check(&self, check: &CrlCheck, now: i64) -> Result<(), TrustError> {
        if !check.issuer_may_sign_crl {
            return Err(TrustError::CrlUnavailable(
                "the issuer's keyUsage does not allow cRLSign".into(),
            ));
        }
        let mut last = TrustError::CrlUnavailable("no CRL distribution point".into());
        for url in &check.urls {
            match self.entry(url, check, now).await {
                Ok(entry) if entry.revoked.contains(normalise(&check.serial)) => {
                    return Err(TrustError::Revoked)
                }
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn entry(&self, url: &str, check: &CrlCheck, now: i64) -> Result<Arc<Entry>, TrustError> {
        let key = (url.to_owned(), check.issuer_spki.clone());
        if let Some(hit) = self.cached(&key, now) {
            return Ok(hit);
        }
        let body = self.fetch(url).await?;
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let entry = Arc::new(verify_crl(&body, check, now, ttl)?);
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, e| e.expires_at > now);
            }
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, Arc::clone(&entry));
        }
        Ok(entry)
    }

    fn cached(&self, key: &CacheKey, now: i64) -> Option<Arc<Entry>> {
        let map = self.entries.lock().ok()?;
        map.get(key)
            .filter(|e| e.this_update <= now && now < e.expires_at)
            .cloned()
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, TrustError> {
        let unavailable = |why: &str| TrustError::CrlUnavailable(format!("{why} ({url})"));
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| unavailable("no HTTP client"))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|_| unavailable("CRL could not be fetched"))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(unavailable(&format!(
                "CRL fetch answered {}",
                resp.status()
            )));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_CRL_BYTES as u64)
        {
            return Err(unavailable("CRL too large"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|_| unavailable("CRL download failed"))?
        {
            if body.len() + chunk.len() > MAX_CRL_BYTES {
                return Err(unavailable("CRL too large"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Parses (DER or PEM `X509 CRL`) and verifies a CRL for `check` at `now`.
fn verify_crl(body: &[u8], check: &CrlCheck, now: i64, ttl: i64) -> Result<Entry, TrustError> {
    let bad = |why: &str| TrustError::CrlUnavailable(why.to_owned());
    let pem;
    let der: &[u8] = if body.trim_ascii_start().starts_with(b"-----BEGIN") {
        pem = Pem::iter_from_buffer(body)
            .next()
            .and_then(Result::ok)
            .filter(|p| p.label == "X509 CRL")
            .ok_or_else(|| bad("invalid PEM CRL"))?;
        &pem.contents
    } else {
        body
    };
    let crl = match CertificateRevocationList::from_der(der) {
        Ok(([], crl)) => crl,
        _ => return Err(bad("invalid DER CRL")),
    };
    if crl.issuer().as_raw() != check.issuer_name.as_slice() {
        return Err(bad("CRL issuer is not the certificate's issuer"));
    }
    check_sig_alg(&crl.signature_algorithm.algorithm)
        .map_err(|_| bad("CRL signature algorithm not accepted"))?;
    let spki = match SubjectPublicKeyInfo::from_der(&check.issuer_spki) {
        Ok((_, spki)) => spki,
        Err(_) => return Err(bad("issuer key unreadable")),
    };
    crl.verify_signature(&spki)
        .map_err(|_| bad("CRL signature does not verify"))?;
    let this_update = crl.last_update().timestamp();
    if this_update > now {
        return Err(bad("CRL thisUpdate is in the future"));
    }
    let next_update = crl
        .next_update()
        .ok_or_else(|| bad("CRL has no nextUpdate"))?
        .timestamp();
    if now > next_update {
        return Err(bad("CRL is past its nextUpdate"));
    }
    for ext in crl.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::IssuingDistributionPoint(idp)
                if idp.only_contains_user_certs
                    || idp.only_contains_ca_certs
                    || idp.only_contains_attribute_certs
                    || idp.only_some_reasons.is_some()
                    || idp.indirect_crl =>
            {
                return Err(bad("partitioned or indirect CRLs are not supported"))
            }
            ParsedExtension::IssuingDistributionPoint(_)
            | ParsedExtension::CRLNumber(_)
            | ParsedExtension::AuthorityKeyIdentifier(_) => {}
            _ if ext.critical => return Err(bad("CRL has an unsupported critical extension")),
            _ => {}
        }
    }
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| normalise(r.raw_serial()).to_vec())
        .collect();
    Ok(Entry {
        revoked,
        this_update,
        expires_at: next_update.min(now.saturating_add(ttl)),
    })
}

/// A serial number without leading zero bytes (DER INTEGER sign padding).
fn normalise(serial: &[u8]) -> &[u8] {
    let start = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    &serial[start..]
}

#[cfg(test)]
mod tests {
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
}
