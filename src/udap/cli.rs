//! `fhirgate udap …`:
//! - `client-cert`: a client certificate from the demo trust community's CA
//!   (`{data_dir}/udap/community-ca.*`, made at the first start without
//!   `[udap] certificate`), so a UDAP client can be tried against the demo
//!   without a community of its own. Writes `client.pem` (the certificate,
//!   then the CA: the `x5c` order) and `client.key` (PKCS#8, owner-only)
//!   into `--out`.
//! - `link-identity`: says which local user a Tiered OAuth identity
//!   provider's subject is (`--idp` the IdP base URL, its id_tokens' `iss`;
//!   `--sub` their `sub`; `--user` the local user), or with `--remove`
//!   forgets it. Without a link, a Tiered OAuth sign-in as that subject is
//!   refused (`access_denied`).

use std::path::PathBuf;

use clap::Args;

use crate::{config::Config, state::StateStore};

/// Arguments of `fhirgate udap client-cert`.
#[derive(Debug, Args)]
pub struct ClientCertArgs {
    /// The client's URI: the certificate's SAN URI and the software
    /// statement's `iss`.
    #[arg(long)]
    pub san: String,
    /// The certificate's common name.
    #[arg(long, default_value = "UDAP client")]
    pub name: String,
    /// Validity, days.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Directory to write `client.pem` and `client.key` into.
    #[arg(long)]
    pub out: PathBuf,
}

/// Issues the certificate.
pub fn client_cert(config: &Config, a: &ClientCertArgs) -> anyhow::Result<()> {
    if config.udap.certificate.is_some() {
        anyhow::bail!(
            "[udap] certificate is configured: client certificates come from your trust community, not the demo CA"
        );
    }
    if url::Url::parse(&a.san).is_err() {
        anyhow::bail!("--san must be an absolute URI, not {}", a.san);
    }
    let dir = config.data_dir.join("udap");
    let ca_key = std::fs::read_to_string(dir.join("community-ca.key")).map_err(|e| {
        anyhow::anyhow!(
            "the demo CA is made at the first `fhirgate serve` ({}): {e}",
            dir.display()
        )
    })?;
    let ca_cert = std::fs::read_to_string(dir.join("community-ca.pem"))?;
    let leaf = super::pki::leaf(&ca_key, &a.san, &a.name, a.days)?;
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("client.pem"), format!("{}{ca_cert}", leaf.cert))?;
    let key = a.out.join("client.key");
    std::fs::write(&key, &leaf.key)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    }
    crate::stdout::line(
        serde_json::json!({"certificate": a.out.join("client.pem"), "key": key, "san": a.san,
            "community": super::config::DEMO_COMMUNITY}),
    )?;
    Ok(())
}

/// Arguments of `fhirgate udap link-identity`.
#[derive(Debug, Args)]
pub struct LinkIdentityArgs {
    /// The identity provider's base URL (the `iss` of its id_tokens).
    #[arg(long)]
    pub idp: String,
    /// The subject (`sub`) the identity provider gives the person.
    #[arg(long)]
    pub sub: String,
    /// The local user name (required unless `--remove`).
    #[arg(long)]
    pub user: Option<String>,
    /// Remove the link instead.
    #[arg(long)]
    pub remove: bool,
}

/// Links (or unlinks) an identity provider's subject to a local user.
pub async fn link_identity(config: &Config, a: &LinkIdentityArgs) -> anyhow::Result<()> {
    use super::tiered::store;
    if !crate::net::https_or_loopback(&a.idp) {
        anyhow::bail!(
            "--idp must be the identity provider's https base URL, not {}",
            a.idp
        );
    }
    if a.sub.is_empty() {
        anyhow::bail!("--sub must not be empty");
    }
    let state = StateStore::open(config.database_url.as_deref(), &config.data_dir).await?;
    let now = crate::oauth::now();
    if a.remove {
        let removed = store::unlink(&state, &a.idp, &a.sub).await?;
        crate::stdout::line(serde_json::json!({"idp": a.idp, "sub": a.sub, "removed": removed}))?;
        return Ok(());
    }
    let Some(user) = a.user.as_deref() else {
        anyhow::bail!("--user (the local user name) is required");
    };
    if state.user_get(user).await?.is_none() {
        anyhow::bail!("there is no local user {user}");
    }
    store::link(&state, &a.idp, &a.sub, user, now).await?;
    crate::stdout::line(
        serde_json::json!({"idp": a.idp, "sub": a.sub, "user": user, "linked": true}),
    )?;
    Ok(())
}
