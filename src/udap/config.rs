//! `[udap]`: UDAP (HL7 FAST Security) trust. The server's certificate signs
//! the discovery metadata; each trust community names the CA certificates
//! (anchors) its clients' certificate chains must lead to.
//!
//! ```toml
//! [udap]
//! certificate = "udap/server.pem"   # PEM chain, leaf first; SAN URI = the FHIR base
//! key = "udap/server.key"           # its RSA private key (PKCS#8 or PKCS#1 PEM)
//! crl_cache_seconds = 3600
//! contact = "mailto:security@example.org"  # in fhirgate's own registrations (Tiered OAuth)
//!
//! [[udap.communities]]
//! name = "https://community.example.org"  # the `?community=` URI (and its label)
//! anchors = ["udap/community-ca.pem"]
//! require_b2b = true                      # every token request carries hl7-b2b
//! stu1_without_pkce = false               # STU1 clients may skip PKCE and state
//! certifications_supported = []
//! ```
//!
//! Without `certificate`, fhirgate makes a demo community in
//! `{data_dir}/udap/`: a community CA (also the default community's anchor,
//! named [`DEMO_COMMUNITY`]) and a server certificate it signs whose SAN URI
//! is the FHIR base (remade when the public URL changes).
//! `fhirgate udap client-cert` issues client certificates from that CA.

use std::path::PathBuf;

use serde::Deserialize;

/// The demo community's name (its `?community=` value).
pub const DEMO_COMMUNITY: &str = "urn:fhirgate:udap:demo-community";

/// The `[udap]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdapConfig {
    /// UDAP discovery, registration and authentication are offered.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The server's certificate chain (PEM, leaf first).
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// How long a fetched CRL is trusted at most, seconds.
    #[serde(default = "hour")]
    pub crl_cache_seconds: u64,
    /// The `mailto:` address fhirgate gives when it registers itself with a
    /// Tiered OAuth identity provider (default `mailto:udap-admin@` + the
    /// public host).
    #[serde(default)]
    pub contact: Option<String>,
    /// Trust communities; the first is the default.
    #[serde(default)]
    pub communities: Vec<CommunityConfig>,
}

/// One trust community.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityConfig {
    /// Its URI (`?community=`), also how it is named in logs.
    pub name: String,
    /// CA certificates (PEM files) client chains must lead to.
    pub anchors: Vec<PathBuf>,
    /// Every token request must carry the `hl7-b2b` extension.
    #[serde(default)]
    pub require_b2b: bool,
    /// UDAP STU1 clients may use the authorization code flow without PKCE
    /// and `state` (STU2 requires both).
    #[serde(default)]
    pub stu1_without_pkce: bool,
    /// Certification URIs recognised (advertised; unrecognised ones are
    /// ignored, as the IG says).
    #[serde(default)]
    pub certifications_supported: Vec<String>,
}

impl Default for UdapConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            certificate: None,
            key: None,
            crl_cache_seconds: hour(),
            contact: None,
            communities: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}
fn hour() -> u64 {
    3600
}
