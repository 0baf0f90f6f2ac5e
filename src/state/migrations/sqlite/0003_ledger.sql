-- Tamper-evident audit ledger (issue 5). Append-only: `seq` is the RFC 9162
-- leaf index (from 0), `leaf_hash` = SHA-256(0x00 || leaf bytes) and
-- `chain_hash` = SHA-256(previous chain_hash || leaf bytes), where the leaf
-- bytes are the RFC 8785 canonical JSON of {seq, created_at, request_id,
-- entry}. Hashes are lowercase hex. No PHI in `entry`.

CREATE TABLE ledger_entries (
    seq           INTEGER PRIMARY KEY,  -- 0, 1, 2, … without gaps
    created_at    INTEGER NOT NULL,     -- milliseconds since the epoch
    request_id    TEXT,                 -- the request id that is also in the logs
    entry         TEXT NOT NULL,        -- the chained part (canonical JSON)
    leaf_hash     TEXT NOT NULL,
    chain_hash    TEXT NOT NULL
);

-- One row: the next seq and the last chain hash; appenders serialize on it.
CREATE TABLE ledger_head (
    id            INTEGER PRIMARY KEY CHECK (id = 0),
    size          INTEGER NOT NULL,
    chain_hash    TEXT NOT NULL
);
INSERT INTO ledger_head (id, size, chain_hash)
VALUES (0, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Signed tree heads: a JWS (RS256, the server's key) over {tree_size, root_hash, time}.
CREATE TABLE ledger_checkpoints (
    tree_size     INTEGER PRIMARY KEY,
    root_hash     TEXT NOT NULL,
    created_at    INTEGER NOT NULL,     -- milliseconds since the epoch
    signature     TEXT NOT NULL
);

-- Defence in depth; `fhirgate ledger verify` does not rely on these.
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
