//! `fhirgate ledger …`: verify the ledger and print RFC 9162 proofs as JSON.
//!
//! Works on the configured state store (the data directory's `state.db`, or
//! PostgreSQL) and the server's keys in `<data_dir>/keys`; it does not open
//! the FHIR upstream, so it runs beside a live server.

use clap::Subcommand;
use serde_json::json;

use super::{Ledger, NewEntry};
use crate::{config::Config, state::StateStore};

/// `fhirgate ledger …`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the hash chain and the Merkle tree, check every signed
    /// checkpoint; exits non-zero naming the first bad entry.
    Verify,
    /// Print the RFC 9162 inclusion proof of entry `seq` (its leaf index)
    /// against the latest checkpoint, or the current tree if no checkpoint
    /// covers it: JSON with `leaf_index`, `tree_size`, `leaf_hash`,
    /// `audit_path`, `root_hash` (hex), `leaf_data` and `checkpoint`.
    Proof {
        /// The entry's sequence number.
        seq: u64,
    },
    /// Print the RFC 9162 consistency proof between two tree sizes: JSON
    /// with `first`, `second`, `first_hash`, `second_hash`, `consistency_path`.
    Consistency {
        /// Older tree size.
        size1: u64,
        /// Newer tree size.
        size2: u64,
    },
    /// Sign a checkpoint of the current tree with the server's key; prints it.
    Checkpoint,
    /// Test/demo helper: append `n` synthetic entries (no PHI) in one batch
    /// and print their seqs.
    DemoAppend {
        /// How many.
        n: usize,
    },
    /// The audit trail's commands.
    #[command(flatten)]
    Trail(super::trail_cli::TrailCommand),
}

async fn open(config: &Config) -> anyhow::Result<Ledger> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!("cannot create data_dir {}: {e}", config.data_dir.display())
    })?;
    let store = StateStore::open(config.database_url.as_deref(), &config.data_dir).await?;
    Ok(Ledger::new(store))
}

fn keys(config: &Config) -> anyhow::Result<smart_launch::keys::KeySet> {
    let dir = config.data_dir.join("keys");
    smart_launch::keys::KeySet::load_or_create(&dir)
        .map_err(|e| anyhow::anyhow!("signing keys in {}: {e}", dir.display()))
}

/// Runs one `ledger` subcommand.
pub async fn run(config: &Config, cmd: LedgerCommand) -> anyhow::Result<()> {
    let ledger = open(config).await?;
    match cmd {
        LedgerCommand::Verify => {
            let report = ledger.verify(&keys(config)?).await?;
            match report.problem {
                None => {
                    crate::stdout::line(format_args!(
                        "ledger OK: {} entries, {} checkpoints verified, root {}",
                        report.entries, report.checkpoints, report.root_hash
                    ))?;
                    Ok(())
                }
                Some(problem) => Err(anyhow::anyhow!("ledger verification FAILED: {problem}")),
            }
        }
        LedgerCommand::Proof { seq } => {
            let (proof, checkpoint) = ledger.proof_against_latest(seq).await?;
            let out = super::proof::proof_json(&proof, checkpoint.as_ref());
            crate::stdout::json(&out)?;
            Ok(())
        }
        LedgerCommand::Consistency { size1, size2 } => {
            let proof = ledger.consistency_proof(size1, size2).await?;
            crate::stdout::json(&proof)?;
            Ok(())
        }
        LedgerCommand::Checkpoint => {
            let c = ledger.checkpoint(&keys(config)?).await?;
            crate::stdout::json(&c)?;
            Ok(())
        }
        LedgerCommand::Trail(cmd) => super::trail_cli::run(config, ledger, cmd).await,
        LedgerCommand::DemoAppend { n } => {
            let start = ledger.size().await?;
            let batch: Vec<NewEntry> = (0..n as u64)
                .map(|i| NewEntry {
                    request_id: Some(format!("demo-{}", start + i)),
                    entry: json!({
                        "type": "demo",
                        "action": "R",
                        "outcome": "0",
                        "patient": format!("pseudonym-{:04}", (start + i) % 97),
                        "n": start + i,
                    }),
                })
                .collect();
            let seqs = ledger.append(&batch).await?;
            crate::stdout::line(serde_json::to_string(&seqs)?)?;
            Ok(())
        }
    }
}
