-- Azure Confidential Ledger anchors of the audit ledger's checkpoints
-- (`src/audit/anchor.rs`). One row per anchored checkpoint: what was posted
-- (`contents`, canonical JSON of {tree_size, root_hash, previous_tree_size,
-- previous_root_hash, time}; hashes and sizes only, no PHI), the
-- transaction id Azure answered (`x-ms-ccf-transaction-id`) and, once
-- committed, its receipt (JSON). A replica claims a row until
-- `claimed_until` (ms) so two replicas do not post the same checkpoint.

CREATE TABLE ledger_anchors (
    tree_size           BIGINT PRIMARY KEY,   -- the checkpoint's tree size
    root_hash           TEXT NOT NULL,
    previous_tree_size  BIGINT,               -- the checkpoint before it, if any
    previous_root_hash  TEXT,
    contents            TEXT NOT NULL,        -- the string posted as `contents`
    transaction_id      TEXT,                 -- set once Azure accepted the entry
    collection_id       TEXT,
    receipt             TEXT,                 -- the `receipt` object, once Ready
    attempts            BIGINT NOT NULL DEFAULT 0,
    last_error          TEXT,
    claimed_until       BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,     -- milliseconds since the epoch
    updated_at          BIGINT NOT NULL
);
