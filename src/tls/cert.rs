//! The served certificate: loaded from `tls.certificate` and `tls.key`,
//! handed to every handshake by [`Certificates`] (a rustls
//! `ResolvesServerCert`), and swapped by the reload task when the files
//! change. A pair that does not load never replaces a working one.

use std::{
    path::Path,
    sync::{Arc, PoisonError, RwLock, Weak},
    time::Duration,
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use crate::config::TlsConfig;

/// The certificate handshakes get; shared by the rustls configuration and
/// the reload task.
#[derive(Debug)]
pub struct Certificates {
    /// The chain and key served now.
    current: RwLock<Arc<CertifiedKey>>,
    /// Turns a PEM key into a signing key (ring).
    provider: Arc<CryptoProvider>,
}

impl Certificates {
    /// Reads and checks both files; the error names the key at fault.
    pub fn load(settings: &TlsConfig, provider: Arc<CryptoProvider>) -> anyhow::Result<Self> {
        let cert = read(&settings.certificate, "tls.certificate")?;
        let key = read(&settings.key, "tls.key")?;
        let current = parse(&cert, &key, &provider).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self {
            current: RwLock::new(current),
            provider,
        })
    }

    /// The chain and key served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, next: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read(path: &Path, key: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{key}: cannot read {}: {e}", path.display()))
}

/// A PEM chain and a PEM key, checked to belong together.
fn parse(cert: &[u8], key: &[u8], provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.certificate: not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err("tls.certificate: no PEM CERTIFICATE block".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("tls.key: no PEM private key: {e}"))?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| format!("tls.key does not fit tls.certificate (or is unsupported): {e}"))
}

/// Polls the two files every `reload_seconds` (never when 0). Contents, not
/// modification times, are compared, so a copy that keeps the mtime is
/// seen too; a failed pair is reported once per change, not every poll.
pub fn spawn_reload(certs: &Arc<Certificates>, settings: &TlsConfig) {
    if settings.reload_seconds == 0 {
        return;
    }
    let every = Duration::from_secs(settings.reload_seconds);
    let weak: Weak<Certificates> = Arc::downgrade(certs);
    let settings = settings.clone();
    // what is served now, read before the task starts: a change made
    // before its first poll must still count as a change
    let mut seen = (
        std::fs::read(&settings.certificate).ok(),
        std::fs::read(&settings.key).ok(),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(certs) = weak.upgrade() else { return };
            let now = (
                tokio::fs::read(&settings.certificate).await.ok(),
                tokio::fs::read(&settings.key).await.ok(),
            );
            if now == seen {
                continue;
            }
            seen = now.clone();
            let (Some(cert), Some(key)) = now else {
                tracing::error!(
                    certificate = %settings.certificate.display(),
                    key = %settings.key.display(),
                    "TLS certificate or key unreadable; still serving the previous certificate"
                );
                continue;
            };
            match parse(&cert, &key, &certs.provider) {
                Ok(next) => {
                    certs.replace(next);
                    tracing::info!(
                        certificate = %settings.certificate.display(),
                        "TLS certificate reloaded"
                    );
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "new TLS certificate not loaded; still serving the previous certificate"
                ),
            }
        }
    });
}
