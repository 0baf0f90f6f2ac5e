//! Transport security: fhirgate terminating TLS itself, and the rule for
//! when plain HTTP is allowed instead. The seeds require TLS 1.3 on every
//! external endpoint; this module is where that is enforced.
//!
//! - **`[tls]` set**: `serve` accepts TLS only ([`listener::TlsListener`]):
//!   rustls with the ring provider (the one fhirgate's HTTP clients already
//!   use), TLS 1.3 only unless `tls.min_version = "1.2"`, ALPN `h2` and
//!   `http/1.1`. The certificate chain and key come from PEM files and are
//!   looked at every `tls.reload_seconds`; a changed pair that loads is
//!   served to new connections at once ([`cert::Certificates`]); a pair
//!   that does not load (garbage, half-written, key not matching) is
//!   logged as an error and the previous certificate stays.
//! - **No `[tls]`**: plain HTTP. [`check_plain_http`] refuses to start on
//!   a non-loopback address unless `[http] trusted_proxies` names the
//!   TLS-terminating proxies in front, or `[http] allow_plain_http = true`
//!   says the operator knows. With `trusted_proxies` (and without
//!   `allow_plain_http`), a request whose TCP peer is neither loopback nor
//!   a trusted proxy is answered 403 before it reaches any route
//!   ([`transport`]): it came around the proxy, in clear text.
//! - **HSTS** (`Strict-Transport-Security: max-age=31536000`) on UI pages
//!   when the request came over TLS: always with `[tls]`; behind a proxy
//!   when the peer is a trusted proxy and says `X-Forwarded-Proto: https`.
//!   Never on plain HTTP otherwise (browsers ignore it there anyway).
//!
//! Not here: client certificates (mutual TLS), OCSP stapling, several
//! certificates by SNI.

pub mod cert;
pub mod listener;
pub mod transport;

use std::sync::Arc;

use crate::config::{Config, TlsConfig, TlsVersion};

pub use transport::{Transport, HSTS};

/// The TLS side of a `serve`: the rustls configuration and the certificate
/// store the reload task swaps.
#[derive(Debug, Clone)]
pub struct TlsServer {
    config: Arc<rustls::ServerConfig>,
    certs: Arc<cert::Certificates>,
    settings: TlsConfig,
}

impl TlsServer {
    /// Loads the certificate and key now; an error names the key of the
    /// file at fault and stops start-up.
    pub fn load(settings: &TlsConfig) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = Arc::new(cert::Certificates::load(settings, provider.clone())?);
        let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| anyhow::anyhow!("tls.min_version: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            certs,
            settings: settings.clone(),
        })
    }

    /// The acceptor for new connections.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }

    /// Starts looking at the files every `reload_seconds` (nothing when 0).
    /// The task ends once this server's listener and connections are gone.
    pub fn spawn_reload(&self) {
        cert::spawn_reload(&self.certs, &self.settings);
    }
}

/// The start-up check of the plain-HTTP rule (module docs): `Ok` with TLS,
/// on a loopback address, with trusted proxies or with `allow_plain_http`;
/// otherwise an error that names the settings to choose from.
pub fn check_plain_http(config: &Config) -> anyhow::Result<()> {
    if config.tls.is_some() || config.listen.ip().is_loopback() {
        return Ok(());
    }
    if config.http.allow_plain_http {
        tracing::warn!(
            listen = %config.listen,
            "serving plain HTTP on a non-loopback address to anyone (http.allow_plain_http)"
        );
        return Ok(());
    }
    if !config.http.trusted_proxies.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve plain HTTP on {listen}, which is not a loopback address: \
         configure TLS ([tls] certificate and key, or FHIRGATE_TLS_CERTIFICATE and \
         FHIRGATE_TLS_KEY), or name the TLS-terminating proxy in front \
         ([http] trusted_proxies, or FHIRGATE_TRUSTED_PROXIES, e.g. \"10.0.0.0/8\"), \
         or set [http] allow_plain_http = true (FHIRGATE_ALLOW_PLAIN_HTTP=true) to \
         accept clear text from anyone",
        listen = config.listen
    )
}
