//! UDAP trust anchors and `x5c` chain validation (HL7 FAST Security IG,
//! "UDAP Trust Community"; RFC 5280 §6 path validation, in the subset a
//! community PKI uses).
//!
//! A client's `x5c` (leaf first, then intermediates, the anchor optional) is
//! turned into a path leaf → intermediates → configured anchor by issuer name
//! and verified signature; then every certificate must be within its validity
//! at `now`, every issuer must be a CA allowed to sign certificates, the leaf
//! may sign, and the path is at most [`MAX_PATH`] certificates below the
//! anchor. Only after all of that (so only for CA-vouched URLs) are the CRLs
//! of the path fetched ([`crate::udap::crl`]), failing closed.
//!
//! Names are compared as their DER encodings (as webpki does). The first path
//! found by name and signature is the one judged; alternative paths through
//! cross-certificates are not explored once one is complete.

use std::path::PathBuf;

use base64::Engine as _;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKCS1_RSASSAPSS, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use super::crl::{CrlCache, CrlCheck};
use super::error::TrustError;

/// Most certificates a path may have below its anchor (leaf + intermediates).
pub const MAX_PATH: usize = 5;
/// Most entries an `x5c` may carry (the path plus the anchor and a few spares).
pub const MAX_X5C: usize = 10;
/// Largest DER certificate accepted from a client.
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// Most certificate signature verifications one path search may spend.
const SIGNATURE_BUDGET: usize = 32;

/// The community's trust anchors: parsed, each a CA (DER kept, parsed per use).
#[derive(Debug, Clone)]
pub struct Anchors {
    /// DER of each anchor certificate, each checked to be a CA at load.
    ders: Vec<Vec<u8>>,
}

impl Anchors {
    /// One or more `CERTIFICATE` PEM blocks; each must be a CA
    /// (basicConstraints cA=true). Any other PEM block is refused.
    pub fn from_pem(pem: &str) -> Result<Self, TrustError> {
        let mut ders = Vec::new();
        for block in Pem::iter_from_buffer(pem.as_bytes()) {
            let block =
                block.map_err(|_| TrustError::Malformed("invalid PEM in trust anchors".into()))?;
            if block.label != "CERTIFICATE" {
                return Err(TrustError::Malformed(
                    "trust anchors hold a PEM block that is not a CERTIFICATE".into(),
                ));
            }
            let cert = parse_cert(&block.contents)?;
            if !basic_ca(&cert)?.0 {
                return Err(TrustError::NotCa(format!(
                    "trust anchor {} is not a CA",
                    cert.subject()
                )));
            }
            ders.push(block.contents);
        }
        if ders.is_empty() {
            return Err(TrustError::Malformed(
                "no CERTIFICATE block in trust anchors".into(),
            ));
        }
        Ok(Self { ders })
    }

    /// [`Anchors::from_pem`] over the concatenation of these files.
    pub fn from_pem_files(paths: &[PathBuf]) -> Result<Self, TrustError> {
        let mut all = String::new();
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|e| {
                TrustError::Malformed(format!(
                    "cannot read trust anchor file {}: {e}",
                    path.display()
                ))
            })?;
            all.push_str(&text);
            all.push('\n');
        }
        Self::from_pem(&all)
    }

    /// How many anchors.
    pub fn len(&self) -> usize {
        self.ders.len()
    }

    /// Whether there are none (never true for a value built by `from_pem`).
    pub fn is_empty(&self) -> bool {
        self.ders.is_empty()
    }

    /// The DER of each anchor, in file order.
    pub fn ders(&self) -> impl Iterator<Item = &[u8]> {
        self.ders.iter().map(Vec::as_slice)
    }
}

/// A chain that validated: what callers need from the leaf and the anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// DER of the leaf (`x5c[0]`).
    pub leaf_der: Vec<u8>,
    /// The leaf's subjectAltName URIs, in certificate order (UDAP `iss` must be one).
    pub san_uris: Vec<String>,
    /// The leaf's subject, RFC 4514 style.
    pub subject: String,
    /// The leaf's notAfter, unix seconds.
    pub not_after: i64,
    /// The anchor's subject, RFC 4514 style (which community CA vouched).
    pub anchor_subject: String,
}

