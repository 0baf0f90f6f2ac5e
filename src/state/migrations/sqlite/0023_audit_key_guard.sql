-- A payload is never stored under a data key that no longer exists (issue
-- 10): the ledger writer keeps the data keys it used in memory, and an
-- erasure (crypto-shredding, possibly by another replica) deletes a key
-- row. An append whose payload names an erased key fails here, inside its
-- transaction; the writer then forgets its keys and seals again under the
-- patient's fresh key (`src/audit/vault.rs`, `src/audit/writer.rs`).
CREATE TRIGGER audit_events_key_present BEFORE INSERT ON audit_events
WHEN NOT EXISTS (
    SELECT 1 FROM audit_patient_keys k
    WHERE k.pseudonym = NEW.pseudonym AND k.key_id = NEW.key_id
)
BEGIN SELECT RAISE(ABORT, 'audit payload sealed under an erased key'); END;
