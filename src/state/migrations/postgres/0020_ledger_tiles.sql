-- Merkle tiles of the audit ledger (src/audit/ledger.rs, merkle.rs): `hash`
-- is the RFC 9162 Merkle Tree Hash (lowercase hex) of the complete, aligned
-- run of 256 leaves with seqs [idx*256, (idx+1)*256) of `ledger_entries`.
-- Derived data, written lazily when a checkpoint or proof first needs a
-- tile, by any replica (deterministic; INSERT … ON CONFLICT DO NOTHING);
-- checkpoint roots and proofs read these instead of every leaf hash.
-- `fhirgate ledger verify` recomputes each stored tile from the entries.

CREATE TABLE ledger_tiles (
    idx           BIGINT PRIMARY KEY,   -- tile index: leaves idx*256 .. idx*256+255
    hash          TEXT NOT NULL
);

-- Defence in depth, as for the entries (ledger_append_only() is in 0003):
-- a complete tile never changes.
CREATE TRIGGER ledger_tiles_append_only BEFORE UPDATE OR DELETE ON ledger_tiles
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
