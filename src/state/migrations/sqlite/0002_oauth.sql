-- SMART App Launch authorization server state. Codes, refresh tokens and
-- session ids are stored as SHA-256 hashes, never in the clear.

CREATE TABLE oauth_clients (
    client_id     TEXT PRIMARY KEY,
    client_name   TEXT NOT NULL,
    client_type   TEXT NOT NULL,      -- public | confidential-symmetric | confidential-asymmetric
    secret_hash   TEXT,               -- argon2id, symmetric clients only
    metadata      TEXT NOT NULL,      -- registered RFC 7591 metadata (JSON)
    created_at    INTEGER NOT NULL
);

-- An authorize request waiting for sign-in, a patient pick and approval.
CREATE TABLE oauth_pending (
    id            TEXT PRIMARY KEY,
    request       TEXT NOT NULL,      -- validated request (JSON)
    expires_at    INTEGER NOT NULL
);

CREATE TABLE oauth_codes (
    code_hash     TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    grant_json    TEXT NOT NULL,      -- what the code grants (JSON)
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
);

CREATE TABLE oauth_refresh (
    token_hash    TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    grant_json    TEXT NOT NULL,
    code_hash     TEXT,               -- the code the chain started from
    expires_at    INTEGER NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_refresh_code ON oauth_refresh (code_hash);

-- Every access token issued, so a revoked one fails on the next request.
CREATE TABLE oauth_access (
    jti           TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    code_hash     TEXT,
    expires_at    INTEGER NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_access_code ON oauth_access (code_hash);

-- EHR launch contexts: single use, short-lived, bound to a client.
CREATE TABLE oauth_launch (
    launch_id     TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    context       TEXT NOT NULL,      -- patient, encounter, user (JSON)
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
);

-- Client assertion ids seen, kept until they expire (replay protection).
CREATE TABLE oauth_assertion_jti (
    client_id     TEXT NOT NULL,
    jti           TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);

-- Signed-in UI sessions.
CREATE TABLE ui_sessions (
    id_hash       TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    expires_at    INTEGER NOT NULL
);
