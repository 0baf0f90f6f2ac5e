//! The test community's PKI, made fresh per run with rcgen: a root CA (the
//! community's anchor) → an intermediate CA → client leaf certificates
//! (SAN URI), RSA keys from the `rsa` crate (rcgen's ring backend cannot
//! generate RSA) and one EC P-256 leaf; the server's certificate, issued by
//! the root for the FHIR base; a rogue root (same name as the community's,
//! another key) with its own leaf; and the CRLs of both CAs, served over
//! HTTP by [`CrlServer`] (each leaf names the intermediate's CRL, the
//! intermediate names the root's).

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::Arc,
    time::Duration as StdDuration,
};

use base64::{engine::general_purpose::STANDARD, Engine};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
    PKCS_RSA_SHA256,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use time::{Duration, OffsetDateTime};

/// A CA: its parameters (to issue with), key and certificate.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// DER of its certificate.
    pub der: Vec<u8>,
    /// PEM of its certificate.
    pub pem: String,
}

impl Ca {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// Standard base64 of the DER (an `x5c` entry).
    pub fn b64(&self) -> String {
        STANDARD.encode(&self.der)
    }
}

/// A client (or server) certificate and its private key.
pub struct Leaf {
    /// DER of the certificate.
    pub der: Vec<u8>,
    /// PEM of the certificate.
    pub pem: String,
    /// PKCS#8 PEM of the private key.
    pub key_pem: String,
    /// Its serial number.
    pub serial: u64,
    /// Its key is EC P-256 (ES256), else RSA (RS256).
    pub ec: bool,
}

impl Leaf {
    /// Standard base64 of the DER (an `x5c` entry).
    pub fn b64(&self) -> String {
        STANDARD.encode(&self.der)
    }

    /// The key for jsonwebtoken.
    pub fn encoding_key(&self) -> jsonwebtoken::EncodingKey {
        if self.ec {
            jsonwebtoken::EncodingKey::from_ec_pem(self.key_pem.as_bytes()).expect("EC key")
        } else {
            jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).expect("RSA key")
        }
    }

    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> jsonwebtoken::Algorithm {
        if self.ec {
            jsonwebtoken::Algorithm::ES256
        } else {
            jsonwebtoken::Algorithm::RS256
        }
    }
}

/// A fresh 2048-bit RSA key: (PKCS#8 PEM, rcgen key pair signing RS256).
fn rsa_key() -> (String, KeyPair) {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("PKCS#8 PEM")
        .to_string();
    let pair = KeyPair::from_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).expect("rcgen RSA key");
    (pem, pair)
}

/// `n` RSA keys, made on parallel threads (key generation dominates the run).
fn rsa_keys(n: usize) -> Vec<(String, KeyPair)> {
    let handles: Vec<_> = (0..n).map(|_| std::thread::spawn(rsa_key)).collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("key thread"))
        .collect()
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "fhirgate UDAP conformance");
    dn
}

fn ca_params(cn: &str, serial: u64, crl_url: Option<&str>) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.serial_number = Some(SerialNumber::from(serial));
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(365);
    p.use_authority_key_identifier_extension = true;
    if let Some(url) = crl_url {
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![url.to_owned()],
        }];
    }
    p
}

fn new_root(cn: &str, serial: u64, key: (String, KeyPair)) -> Ca {
    let mut params = ca_params(cn, serial, None);
    params.use_authority_key_identifier_extension = false;
    let cert = params.self_signed(&key.1).expect("self-signed root");
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        params,
        key: key.1,
    }
}

fn intermediate(by: &Ca, cn: &str, serial: u64, crl_url: &str, key: (String, KeyPair)) -> Ca {
    let params = ca_params(cn, serial, Some(crl_url));
    let cert = params
        .signed_by(&key.1, &by.issuer())
        .expect("intermediate");
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        params,
        key: key.1,
    }
}

