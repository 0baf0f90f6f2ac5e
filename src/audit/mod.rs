//! The tamper-evident audit trail (issue 5): the ledger core, and the audit
//! of every request written to it before the response is released.
//!
//! Ledger core:
//! - [`jcs`]: RFC 8785 JSON canonicalization (the bytes that get hashed).
//! - [`merkle`]: RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and
//!   consistency proofs and their verification.
//! - [`ledger`]: the append-only, hash-chained entries and signed
//!   checkpoints on the state store (SQLite or PostgreSQL), group-commit
//!   appends and proof generation.
//! - [`proof`]: inclusion and consistency proofs out of the stored ledger.
//! - [`verify`]: `fhirgate ledger verify`: recompute and report the first
//!   bad entry.
//! - [`anchor`]: posts each checkpoint to Azure Confidential Ledger and
//!   keeps the transaction id and receipt.
//! - [`cli`]: `fhirgate ledger verify | proof | consistency | checkpoint |
//!   demo-append | export | erase-patient | verify-payloads`.
//!
//! Every request (the audit trail on the ledger):
//! - [`events`], [`balp`]: one request → its BALP AuditEvents (one per
//!   patient touched, plus AuthZ-consent events) and their PHI-free chained
//!   entries.
//! - [`pseudonym`]: keyed HMAC pseudonyms of patients, references, agents.
//! - [`vault`]: per-patient AES-256-GCM payload encryption and erasure.
//! - [`writer`]: the group-commit batcher task; [`store`]: payload tables.
//! - [`auditor`]: [`Auditor`], held by `AppState`: record, receipt
//!   (`X-Ledger-Seq`), erase; [`checkpoint`]: the checkpoint timer.
//! - [`middleware`]: the audit layer of the non-FHIR routes;
//!   [`admin_api`]: erasure over HTTP.
//! - [`read`]: `GET /fhir/AuditEvent` from the decrypted payloads, and the
//!   portal's access history; [`check`]: `ledger verify-payloads`;
//!   [`export`]: `ledger export` (NDJSON for SIEM).

pub mod admin_api;
pub mod anchor;
pub mod appender;
pub mod auditor;
pub mod balp;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod compact;
pub mod error;
pub mod events;
pub mod export;
pub mod jcs;
pub mod ledger;
pub mod merkle;
pub mod middleware;
pub mod proof;
pub mod pseudonym;
pub mod read;
pub mod store;
pub mod trail_cli;
pub mod vault;
pub mod verify;
pub mod writer;

pub use ledger::{Checkpoint, Ledger, LedgerError, NewEntry};
pub use proof::{ConsistencyProof, InclusionProof};
pub use verify::{Problem, VerifyReport};

pub use auditor::{Auditor, Erasure, Receipt, RECEIPT_HEADER};
pub use error::AuditError;
pub use events::{FhirFacts, HttpFacts, RouteNote};
pub use read::{history_for_patient, search_audit, AccessRow};

#[cfg(test)]
mod events_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_trail;
