-- How each UI session's user was authenticated (issue 11, src/assurance/session.rs):
-- source `password` (a local account) or `federated` (an OpenID Provider);
-- acr and amr (space-separated RFC 8176 values) as asserted or configured;
-- auth_time, seconds since the epoch. Step-ups stay in mfa_stepups and are
-- added when the session's assurance is read. Keyed like ui_sessions (the
-- SHA-256 of the session id) and removed with it.
-- Same on SQLite and PostgreSQL.

CREATE TABLE ui_session_assurance (
    id_hash TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    acr TEXT,
    amr TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