/// What a leaf looks like.
struct LeafSpec<'a> {
    san: &'a str,
    serial: u64,
    /// Days of validity around now: (not_before, not_after) offsets.
    valid: (i64, i64),
    crl_url: Option<&'a str>,
}

fn leaf(by: &Ca, spec: &LeafSpec<'_>, key: (String, KeyPair), ec: bool) -> Leaf {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name = dn(spec.san);
    p.subject_alt_names = vec![SanType::URI(spec.san.try_into().expect("SAN URI"))];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(SerialNumber::from(spec.serial));
    let now = OffsetDateTime::now_utc();
    p.not_before = now + Duration::days(spec.valid.0) - Duration::minutes(5);
    p.not_after = now + Duration::days(spec.valid.1);
    if let Some(url) = spec.crl_url {
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![url.to_owned()],
        }];
    }
    let cert = p.signed_by(&key.1, &by.issuer()).expect("leaf");
    Leaf {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_pem: key.0,
        serial: spec.serial,
        ec,
    }
}

fn crl(by: &Ca, revoked: &[u64]) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::minutes(10),
        next_update: now + Duration::days(1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: now - Duration::minutes(10),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&by.issuer()).expect("CRL").der().to_vec()
}

/// SAN URIs of the client leaves.
pub const APP_URI: &str = "https://b2b.example.org/apps/claims-sync";
/// The EC (ES256) client.
pub const EC_URI: &str = "https://b2b.example.org/apps/ec-client";
/// Another valid client of the same community.
pub const OTHER_URI: &str = "https://b2b.example.org/apps/other";
/// The client whose certificate has expired.
pub const EXPIRED_URI: &str = "https://b2b.example.org/apps/expired";
/// The client whose certificate is revoked.
pub const REVOKED_URI: &str = "https://b2b.example.org/apps/revoked";
/// The client whose certificate a rogue root issued.
pub const ROGUE_URI: &str = "https://b2b.example.org/apps/rogue";

/// Name of the community root (the rogue root copies it).
const ROOT_CN: &str = "UDAP conformance community root";

/// Everything a run needs.
pub struct Pki {
    /// The community's anchor.
    pub root: Ca,
    /// Issues the client leaves.
    pub intermediate: Ca,
    /// The server's certificate (SAN URI = the FHIR base), issued by the root.
    pub server: Leaf,
    /// RS256 client ([`APP_URI`]).
    pub app: Leaf,
    /// ES256 client ([`EC_URI`]).
    pub ec: Leaf,
    /// Another RS256 client of the community ([`OTHER_URI`]).
    pub other: Leaf,
    /// Expired a day ago ([`EXPIRED_URI`]).
    pub expired: Leaf,
    /// Listed in the intermediate's CRL ([`REVOKED_URI`]).
    pub revoked: Leaf,
    /// A root with the community root's name and another key.
    pub rogue_root: Ca,
    /// Issued by the rogue root ([`ROGUE_URI`]).
    pub rogue: Leaf,
    /// The CRL files: path → DER.
    pub crls: HashMap<String, Vec<u8>>,
}

