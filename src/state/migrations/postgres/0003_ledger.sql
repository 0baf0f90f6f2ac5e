-- Tamper-evident audit ledger (issue 5). Append-only: `seq` is the RFC 9162
-- leaf index (from 0), `leaf_hash` = SHA-256(0x00 || leaf bytes) and
-- `chain_hash` = SHA-256(previous chain_hash || leaf bytes), where the leaf
-- bytes are the RFC 8785 canonical JSON of {seq, created_at, request_id,
-- entry}. Hashes are lowercase hex. No PHI in `entry`.

CREATE TABLE ledger_entries (
    seq           BIGINT PRIMARY KEY,   -- 0, 1, 2, … without gaps
    created_at    BIGINT NOT NULL,      -- milliseconds since the epoch
    request_id    TEXT,                 -- the request id that is also in the logs
    entry         TEXT NOT NULL,        -- the chained part (canonical JSON)
    leaf_hash     TEXT NOT NULL,
    chain_hash    TEXT NOT NULL
);

-- One row: the next seq and the last chain hash. Appenders (any replica)
-- take it with SELECT … FOR UPDATE, so the chain cannot fork or gap.
CREATE TABLE ledger_head (
    id            INTEGER PRIMARY KEY CHECK (id = 0),
    size          BIGINT NOT NULL,
    chain_hash    TEXT NOT NULL
);
INSERT INTO ledger_head (id, size, chain_hash)
VALUES (0, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Signed tree heads: a JWS (RS256, the server's key) over {tree_size, root_hash, time}.
CREATE TABLE ledger_checkpoints (
    tree_size     BIGINT PRIMARY KEY,
    root_hash     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,      -- milliseconds since the epoch
    signature     TEXT NOT NULL
);

-- Defence in depth; `fhirgate ledger verify` does not rely on these.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END;
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
