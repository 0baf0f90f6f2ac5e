//! UDAP at start: the server's signing identity (its certificate chain and
//! key) and the trust communities, from `[udap]` or, without a configured
//! certificate, the demo community made in `{data_dir}/udap/` (see
//! [`super::config`]). [`Udap::open`] refuses a server certificate whose
//! SAN URIs do not include the FHIR base: signed metadata must name it.

use std::{path::Path, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine};
use jsonwebtoken::EncodingKey;
use x509_parser::pem::Pem;

use super::{
    config::{CommunityConfig, UdapConfig, DEMO_COMMUNITY},
    crl::CrlCache,
    pki,
    trust::Anchors,
};

/// Timeout of each call to a Tiered OAuth identity provider.
const IDP_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's signing identity for UDAP metadata.
pub struct ServerIdentity {
    /// `x5c`: standard base64 DER, leaf first.
    pub x5c: Vec<String>,
    /// The leaf's RSA private key (RS256).
    pub key: EncodingKey,
}

/// One trust community, loaded.
pub struct Community {
    /// Its URI (`?community=`).
    pub name: String,
    /// The CAs client chains must lead to.
    pub anchors: Anchors,
    /// Every token request must carry `hl7-b2b`.
    pub require_b2b: bool,
    /// STU1 clients may skip PKCE and `state`.
    pub stu1_without_pkce: bool,
    /// Certifications advertised.
    pub certifications_supported: Vec<String>,
}

/// UDAP, ready to serve.
pub struct Udap {
    /// Signs the metadata.
    pub server: ServerIdentity,
    /// The communities; the first is the default.
    pub communities: Vec<Community>,
    /// Fetched CRLs.
    pub crls: CrlCache,
    /// Calls to Tiered OAuth identity providers (no redirects followed).
    pub http: reqwest::Client,
    /// The `mailto:` contact of fhirgate's own registrations.
    pub contact: String,
}

