use std::sync::OnceLock;

use base64::Engine as _;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CrlDistributionPoint, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_RSA_SHA256,
};

/// 2027-01-15: inside every default validity below.
pub const NOW: i64 = 1_800_000_000;
/// The leaf's SAN URI (the UDAP client's `iss`).
pub const ISS: &str = "https://client.example.org/udap";

/// A certificate with the key and parameters that made it.
pub struct Cert {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub der: Vec<u8>,
}

impl Cert {
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
    pub fn b64(&self) -> String {
        b64(&self.der)
    }
    pub fn pem(&self) -> String {
        pem(&self.der)
    }
}

pub fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

pub fn pem(der: &[u8]) -> String {
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64(der)
    )
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

pub fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2035, 1, 1);
    p
}

pub fn leaf_params(san: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("UDAP test client");
    p.subject_alt_names = vec![SanType::URI(san.try_into().unwrap())];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.serial_number = Some(SerialNumber::from_slice(&[0x42, 0x01]));
    p.not_before = date_time_ymd(2026, 1, 1);
    p.not_after = date_time_ymd(2028, 1, 1);
    p
}

pub fn with_crl(mut p: CertificateParams, url: &str) -> CertificateParams {
    p.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![url.to_owned()],
    }];
    p
}

/// An ECDSA P-256 key.
pub fn ec_key() -> KeyPair {
    KeyPair::generate().unwrap()
}

/// The same 2048-bit RSA key every time (made once: RSA keygen is slow).
pub fn rsa_key() -> KeyPair {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    let der = DER.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        key.to_pkcs8_der().unwrap().as_bytes().to_vec()
    });
    KeyPair::from_pkcs8_der_and_sign_algo(&der.clone().into(), &PKCS_RSA_SHA256).unwrap()
}

pub fn self_signed(params: CertificateParams, key: KeyPair) -> Cert {
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Cert { params, key, der }
}

pub fn signed(params: CertificateParams, key: KeyPair, by: &Cert) -> Cert {
    let der = params.signed_by(&key, &by.issuer()).unwrap().der().to_vec();
    Cert { params, key, der }
}

/// root → intermediate → leaf (EC keys), and an unrelated root.
pub struct Pki {
    pub root: Cert,
    pub inter: Cert,
    pub leaf: Cert,
    pub other: Cert,
}

impl Pki {
    pub fn new() -> Self {
        Self::with_leaf(leaf_params(ISS), ec_key())
    }

    pub fn with_leaf(leaf: CertificateParams, leaf_key: KeyPair) -> Self {
        let root = self_signed(ca_params("Test Community Root"), ec_key());
        let inter = signed(ca_params("Test Community Intermediate"), ec_key(), &root);
        let leaf = signed(leaf, leaf_key, &inter);
        let other = self_signed(ca_params("Unrelated Root"), ec_key());
        Self {
            root,
            inter,
            leaf,
            other,
        }
    }

    pub fn anchors(&self) -> super::Anchors {
        super::Anchors::from_pem(&self.root.pem()).unwrap()
    }

    /// leaf, intermediate.
    pub fn x5c(&self) -> Vec<String> {
        vec![self.leaf.b64(), self.inter.b64()]
    }
}
