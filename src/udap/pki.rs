//! Certificates fhirgate makes itself (rcgen, RSA keys from the `rsa`
//! crate, SHA-256 signatures): the demo trust community's CA, the server
//! certificate that signs UDAP metadata (SAN URI = the FHIR base), and
//! client certificates the demo CA issues (`fhirgate udap client-cert`).
//! Production deployments configure certificates their community issued
//! (`[udap] certificate`, `key`, `communities`); nothing here runs then.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, PKCS_RSA_SHA256,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use time::{Duration, OffsetDateTime};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// `CERTIFICATE` PEM.
    pub cert: String,
    /// PKCS#8 `PRIVATE KEY` PEM.
    pub key: String,
}

/// The demo CA's subject common name (issued certificates name it as issuer).
const CA_CN: &str = "fhirgate demo UDAP community CA";

/// A fresh 2048-bit RSA key as PKCS#8 PEM.
pub fn rsa_key_pem() -> anyhow::Result<String> {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    Ok(key.to_pkcs8_pem(LineEnding::LF)?.to_string())
}

fn key_pair(pem: &str) -> anyhow::Result<KeyPair> {
    Ok(KeyPair::from_pem_and_sign_algo(pem, &PKCS_RSA_SHA256)?)
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_CN);
    dn.push(DnType::OrganizationName, "fhirgate");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(3650);
    Ok(p)
}

/// A new self-signed demo community CA.
pub fn community_ca() -> anyhow::Result<Issued> {
    let key = rsa_key_pem()?;
    let cert = ca_params()?.self_signed(&key_pair(&key)?)?;
    Ok(Issued {
        cert: cert.pem(),
        key,
    })
}

/// A leaf certificate for `san_uri` (common name `cn`), valid for `days`,
/// issued by the demo CA whose key is `ca_key` (PEM): digitalSignature
/// only, not a CA.
pub fn leaf(ca_key: &str, san_uri: &str, cn: &str, days: i64) -> anyhow::Result<Issued> {
    let issuer = Issuer::new(ca_params()?, key_pair(ca_key)?);
    let key = rsa_key_pem()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.subject_alt_names = vec![SanType::URI(san_uri.try_into()?)];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + Duration::days(days);
    let cert = p.signed_by(&key_pair(&key)?, &issuer)?;
    Ok(Issued {
        cert: cert.pem(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_ca_issues_leaves_naming_their_uri() {
        let ca = community_ca().unwrap();
        let leaf = leaf(
            &ca.key,
            "https://app.example.org/b2b",
            "Example B2B app",
            30,
        )
        .unwrap();
        let (_, der) = x509_parser::pem::parse_x509_pem(leaf.cert.as_bytes()).unwrap();
        let cert = der.parse_x509().unwrap();
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert!(
            sans.iter()
                .any(|s| s.contains("https://app.example.org/b2b")),
            "{sans:?}"
        );
        assert!(cert.issuer().to_string().contains(CA_CN));
        let (_, ca_der) = x509_parser::pem::parse_x509_pem(ca.cert.as_bytes()).unwrap();
        let ca_cert = ca_der.parse_x509().unwrap();
        assert!(cert.verify_signature(Some(ca_cert.public_key())).is_ok());
    }
}
