-- Consent receipts (issue 11, src/http/ui/portal/receipt.rs): the JSON a
-- patient keeps after granting or revoking a consent in the portal (the
-- Consent version, the ledger seq of the write, its inclusion proof), by
-- a random id, readable only by that patient. Same on SQLite and PostgreSQL.

CREATE TABLE consent_receipts (
    id TEXT PRIMARY KEY,
    patient TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX consent_receipts_patient ON consent_receipts (patient, created_at);
