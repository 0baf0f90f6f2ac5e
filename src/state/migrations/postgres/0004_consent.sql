-- Consent decision index (issue 4, item 4): every Consent the facade has
-- seen (written through it or polled from the upstream), keyed by id, with a
-- per-patient generation bumped on every change so each replica's decision
-- cache knows when to reload. Same shape as the SQLite migration.

CREATE TABLE consent_index (
    consent_id    TEXT PRIMARY KEY,
    patient       TEXT,                  -- `Patient/<id>`; NULL: no patient reference
    version_id    TEXT,                  -- meta.versionId
    last_updated  TEXT,                  -- meta.lastUpdated (normalised UTC instant)
    status        TEXT,                  -- Consent.status as written
    body          TEXT,                  -- the Consent JSON
    deleted       SMALLINT NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))  -- 1: tombstone
);
CREATE INDEX consent_index_patient ON consent_index (patient);

-- Bumped (in the same transaction) on every change to a patient's Consents.
-- No row: generation 0, no Consents.
CREATE TABLE consent_generation (
    patient       TEXT PRIMARY KEY,
    generation    BIGINT NOT NULL
);

-- One row: the upstream `_lastUpdated` watermark of the Consent poller.
CREATE TABLE consent_sync (
    id            INTEGER PRIMARY KEY CHECK (id = 0),
    watermark     TEXT                   -- NULL: never synced
);
INSERT INTO consent_sync (id, watermark) VALUES (0, NULL);
