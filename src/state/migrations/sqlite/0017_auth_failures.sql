-- Failed authentication attempts, for throttling (issue 10, limits):
-- one row per failure, by kind (`signin`: a password sign-in) and the
-- SHA-256 (hex) of the key (the lower-cased user name), so names typed by
-- strangers are not kept. Shared by replicas; rows older than the window
-- are deleted as new failures arrive, and a success clears its key.
-- Same on SQLite and PostgreSQL.

CREATE TABLE auth_failures (
    kind TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);

CREATE INDEX auth_failures_key ON auth_failures (kind, key_hash, at_ms);

-- The member-match failures (0008) are kept here now, kind `member-match`
-- keyed by client id.
DROP TABLE payer_match_failures;
