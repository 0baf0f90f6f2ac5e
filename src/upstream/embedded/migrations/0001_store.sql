-- Embedded FHIR R4 store: versioned resources plus search index tables.
-- `resource` holds the current version of each (type, id); its rowid `res`
-- keys the index rows, which are rewritten whenever the resource changes.

CREATE TABLE resource (
    res          INTEGER PRIMARY KEY,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,   -- FHIR instant, UTC, ms precision (sortable text)
    deleted      INTEGER NOT NULL DEFAULT 0,
    body         TEXT,               -- JSON; NULL when deleted
    UNIQUE (type, id)
);
CREATE INDEX resource_type_updated ON resource (type, last_updated);

-- Every version ever written, in write order (`seq`), for vread and history.
CREATE TABLE resource_version (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,
    method       TEXT    NOT NULL,   -- POST | PUT | DELETE
    deleted      INTEGER NOT NULL DEFAULT 0,
    body         TEXT,
    UNIQUE (type, id, version)
);
CREATE INDEX resource_version_type_seq ON resource_version (type, seq);

-- Search index. `rtype` repeats the resource type so lookups stay within a type.
CREATE TABLE idx_token (
    res     INTEGER NOT NULL,
    rtype   TEXT    NOT NULL,
    param   TEXT    NOT NULL,
    system  TEXT,
    code    TEXT,
    display TEXT                     -- lower-cased text for :text
);
CREATE INDEX idx_token_code ON idx_token (rtype, param, code, system);
CREATE INDEX idx_token_res ON idx_token (res);

CREATE TABLE idx_string (
    res     INTEGER NOT NULL,
    rtype   TEXT    NOT NULL,
    param   TEXT    NOT NULL,
    norm    TEXT    NOT NULL,        -- lower-cased, accents folded (default match: prefix)
    exact   TEXT    NOT NULL         -- as written (:exact)
);
CREATE INDEX idx_string_norm ON idx_string (rtype, param, norm);
CREATE INDEX idx_string_res ON idx_string (res);

CREATE TABLE idx_date (
    res     INTEGER NOT NULL,
    rtype   TEXT    NOT NULL,
    param   TEXT    NOT NULL,
    low     INTEGER NOT NULL,        -- epoch milliseconds, inclusive
    high    INTEGER NOT NULL         -- epoch milliseconds, inclusive
);
CREATE INDEX idx_date_low ON idx_date (rtype, param, low);
CREATE INDEX idx_date_high ON idx_date (rtype, param, high);
CREATE INDEX idx_date_res ON idx_date (res);

CREATE TABLE idx_reference (
    res         INTEGER NOT NULL,
    rtype       TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    target_type TEXT,                -- NULL for external/unresolvable references
    target_id   TEXT,
    url         TEXT,                -- the reference as written when not Type/id
    ident_system TEXT,               -- Reference.identifier.system (for :identifier)
    ident_value  TEXT                -- Reference.identifier.value
);
CREATE INDEX idx_reference_target ON idx_reference (rtype, param, target_id, target_type);
CREATE INDEX idx_reference_reverse ON idx_reference (target_type, target_id, rtype, param);
CREATE INDEX idx_reference_url ON idx_reference (rtype, param, url) WHERE url IS NOT NULL;
CREATE INDEX idx_reference_res ON idx_reference (res);

CREATE TABLE idx_quantity (
    res     INTEGER NOT NULL,
    rtype   TEXT    NOT NULL,
    param   TEXT    NOT NULL,
    value   REAL    NOT NULL,
    system  TEXT,
    code    TEXT,
    unit    TEXT
);
CREATE INDEX idx_quantity_value ON idx_quantity (rtype, param, value);
CREATE INDEX idx_quantity_res ON idx_quantity (res);

CREATE TABLE idx_uri (
    res     INTEGER NOT NULL,
    rtype   TEXT    NOT NULL,
    param   TEXT    NOT NULL,
    value   TEXT    NOT NULL
);
CREATE INDEX idx_uri_value ON idx_uri (rtype, param, value);
CREATE INDEX idx_uri_res ON idx_uri (res);
