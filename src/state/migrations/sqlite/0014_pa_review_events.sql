-- Prior authorization (issue 7): review actions besides item decisions,
-- one row each: a timeframe extension of a pended request (`extended`,
-- the days in `detail`) and an appeal of a denied item (`appealed`,
-- the item sequence in `item_sequence`). The CMS-0057-F metrics count
-- requests approved after appeal and with an extended timeframe from
-- them. Same shape on SQLite and PostgreSQL.

CREATE TABLE pa_events (
    request_id    TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    kind          TEXT NOT NULL,      -- extended | appealed
    item_sequence INTEGER,
    actor         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    detail        TEXT
);
CREATE INDEX pa_events_request ON pa_events (request_id, at_ms);