/// Validates `x5c` (standard base64 DER, leaf first, then intermediates; the
/// anchor may or may not be included) to one of `anchors` at `now` (unix
/// seconds), then checks the CRLs of the path through `crls`.
pub async fn validate_chain(
    x5c: &[String],
    anchors: &Anchors,
    now: i64,
    crls: &CrlCache,
) -> Result<Verified, TrustError> {
    let (verified, checks) = validate_offline(x5c, anchors, now)?;
    for check in &checks {
        crls.check(check, now).await?;
    }
    Ok(verified)
}

/// Everything but the network: the path, its rules, and the CRL checks to run.
fn validate_offline(
    x5c: &[String],
    anchors: &Anchors,
    now: i64,
) -> Result<(Verified, Vec<CrlCheck>), TrustError> {
    let ders = decode_x5c(x5c)?;
    let certs = ders
        .iter()
        .map(|d| parse_cert(d))
        .collect::<Result<Vec<_>, _>>()?;
    let anchor_certs = anchors
        .ders
        .iter()
        .map(|d| parse_cert(d))
        .collect::<Result<Vec<_>, _>>()?;

    let (below, anchor_idx) = build_path(&certs, &anchor_certs)?;
    let mut path: Vec<&X509Certificate<'_>> = below.iter().map(|&i| &certs[i]).collect();
    let anchor = anchor_certs
        .get(anchor_idx)
        .ok_or(TrustError::UntrustedAnchor)?;
    path.push(anchor);
    check_path(&path, now)?;

    let (Some(leaf), Some(leaf_der)) = (certs.first(), ders.first()) else {
        return Err(TrustError::MissingX5c);
    };
    let verified = Verified {
        leaf_der: leaf_der.clone(),
        san_uris: san_uris(leaf)?,
        subject: leaf.subject().to_string(),
        not_after: leaf.validity().not_after.timestamp(),
        anchor_subject: anchor.subject().to_string(),
    };
    let checks = path
        .windows(2)
        .filter_map(|pair| crl_check(pair[0], pair[1]))
        .collect();
    Ok((verified, checks))
}

fn decode_x5c(x5c: &[String]) -> Result<Vec<Vec<u8>>, TrustError> {
    if x5c.is_empty() {
        return Err(TrustError::MissingX5c);
    }
    if x5c.len() > MAX_X5C {
        return Err(TrustError::Malformed(format!(
            "x5c holds more than {MAX_X5C} certificates"
        )));
    }
    x5c.iter()
        .map(|b64| {
            if b64.len() > MAX_CERT_BYTES * 4 / 3 + 4 {
                return Err(TrustError::Malformed("x5c certificate too large".into()));
            }
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| TrustError::Malformed("x5c entry is not standard base64".into()))
        })
        .collect()
}

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, TrustError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(TrustError::Malformed(
            "trailing bytes after certificate".into(),
        )),
        Err(_) => Err(TrustError::Malformed("not a DER X.509 certificate".into())),
    }
}

/// (cA, pathLenConstraint) of a certificate; absent basicConstraints is not a CA.
fn basic_ca(cert: &X509Certificate<'_>) -> Result<(bool, Option<u32>), TrustError> {
    let bc = cert
        .basic_constraints()
        .map_err(|_| TrustError::Malformed("invalid basicConstraints".into()))?;
    Ok(bc.map_or((false, None), |b| (b.value.ca, b.value.path_len_constraint)))
}

/// Depth-first search for leaf → x5c intermediates → anchor by name and signature.
struct PathSearch<'s, 'a> {
    certs: &'s [X509Certificate<'a>],
    anchors: &'s [X509Certificate<'a>],
    /// The first signature failure on a name match; if no path is found, an
    /// algorithm or encoding problem is reported as such, anything else as
    /// an untrusted anchor.
    sig_failure: Option<TrustError>,
    /// A name match was cut off by [`MAX_PATH`].
    too_long: bool,
    /// Signature verifications left.
    budget: usize,
}

