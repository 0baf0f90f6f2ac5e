//! The demo EHR as a CDS client, so CRD can be called from the demo start
//! without configuring `[crd] clients`: in demo mode with no CDS client
//! configured, [`trust_demo_ehr`] trusts `iss` = `{public_url}/demo-ehr`
//! with the public key of an RSA key kept in
//! `{data_dir}/demo/cds-client.key` (made once, owner-only), and
//! `fhirgate crd demo-jwt --service <id>` ([`demo_jwt`]) signs the
//! RS384 JWT a hook call carries (`aud` = the service URL, five minutes,
//! a fresh `jti`). Outside demo mode nothing here runs.

use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rsa::{
    pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding},
    traits::PublicKeyParts,
    RsaPrivateKey,
};
use serde_json::json;

use super::config::CdsClientConfig;
use crate::config::Config;

/// The demo EHR's path under the public URL (its `iss`).
pub const DEMO_EHR_PATH: &str = "/demo-ehr";

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo").join("cds-client.key")
}

fn iss(config: &Config) -> String {
    format!(
        "{}{DEMO_EHR_PATH}",
        config.public_url.as_str().trim_end_matches('/')
    )
}

/// The demo CDS client's key, made on first use.
fn key(data_dir: &Path) -> anyhow::Result<RsaPrivateKey> {
    let path = key_path(data_dir);
    if let Ok(pem) = std::fs::read_to_string(&path) {
        return Ok(RsaPrivateKey::from_pkcs8_pem(&pem)?);
    }
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, key.to_pkcs8_pem(LineEnding::LF)?.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(key)
}

fn kid(key: &RsaPrivateKey) -> String {
    let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
    smart_launch::keys::rsa_thumbprint(&n, &e)
}

/// Trusts the demo EHR when no CDS client is configured.
pub fn trust_demo_ehr(config: &mut Config) -> anyhow::Result<()> {
    if !config.crd.clients.is_empty() {
        return Ok(());
    }
    let key = key(&config.data_dir)?;
    let jwk = json!({"kty": "RSA", "alg": "RS384", "use": "sig", "kid": kid(&key),
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())});
    config.crd.clients.push(CdsClientConfig {
        iss: iss(config),
        jku: Vec::new(),
        jwks: Some(json!({ "keys": [jwk] })),
    });
    Ok(())
}

/// A hook call's JWT from the demo EHR for service `id`.
pub fn demo_jwt(config: &Config, id: &str) -> anyhow::Result<String> {
    let key = key(&config.data_dir)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF)?;
    let now = crate::oauth::now();
    let claims = json!({
        "iss": iss(config),
        "aud": format!("{}/cds-services/{id}", config.public_url.as_str().trim_end_matches('/')),
        "iat": now,
        "exp": now + 300,
        "jti": smart_launch::token::random_token(16),
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
    header.kid = Some(kid(&key));
    header.typ = Some("JWT".into());
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())?,
    )?)
}
