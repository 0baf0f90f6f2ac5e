-- Audit payloads and per-patient keys (issue 5, `src/audit/vault.rs`).
-- The chained, PHI-free entry of each event is `ledger_entries.entry`; the
-- readable BALP AuditEvent is stored here encrypted (AES-256-GCM) under the
-- patient's data key, with the columns the AuditEvent search needs. No
-- column holds PHI in clear: patients and agents appear as keyed pseudonyms.

-- One data key per patient pseudonym ('deployment' for events about no
-- patient), wrapped under the master key file. Erasure deletes the row.
CREATE TABLE audit_patient_keys (
    pseudonym     TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,       -- payload rows name the key they were sealed under
    nonce         TEXT NOT NULL,       -- hex, of the wrapping
    wrapped       TEXT NOT NULL,       -- base64 AES-256-GCM(master, key)
    created_at    BIGINT NOT NULL      -- milliseconds since the epoch
);

-- One row per ledger entry that has a readable AuditEvent (seq = its id).
CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY,  -- = ledger_entries.seq
    pseudonym     TEXT NOT NULL,       -- the patient's pseudonym, or 'deployment'
    key_id        TEXT NOT NULL,
    recorded      BIGINT NOT NULL,     -- AuditEvent.recorded, milliseconds since the epoch
    kind          TEXT NOT NULL,       -- rest | authz-consent | http | erasure
    action        TEXT NOT NULL,       -- C R U D E
    outcome       TEXT NOT NULL,       -- 0 4 8 12
    entity_types  TEXT NOT NULL,       -- ' 1 2 Observation ' (codes and resource types)
    nonce         TEXT NOT NULL,       -- hex
    payload       TEXT NOT NULL        -- base64 AES-256-GCM(patient key, AuditEvent JSON)
);
CREATE INDEX audit_events_patient ON audit_events (pseudonym, seq);
CREATE INDEX audit_events_recorded ON audit_events (recorded);

-- Keyed hashes of each event's agents (user fhirUser, OAuth client).
CREATE TABLE audit_event_agents (
    agent         TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (agent, seq)
);
