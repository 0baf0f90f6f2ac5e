//! `fhirgate token issue`: an operator mints an access token directly, with
//! the server's signing key, recorded in the state store exactly like one
//! from the token endpoint (revocable, introspectable). For operators and
//! black-box test suites that need a caller with a given user, role,
//! organization and purpose of use without running a sign-in flow; whoever
//! can run it can already read the keys in the data directory. The
//! organization is what `--organization` says (no PractitionerRole look-up).

use clap::Args;

use crate::{config::Config, AppState};

/// `fhirgate token issue …`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Client id the token is issued to (must be registered unless --any-client).
    #[arg(long)]
    pub client: String,
    /// Granted scopes (space-separated).
    #[arg(long)]
    pub scope: String,
    /// Launch patient id.
    #[arg(long)]
    pub patient: Option<String>,
    /// fhirUser, e.g. `Practitioner/dr`.
    #[arg(long)]
    pub user: Option<String>,
    /// Role (`clinician`, `patient`, `admin`).
    #[arg(long)]
    pub role: Option<String>,
    /// Purpose of use claim (v3-ActReason).
    #[arg(long)]
    pub purpose: Option<String>,
    /// Organization the caller acts for, e.g. `Organization/clinic`
    /// (matched by Consent actors; taken as given).
    #[arg(long)]
    pub organization: Option<String>,
    /// The user's authentication context class (`acr`), e.g. an IAL URI.
    #[arg(long)]
    pub acr: Option<String>,
    /// The user's authentication methods (`amr`, RFC 8176), comma-separated, e.g. `pwd,otp`.
    #[arg(long, value_delimiter = ',')]
    pub amr: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,
    /// Issue even if the client is not registered.
    #[arg(long)]
    pub any_client: bool,
}

/// Mints, records and prints the token.
pub async fn run(config: Config, a: IssueArgs) -> anyhow::Result<()> {
    let (app, _) = AppState::open(config).await?;
    if !a.any_client && app.state.client_get(&a.client).await?.is_none() {
        anyhow::bail!(
            "client {} is not registered (use --any-client to issue anyway)",
            a.client
        );
    }
    if let Some(o) = &a.organization {
        let org = crate::fhir::Reference::parse(o, None);
        if org.is_none_or(|r| r.resource_type != "Organization") {
            anyhow::bail!("--organization must be Organization/<id>, not {o}");
        }
    }
    let base = app.config.fhir_base();
    let now = super::now();
    let jti = smart_launch::token::random_token(16);
    let claims = smart_launch::token::AccessClaims {
        iss: base.clone(),
        sub: a.user.clone().unwrap_or_else(|| a.client.clone()),
        aud: base,
        exp: now + a.ttl,
        iat: now,
        jti: jti.clone(),
        client_id: a.client.clone(),
        scope: a.scope,
        patient: a.patient,
        encounter: None,
        fhir_user: a.user,
        role: a.role,
        purpose_of_use: a.purpose,
        organization: a.organization,
        auth_time: (a.acr.is_some() || !a.amr.is_empty()).then_some(now),
        acr: a.acr,
        amr: a.amr,
    };
    app.state
        .access_put(&jti, &a.client, None, now + a.ttl)
        .await?;
    let token = smart_launch::token::mint_access(&app.keys, &claims)?;
    crate::stdout::line(&token)?;
    Ok(())
}
