-- Payer APIs (issue 6, item 7): failed $member-match attempts per client,
-- for the brute-force limit (`[payer] match_failure_limit` within
-- `match_failure_window_seconds`). Rows older than the window are pruned on
-- every new failure. Same shape as the SQLite migration.

CREATE TABLE payer_match_failures (
    client_id     TEXT NOT NULL,
    at_ms         BIGINT NOT NULL         -- milliseconds since the epoch
);
CREATE INDEX payer_match_failures_client ON payer_match_failures (client_id, at_ms);
