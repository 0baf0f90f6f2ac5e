//! The audit trail's one error type: anything that stops an event from
//! becoming durable (the caller then fails closed with 503), or a payload
//! from being read back.

use super::{vault::VaultError, LedgerError};

/// What can go wrong while recording or reading audit events.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The ledger could not append (or read).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The payload vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The payload tables failed.
    #[error("audit store: {0}")]
    Db(#[from] sqlx::Error),
    /// The writer is gone, overloaded or too slow.
    #[error("audit writer unavailable: {0}")]
    Unavailable(String),
}
