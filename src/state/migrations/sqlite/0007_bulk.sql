-- Bulk Data $export jobs (issue 6): one row per kick-off, owned by the
-- client that kicked it off. A worker claims a job with a lease (owner,
-- until) and renews it every page; a job whose lease ran out is taken over
-- by any replica and resumes after the last finished resource type
-- (`progress`). Same shape as the PostgreSQL migration.

CREATE TABLE bulk_job (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    status           TEXT NOT NULL,      -- queued | running | complete | failed | deleted
    request          TEXT NOT NULL,      -- the kick-off URL
    spec             TEXT NOT NULL,      -- JSON: level, types, _since, filters, patients
    caller           TEXT NOT NULL,      -- JSON: the kick-off token's claims
    transaction_time TEXT NOT NULL,
    progress         TEXT NOT NULL,      -- JSON: finished types, files, counts, errors
    lease_owner      TEXT,
    lease_until      INTEGER,            -- ms since the epoch
    last_poll        INTEGER,            -- ms since the epoch
    created          INTEGER NOT NULL,   -- ms since the epoch
    finished         INTEGER             -- ms since the epoch
);
CREATE INDEX bulk_job_status ON bulk_job (status);