impl Pki {
    /// Makes the hierarchy for a server whose FHIR base is `fhir_base`, with
    /// CRLs under `crl_base` (`http://127.0.0.1:<port>`).
    pub fn make(fhir_base: &str, crl_base: &str) -> Self {
        let mut keys = rsa_keys(9).into_iter();
        let mut next = || keys.next().expect("enough keys");
        let root_crl = format!("{crl_base}/root.crl");
        let inter_crl = format!("{crl_base}/intermediate.crl");
        let root = new_root(ROOT_CN, 1, next());
        let intermediate =
            intermediate(&root, "UDAP conformance intermediate", 2, &root_crl, next());
        let spec = |san, serial, valid| LeafSpec {
            san,
            serial,
            valid,
            crl_url: Some(&inter_crl),
        };
        let server = leaf(
            &root,
            &LeafSpec {
                san: fhir_base,
                serial: 3,
                valid: (0, 30),
                crl_url: None,
            },
            next(),
            false,
        );
        let app = leaf(&intermediate, &spec(APP_URI, 10, (0, 30)), next(), false);
        let other = leaf(&intermediate, &spec(OTHER_URI, 11, (0, 30)), next(), false);
        let expired = leaf(
            &intermediate,
            &spec(EXPIRED_URI, 12, (-30, -1)),
            next(),
            false,
        );
        let revoked = leaf(
            &intermediate,
            &spec(REVOKED_URI, 13, (0, 30)),
            next(),
            false,
        );
        let ec_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("EC key");
        let ec = leaf(
            &intermediate,
            &spec(EC_URI, 14, (0, 30)),
            (ec_key.serialize_pem(), ec_key),
            true,
        );
        let rogue_root = new_root(ROOT_CN, 1, next());
        let rogue = leaf(
            &rogue_root,
            &LeafSpec {
                san: ROGUE_URI,
                serial: 15,
                valid: (0, 30),
                crl_url: None,
            },
            next(),
            false,
        );
        let mut crls = HashMap::new();
        crls.insert("/root.crl".to_owned(), crl(&root, &[]));
        crls.insert(
            "/intermediate.crl".to_owned(),
            crl(&intermediate, &[revoked.serial]),
        );
        Self {
            root,
            intermediate,
            server,
            app,
            ec,
            other,
            expired,
            revoked,
            rogue_root,
            rogue,
            crls,
        }
    }
}

/// Which root issues a leaf made by [`Pki::issue_servers`].
// Used by the Tiered OAuth suite only (`udap.rs` includes this file too).
#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum By {
    /// The community's anchor.
    Root,
    /// The rogue root (not an anchor of the community).
    RogueRoot,
}

// Used by the Tiered OAuth suite only (`udap.rs` includes this file too).
#[allow(dead_code)]
impl Pki {
    /// More server certificates (SAN URI = a FHIR base, no CRL URL, fresh
    /// RSA keys made in parallel), one per `(fhir_base, serial, issuer)`:
    /// a second server of the community (Tiered OAuth's identity
    /// provider), or the signer of a stand-in server's metadata.
    pub fn issue_servers(&self, specs: &[(&str, u64, By)]) -> Vec<Leaf> {
        rsa_keys(specs.len())
            .into_iter()
            .zip(specs)
            .map(|(key, &(san, serial, by))| {
                let ca = match by {
                    By::Root => &self.root,
                    By::RogueRoot => &self.rogue_root,
                };
                leaf(
                    ca,
                    &LeafSpec {
                        san,
                        serial,
                        valid: (0, 30),
                        crl_url: None,
                    },
                    key,
                    false,
                )
            })
            .collect()
    }
}

/// A tiny HTTP/1.1 server for the CRLs (`GET /root.crl`,
/// `GET /intermediate.crl`), one thread, `Connection: close`. It lives as
/// long as the test process. It serves any other file of the map too: a
/// request path with a query that names no file is looked up without its
/// query; files whose path ends in `/.well-known/udap` or `.json` are sent
/// as `application/json`, the rest as `application/pkix-crl`.
pub struct CrlServer;

impl CrlServer {
    /// Serves `files` on `listener` from a background thread.
    pub fn serve(listener: TcpListener, files: HashMap<String, Vec<u8>>) {
        let files = Arc::new(files);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let files = Arc::clone(&files);
                std::thread::spawn(move || answer(stream, &files));
            }
        });
    }
}

fn answer(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>) {
    let _ = stream.set_read_timeout(Some(StdDuration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/");
    let path = if files.contains_key(path) {
        path
    } else {
        path.split('?').next().unwrap_or(path)
    };
    let (status, body): (&str, &[u8]) = match files.get(path) {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b""),
    };
    let content_type = if path.ends_with("/.well-known/udap") || path.ends_with(".json") {
        "application/json"
    } else {
        "application/pkix-crl"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}
