-- Da Vinci PAS subscriptions (issue 7, item 2): R4 topic-based
-- Subscriptions (Subscriptions R5 Backport IG) on the PAS topic, answered
-- by the facade itself (src/subscriptions). One row per Subscription,
-- owned by the organization that created it; only that organization sees
-- or changes it. `resource` is the Subscription as the client sent it
-- (id, meta, status and error are overlaid from the columns when read);
-- `events` counts the event notifications generated since the
-- subscription started (events-since-subscription-start).
-- Same shape on SQLite and PostgreSQL.

CREATE TABLE pas_subscriptions (
    id               TEXT PRIMARY KEY,
    organization     TEXT NOT NULL,      -- owner, Organization/<id>
    client_id        TEXT NOT NULL,      -- the OAuth client that created it
    status           TEXT NOT NULL,      -- requested | active | error | off
    error            TEXT,               -- why it is in error, for the owner
    resource         TEXT NOT NULL,      -- the Subscription JSON as accepted
    events           BIGINT NOT NULL DEFAULT 0,
    version          BIGINT NOT NULL,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL
);
CREATE INDEX pas_subscriptions_org ON pas_subscriptions (organization, status);
