-- Prior authorization (issue 7, Da Vinci PAS): one row per PAS request,
-- keyed by the submitting client and the Claim identifier; a new $submit
-- with the same Claim identifier from the same client updates the row.
-- `items` holds the per-item state (JSON: sequence, service, state,
-- decided time, reviewer, reason); `response` the current ClaimResponse.
-- Same shape as the SQLite migration.

CREATE TABLE pa_requests (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    organization     TEXT,
    claim_system     TEXT NOT NULL,
    claim_value      TEXT NOT NULL,
    patient_key      TEXT NOT NULL,      -- member identifier system|value
    provider_key     TEXT NOT NULL,      -- requestor identifier system|value
    urgency          TEXT NOT NULL,      -- expedited | standard
    state            TEXT NOT NULL,      -- see prior_auth::state::State
    received_ms      BIGINT NOT NULL,
    deadline_ms      BIGINT NOT NULL,
    decided_ms       BIGINT,
    items            TEXT NOT NULL,
    request          TEXT NOT NULL,      -- the PAS Request Bundle as received
    response         TEXT NOT NULL,      -- the current ClaimResponse
    updated_ms       BIGINT NOT NULL
);
CREATE UNIQUE INDEX pa_requests_claim ON pa_requests (client_id, claim_system, claim_value);
CREATE INDEX pa_requests_state ON pa_requests (state, deadline_ms);