impl PathSearch<'_, '_> {
    fn issued(&mut self, child: usize, issuer: &X509Certificate<'_>) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        match verify_issued_by(&self.certs[child], issuer) {
            Ok(()) => true,
            Err(e) => {
                self.sig_failure.get_or_insert(e);
                false
            }
        }
    }

    fn extend(&mut self, path: &mut Vec<usize>) -> Option<usize> {
        let cur = *path.last()?;
        let issuer_name = self.certs[cur].issuer().as_raw();
        let anchors = self.anchors;
        for (i, anchor) in anchors.iter().enumerate() {
            if anchor.subject().as_raw() == issuer_name && self.issued(cur, anchor) {
                return Some(i);
            }
        }
        let certs = self.certs;
        for (i, cand) in certs.iter().enumerate().skip(1) {
            if path.contains(&i) || cand.subject().as_raw() != issuer_name {
                continue;
            }
            if path.len() >= MAX_PATH {
                self.too_long = true;
                return None;
            }
            if self.issued(cur, cand) {
                path.push(i);
                if let Some(a) = self.extend(path) {
                    return Some(a);
                }
                path.pop();
            }
        }
        None
    }
}

/// Indexes into `certs` (leaf first) and the index of the anchor they chain to.
fn build_path(
    certs: &[X509Certificate<'_>],
    anchors: &[X509Certificate<'_>],
) -> Result<(Vec<usize>, usize), TrustError> {
    let mut search = PathSearch {
        certs,
        anchors,
        sig_failure: None,
        too_long: false,
        budget: SIGNATURE_BUDGET,
    };
    let mut path = vec![0];
    match search.extend(&mut path) {
        Some(anchor) => Ok((path, anchor)),
        None if search.too_long => Err(TrustError::Malformed(format!(
            "certificate path longer than {MAX_PATH} certificates below the anchor"
        ))),
        // a certificate named like an issuer (or an anchor) that did not
        // sign the child is no path to a trust anchor: untrusted, as UDAP
        // reports it (unapproved), unless its algorithm was the problem
        None => Err(match search.sig_failure {
            Some(e @ (TrustError::Alg(_) | TrustError::Malformed(_))) => e,
            _ => TrustError::UntrustedAnchor,
        }),
    }
}

/// The certificate signature algorithms we accept (no SHA-1, no MD5, no DSA).
pub(crate) fn check_sig_alg(oid: &x509_parser::der_parser::Oid<'_>) -> Result<(), TrustError> {
    let ok = [
        OID_PKCS1_SHA256WITHRSA,
        OID_PKCS1_SHA384WITHRSA,
        OID_PKCS1_SHA512WITHRSA,
        OID_PKCS1_RSASSAPSS,
        OID_SIG_ECDSA_WITH_SHA256,
        OID_SIG_ECDSA_WITH_SHA384,
        OID_SIG_ED25519,
    ];
    if ok.contains(oid) {
        Ok(())
    } else {
        Err(TrustError::Alg(format!(
            "certificate signature algorithm {oid} is not accepted"
        )))
    }
}

fn verify_issued_by(
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), TrustError> {
    let alg = &child.signature_algorithm.algorithm;
    if child.tbs_certificate.signature.algorithm != *alg {
        return Err(TrustError::Malformed(
            "certificate signature algorithms disagree".into(),
        ));
    }
    check_sig_alg(alg)?;
    child
        .verify_signature(Some(issuer.public_key()))
        .map_err(|e| match e {
            X509Error::SignatureUnsupportedAlgorithm => {
                TrustError::Alg("certificate signature algorithm is not supported".into())
            }
            _ => TrustError::BadSignature,
        })
}

/// Validity, extensions, CA flags, key usage and path length; `path` is leaf … anchor.
fn check_path(path: &[&X509Certificate<'_>], now: i64) -> Result<(), TrustError> {
    for cert in path {
        let validity = cert.validity();
        if now < validity.not_before.timestamp() {
            return Err(TrustError::NotYetValid);
        }
        if now > validity.not_after.timestamp() {
            return Err(TrustError::Expired);
        }
        check_critical_extensions(cert)?;
    }
    let leaf = path.first().ok_or(TrustError::UntrustedAnchor)?;
    if let Some(ku) = key_usage(leaf)? {
        if !ku.digital_signature() {
            return Err(TrustError::KeyUsage(
                "the leaf certificate lacks digitalSignature".into(),
            ));
        }
    }
    for (pos, issuer) in path.iter().enumerate().skip(1) {
        let (ca, path_len) = basic_ca(issuer)?;
        if !ca {
            return Err(TrustError::NotCa(
                "an issuing certificate lacks basicConstraints cA=true".into(),
            ));
        }
        // Intermediates below this issuer (the leaf does not count).
        let below = u32::try_from(pos - 1).unwrap_or(u32::MAX);
        if path_len.is_some_and(|max| below > max) {
            return Err(TrustError::NotCa(
                "an issuing certificate's pathLenConstraint is exceeded".into(),
            ));
        }
        if let Some(ku) = key_usage(issuer)? {
            if !ku.key_cert_sign() {
                return Err(TrustError::KeyUsage(
                    "an issuing certificate lacks keyCertSign".into(),
                ));
            }
        }
    }
    Ok(())
}

fn key_usage(
    cert: &X509Certificate<'_>,
) -> Result<Option<x509_parser::extensions::KeyUsage>, TrustError> {
    cert.key_usage()
        .map(|ku| ku.map(|k| *k.value))
        .map_err(|_| TrustError::Malformed("invalid keyUsage".into()))
}

/// RFC 5280 §4.2: refuse a critical extension we do not process.
fn check_critical_extensions(cert: &X509Certificate<'_>) -> Result<(), TrustError> {
    for ext in cert.extensions().iter().filter(|e| e.critical) {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(_)
            | ParsedExtension::KeyUsage(_)
            | ParsedExtension::ExtendedKeyUsage(_)
            | ParsedExtension::SubjectAlternativeName(_)
            | ParsedExtension::SubjectKeyIdentifier(_)
            | ParsedExtension::AuthorityKeyIdentifier(_)
            | ParsedExtension::CRLDistributionPoints(_) => {}
            _ => {
                return Err(TrustError::Malformed(format!(
                    "unsupported critical extension {}",
                    ext.oid
                )))
            }
        }
    }
    Ok(())
}

fn san_uris(cert: &X509Certificate<'_>) -> Result<Vec<String>, TrustError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|_| TrustError::Malformed("invalid subjectAltName".into()))?;
    Ok(san
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some((*u).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The CRL check for `cert` issued by `issuer`, if `cert` names an http(s) CRL.
fn crl_check(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Option<CrlCheck> {
    let urls: Vec<String> = cert
        .extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => Some(points.points.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|point| match &point.distribution_point {
            Some(x509_parser::extensions::DistributionPointName::FullName(names)) => {
                Some(names.iter())
            }
            _ => None,
        })
        .flatten()
        .filter_map(|name| match name {
            GeneralName::URI(u) if is_http(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect();
    if urls.is_empty() {
        return None;
    }
    let issuer_may_sign_crl = key_usage(issuer)
        .ok()
        .map(|ku| ku.is_none_or(|k| k.crl_sign()))
        .unwrap_or(false);
    Some(CrlCheck {
        urls,
        serial: cert.raw_serial().to_vec(),
        issuer_name: issuer.subject().as_raw().to_vec(),
        issuer_spki: issuer.public_key().raw.to_vec(),
        issuer_may_sign_crl,
    })
}

fn is_http(uri: &str) -> bool {
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A small PKI for the tests of this module, `crl` and `x5c_jwt`: root CA →
/// intermediate → leaf with a SAN URI, and an unrelated root.
#[cfg(test)]
pub(crate) mod test_pki;

#[cfg(test)]
mod tests;
