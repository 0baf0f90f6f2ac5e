-- Second factors for step-up authentication (issue 11, src/mfa/store.rs).
-- mfa_totp: one authenticator per user; `sealed` is the TOTP secret under
--   AES-256-GCM (keys/mfa-secrets.key, the user name as associated data);
--   last_step is the last 30-second step accepted (replays refused).
-- mfa_recovery: SHA-256 digests of recovery codes, each spent once.
-- mfa_stepups: step-ups done, by the digest of the UI session id.
-- Same on SQLite and PostgreSQL.

CREATE TABLE mfa_totp (
    username TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    confirmed_at BIGINT,
    last_step BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE mfa_recovery (
    username TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (username, code_hash)
);

CREATE TABLE mfa_stepups (
    session_hash TEXT NOT NULL,
    factor TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);

CREATE INDEX mfa_stepups_session ON mfa_stepups (session_hash, at_ms);
