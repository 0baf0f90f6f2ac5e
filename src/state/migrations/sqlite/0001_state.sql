-- Facade state store (SQLite). Later capabilities add their own migrations.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Embedded user directory (demo users and local accounts). Passwords are argon2id PHC strings.
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,      -- clinician | patient | admin
    fhir_user     TEXT NOT NULL,      -- e.g. Practitioner/123 or Patient/456
    display_name  TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
