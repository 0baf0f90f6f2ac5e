//! `fhirgate consent explain`: the decision a caller would get on one
//! resource and what produced it (see `pipeline::consent::explain`).

use clap::Subcommand;

use crate::{config::Config, pipeline::consent::explain, AppState};

/// `fhirgate consent …`.
#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Explain the decision for one caller and one resource.
    Explain {
        /// The resource, `Type/id` (e.g. `Observation/123`).
        #[arg(long)]
        resource: String,
        /// OAuth client id of the caller.
        #[arg(long)]
        client: String,
        /// The patient the resource should be about (checked).
        #[arg(long)]
        patient: Option<String>,
        /// fhirUser of the caller, e.g. `Practitioner/dr`.
        #[arg(long)]
        user: Option<String>,
        /// Role of the caller (`clinician`, `patient`, `admin`).
        #[arg(long)]
        role: Option<String>,
        /// Purpose of use (v3-ActReason, e.g. TREAT, HPAYMT, BTG).
        #[arg(long)]
        purpose: Option<String>,
        /// Organization the caller acts for, e.g. `Organization/clinic`
        /// (default: the client's `[payer] provider_clients` mapping).
        #[arg(long)]
        organization: Option<String>,
        /// Break-the-glass reason.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Runs `fhirgate consent …`; prints JSON.
pub async fn run(config: Config, cmd: ConsentCommand) -> anyhow::Result<()> {
    let ConsentCommand::Explain {
        resource,
        client,
        patient,
        user,
        role,
        purpose,
        organization,
        reason,
    } = cmd;
    let (app, _) = AppState::open(config).await?;
    let ctx = app.request_context("consent-explain");
    app.consent
        .index
        .sync(app.upstream.as_ref(), &ctx)
        .await
        .map_err(|e| anyhow::anyhow!("consent index sync: {e}"))?;
    let input = explain::ExplainInput {
        resource,
        client,
        user,
        role,
        purpose,
        organization,
        reason,
        patient,
    };
    let out = explain::explain(&app, &input)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    crate::stdout::json(&out)?;
    Ok(())
}
