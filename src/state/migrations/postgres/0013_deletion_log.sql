-- Deletions made through fhirgate on an HTTP upstream (issue 6): the
-- upstream may keep no history of a deleted resource (or have no type-level
-- history), so a Bulk Data `_since` export could not name it in the
-- manifest's `deleted` list. Each successful DELETE records the type, id,
-- time and the last version (read just before the delete), which the
-- export judges under today's consent like any resource before it names
-- the deletion. Same shape on SQLite and PostgreSQL.

CREATE TABLE deletion_log (
    seq BIGSERIAL PRIMARY KEY,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    deleted_at    BIGINT NOT NULL,
    last_version  TEXT NOT NULL
);

CREATE INDEX deletion_log_type_time ON deletion_log (resource_type, deleted_at, seq);
