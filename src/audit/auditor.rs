//! [`Auditor`]: what the rest of the server holds (`AppState::audit`) to
//! record events before a response is released, and to erase a patient's
//! payloads. It owns the ledger writer, the keys and the event builder.
//!
//! The receipt: every audited response carries [`RECEIPT_HEADER`]
//! (`X-Ledger-Seq`), the seq of the request's last ledger entry; all of the
//! request's entries carry its request id (`X-Request-Id`). With `fhirgate
//! ledger proof <seq>` the receipt proves the entry is in the tree.

use std::time::Duration;

use super::{
    error::AuditError,
    events::{Builder, Event, FhirFacts, HttpFacts, RouteNote},
    pseudonym::{patient_reference, KeyFileError, Pseudonymizer},
    vault::Vault,
    writer::Writer,
    Ledger,
};
use crate::{config::Config, pipeline::Disclosure, state::StateStore};

/// The response header carrying the receipt.
pub const RECEIPT_HEADER: &str = "x-ledger-seq";
/// The longest a request waits for its entries to become durable.
const WAIT: Duration = Duration::from_secs(30);

/// The seqs a request's events got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// In append order.
    pub seqs: Vec<u64>,
}

impl Receipt {
    /// The header value: the last seq (none when nothing was recorded).
    pub fn header_value(&self) -> Option<String> {
        self.seqs.last().map(u64::to_string)
    }

    /// Sets [`RECEIPT_HEADER`] on a response.
    pub fn stamp(&self, headers: &mut axum::http::HeaderMap) {
        if let Some(v) = self
            .header_value()
            .and_then(|v| axum::http::HeaderValue::from_str(&v).ok())
        {
            headers.insert(RECEIPT_HEADER, v);
        }
    }
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    /// The patient's pseudonym.
    pub pseudonym: String,
    /// Key rows destroyed (0: there was none).
    pub keys_destroyed: u64,
    /// The seq of the erasure's own ledger entry.
    pub seq: Option<u64>,
}

/// The audit trail of one process.
#[derive(Debug)]
pub struct Auditor {
    enabled: bool,
    builder: Builder,
    ledger: Ledger,
    vault: Vault,
    store: StateStore,
    writer: Writer,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Auditor {
    /// Loads (or creates) the keys in `<data_dir>/keys` and starts the
    /// ledger writer (call within a Tokio runtime).
    pub fn open(config: &Config, store: StateStore) -> Result<Self, KeyFileError> {
        let keys_dir = config.data_dir.join("keys");
        let pz = Pseudonymizer::load_or_create(&keys_dir)?;
        let vault = Vault::load_or_create(&keys_dir, store.clone())?;
        let ledger = Ledger::new(store.clone());
        let writer = Writer::spawn(
            ledger.clone(),
            vault.clone(),
            config.audit.batch_max,
            config.audit.queue,
        );
        Ok(Self {
            enabled: config.audit.enabled,
            builder: Builder {
                public_url: config.public_url.as_str().trim_end_matches('/').to_owned(),
                fhir_base: config.fhir_base(),
                pz,
            },
            ledger,
            vault,
            store,
            writer,
        })
    }

    /// Whether requests are audited.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The payload vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The state store.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// The event builder (and its pseudonymizer).
    pub fn builder(&self) -> &Builder {
        &self.builder
    }

    /// A patient's pseudonym.
    pub fn pseudonym(&self, patient: &str) -> String {
        self.builder.pz.patient(patient)
    }

    /// Makes events durable; resolves with their seqs.
    pub async fn record(&self, events: Vec<Event>) -> Result<Receipt, AuditError> {
        if !self.enabled || events.is_empty() {
            return Ok(Receipt::default());
        }
        match tokio::time::timeout(WAIT, self.writer.submit(events)).await {
            Ok(Ok(seqs)) => Ok(Receipt { seqs }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(AuditError::Unavailable(format!(
                "no durable append within {}s",
                WAIT.as_secs()
            ))),
        }
    }

    /// Records a FHIR request from what the pipeline disclosed.
    pub async fn record_fhir(
        &self,
        request_id: &str,
        http: &HttpFacts,
        fhir: Option<&FhirFacts>,
        disclosure: &Disclosure,
        status: u16,
    ) -> Result<Receipt, AuditError> {
        if !self.enabled {
            return Ok(Receipt::default());
        }
        let events = self
            .builder
            .fhir(request_id, http, fhir, disclosure, status);
        self.record(events).await
    }

    /// Records a non-FHIR route.
    pub async fn record_route(
        &self,
        request_id: &str,
        http: &HttpFacts,
        route: &str,
        status: u16,
        note: &RouteNote,
    ) -> Result<Receipt, AuditError> {
        if !self.enabled {
            return Ok(Receipt::default());
        }
        let event = self.builder.route(request_id, http, route, status, note);
        self.record(vec![event]).await
    }

    /// Erases a patient's audit payloads: destroys the data key (the chain
    /// is untouched and still verifies) and records the erasure itself on
    /// the ledger (pseudonym only). `by` says who asked.
    pub async fn erase_patient(
        &self,
        patient: &str,
        request_id: &str,
        by: &str,
    ) -> Result<Erasure, AuditError> {
        let pseudonym = self.pseudonym(&patient_reference(patient));
        let keys_destroyed = self.vault.erase(&pseudonym).await?;
        let event = self.builder.erasure(request_id, &pseudonym, now_ms(), by);
        // Recorded even when auditing is off: an erasure must leave a trace.
        let seqs = self.writer.submit(vec![event]).await?;
        Ok(Erasure {
            pseudonym,
            keys_destroyed,
            seq: seqs.last().copied(),
        })
    }
}
