//! The audit trail's `fhirgate ledger` subcommands (flattened into
//! [`super::cli::LedgerCommand`]): `export --since <seq>` (NDJSON of the
//! chained entries, for SIEM ingestion), `erase-patient <Patient/id>`
//! (destroy the patient's payload key) and `verify-payloads`.

use std::io::Write;

use clap::Subcommand;

use super::{check, export, Auditor, Ledger};
use crate::config::Config;

/// `fhirgate ledger export | erase-patient | verify-payloads`.
#[derive(Debug, Subcommand)]
pub enum TrailCommand {
    /// Print the chained (PHI-free) entries as NDJSON, one per line, from
    /// seq `--since` on (for SIEM ingestion, e.g. Microsoft Sentinel).
    Export {
        /// First seq to print.
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Erase a patient's audit payloads: destroy their payload key (GDPR
    /// erasure). The chain is untouched and still verifies; the erasure
    /// itself is recorded (by pseudonym). Prints the result as JSON.
    ErasePatient {
        /// `Patient/<id>` (or the bare id).
        patient: String,
    },
    /// Check every encrypted payload against the chain (present, decrypts,
    /// digest matches); exits non-zero on a missing or bad payload.
    VerifyPayloads,
}

/// Runs one of these subcommands.
pub async fn run(config: &Config, ledger: Ledger, cmd: TrailCommand) -> anyhow::Result<()> {
    match cmd {
        TrailCommand::Export { since } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = export::export(&ledger, since, &mut out).await?;
            // flushed here: a BufWriter's drop would lose a failure
            out.flush().map_err(crate::stdout::failed)?;
            drop(out);
            crate::stdout::note(format_args!("exported {n} entries"));
            Ok(())
        }
        TrailCommand::ErasePatient { patient } => {
            let auditor = Auditor::open(config, ledger.store.clone())?;
            let request_id = format!("cli-{}", uuid::Uuid::new_v4());
            let e = auditor
                .erase_patient(
                    &patient,
                    &request_id,
                    "operator (fhirgate ledger erase-patient)",
                )
                .await?;
            crate::stdout::json(&e)?;
            Ok(())
        }
        TrailCommand::VerifyPayloads => {
            let auditor = Auditor::open(config, ledger.store.clone())?;
            let report = check::verify_payloads(&auditor).await?;
            crate::stdout::json(&report)?;
            if report.ok() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "payload verification FAILED: {} missing, {} bad (first bad seq {:?})",
                    report.missing.len(),
                    report.bad.len(),
                    report.bad.first().or(report.missing.first())
                ))
            }
        }
    }
}
