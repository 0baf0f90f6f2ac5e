//! The tamper-evident audit ledger (issue 5): the core, not yet wired into
//! the request pipeline.
//!
//! - [`jcs`]: RFC 8785 JSON canonicalization (the bytes that get hashed).
//! - [`merkle`]: RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and
//!   consistency proofs and their verification.
//! - [`ledger`]: the append-only, hash-chained entries and signed
//!   checkpoints on the state store (SQLite or PostgreSQL), group-commit
//!   appends and proof generation.
//! - [`proof`]: inclusion and consistency proofs out of the stored ledger.
//! - [`verify`]: `fhirgate ledger verify`: recompute and report the first
//!   bad entry.
//! - [`cli`]: `fhirgate ledger verify | proof | consistency | checkpoint |
//!   demo-append`.

pub mod cli;
pub mod jcs;
pub mod ledger;
pub mod merkle;
pub mod proof;
pub mod verify;

pub use ledger::{Checkpoint, Ledger, LedgerError, NewEntry};
pub use proof::{ConsistencyProof, InclusionProof};
pub use verify::{Problem, VerifyReport};

#[cfg(test)]
pub(crate) mod tests;