impl Udap {
    /// Loads (or, for the demo, makes) what `cfg` names; `None` when UDAP is
    /// off.
    pub fn open(
        cfg: &UdapConfig,
        data_dir: &Path,
        fhir_base: &str,
    ) -> anyhow::Result<Option<Self>> {
        if !cfg.enabled {
            return Ok(None);
        }
        let (server, communities) = match (&cfg.certificate, &cfg.key) {
            (Some(cert), Some(key)) => {
                let chain = std::fs::read_to_string(cert)
                    .map_err(|e| anyhow::anyhow!("[udap] certificate {}: {e}", cert.display()))?;
                let key = std::fs::read_to_string(key)
                    .map_err(|e| anyhow::anyhow!("[udap] key {}: {e}", key.display()))?;
                if cfg.communities.is_empty() {
                    anyhow::bail!(
                        "[udap] certificate is set but no [[udap.communities]] names the anchors clients chain to"
                    );
                }
                (identity(&chain, &key, fhir_base)?, cfg.communities.clone())
            }
            (None, None) => {
                let (server, demo) = demo(&data_dir.join("udap"), fhir_base)?;
                let communities = if cfg.communities.is_empty() {
                    vec![demo]
                } else {
                    cfg.communities.clone()
                };
                (server, communities)
            }
            _ => anyhow::bail!("[udap] certificate and key go together"),
        };
        let communities = communities
            .into_iter()
            .map(|c| {
                let anchors = Anchors::from_pem_files(&c.anchors).map_err(|e| {
                    anyhow::anyhow!("[udap] community {}: {}", c.name, e.description())
                })?;
                Ok(Community {
                    name: c.name,
                    anchors,
                    require_b2b: c.require_b2b,
                    stu1_without_pkce: c.stu1_without_pkce,
                    certifications_supported: c.certifications_supported,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ttl = Duration::from_secs(cfg.crl_cache_seconds.max(1));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(IDP_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("[udap] HTTP client: {e}"))?;
        let contact = match &cfg.contact {
            Some(c) if c.starts_with("mailto:") && c.len() > 8 => c.clone(),
            Some(c) => anyhow::bail!("[udap] contact must be a mailto: URI, not {c}"),
            None => {
                let host = url::Url::parse(fhir_base)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "localhost".to_owned());
                format!("mailto:udap-admin@{host}")
            }
        };
        Ok(Some(Self {
            server,
            communities,
            crls: CrlCache::new(Duration::from_secs(10), ttl),
            http,
            contact,
        }))
    }

    /// The community a `?community=` value or a registration names; the
    /// default (first) for `None`.
    pub fn community(&self, name: Option<&str>) -> Option<&Community> {
        match name {
            None => self.communities.first(),
            Some(n) => self.communities.iter().find(|c| c.name == n),
        }
    }
}

/// The signing identity of a PEM chain (leaf first) and key, checked to
/// name `fhir_base` as a SAN URI.
fn identity(chain_pem: &str, key_pem: &str, fhir_base: &str) -> anyhow::Result<ServerIdentity> {
    let mut x5c = Vec::new();
    for block in Pem::iter_from_buffer(chain_pem.as_bytes()) {
        let block = block.map_err(|e| anyhow::anyhow!("[udap] certificate PEM: {e}"))?;
        if block.label == "CERTIFICATE" {
            x5c.push(STANDARD.encode(&block.contents));
        }
    }
    let leaf = x5c
        .first()
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or_else(|| anyhow::anyhow!("[udap] certificate holds no CERTIFICATE"))?;
    let sans = san_uris(&leaf)?;
    if !sans.iter().any(|u| u == fhir_base) {
        anyhow::bail!(
            "[udap] the server certificate's SAN URIs {sans:?} do not include the FHIR base {fhir_base} (signed metadata must name it exactly)"
        );
    }
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).map_err(|e| {
        anyhow::anyhow!("[udap] key: an RSA private key PEM is needed (RS256): {e}")
    })?;
    Ok(ServerIdentity { x5c, key })
}

/// The SAN URIs of a DER certificate.
pub fn san_uris(der: &[u8]) -> anyhow::Result<Vec<String>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow::anyhow!("certificate: {e}"))?;
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(u) = name {
                out.push((*u).to_owned());
            }
        }
    }
    Ok(out)
}

/// The demo community in `dir`: its CA (made once) and a server certificate
/// for `fhir_base` (remade when the base changes).
fn demo(dir: &Path, fhir_base: &str) -> anyhow::Result<(ServerIdentity, CommunityConfig)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let (ca_cert, ca_key) = (dir.join("community-ca.pem"), dir.join("community-ca.key"));
    if !ca_cert.exists() || !ca_key.exists() {
        let ca = pki::community_ca()?;
        write_private(&ca_key, &ca.key)?;
        std::fs::write(&ca_cert, &ca.cert)?;
    }
    let ca_key_pem = std::fs::read_to_string(&ca_key)?;
    let ca_pem = std::fs::read_to_string(&ca_cert)?;
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    let current = std::fs::read_to_string(&cert)
        .ok()
        .zip(std::fs::read_to_string(&key).ok())
        .and_then(|(c, k)| identity(&format!("{c}{ca_pem}"), &k, fhir_base).ok());
    let server = match current {
        Some(s) => s,
        None => {
            let leaf = pki::leaf(&ca_key_pem, fhir_base, "fhirgate UDAP server", 825)?;
            write_private(&key, &leaf.key)?;
            std::fs::write(&cert, &leaf.cert)?;
            identity(&format!("{}{ca_pem}", leaf.cert), &leaf.key, fhir_base)?
        }
    };
    let community = CommunityConfig {
        name: DEMO_COMMUNITY.to_owned(),
        anchors: vec![ca_cert],
        require_b2b: false,
        stu1_without_pkce: false,
        certifications_supported: Vec::new(),
    };
    Ok((server, community))
}

/// Writes a private key readable by the owner only.
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    std::fs::write(path, pem)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
