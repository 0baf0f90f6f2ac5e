-- Merkle tiles of the audit ledger (src/audit/ledger.rs, merkle.rs): `hash`
-- is the RFC 9162 Merkle Tree Hash (lowercase hex) of the complete, aligned
-- run of 256 leaves with seqs [idx*256, (idx+1)*256) of `ledger_entries`.
-- Derived data, written lazily when a checkpoint or proof first needs a
-- tile, by any replica (deterministic; INSERT … ON CONFLICT DO NOTHING);
-- checkpoint roots and proofs read these instead of every leaf hash.
-- `fhirgate ledger verify` recomputes each stored tile from the entries.

CREATE TABLE ledger_tiles (
    idx           INTEGER PRIMARY KEY,  -- tile index: leaves idx*256 .. idx*256+255
    hash          TEXT NOT NULL
);

-- Defence in depth, as for the entries: a complete tile never changes.
CREATE TRIGGER ledger_tiles_no_update BEFORE UPDATE ON ledger_tiles
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_tiles_no_delete BEFORE DELETE ON ledger_tiles
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
