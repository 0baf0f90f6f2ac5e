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
mod tests;
