-- Issue 19: the sender's health from Meta's management webhooks, and each app's backup
-- templates (comma-separated names, tried in order when the template a send would use is
-- unusable).
ALTER TABLE apps ADD COLUMN backup_templates text NOT NULL DEFAULT '';

-- The newest word on each (kind, subject, aspect): e.g. ('template', 'auth_a/en_US', 'status').
CREATE TABLE sender_health (
    kind       text NOT NULL,     -- template | number | account
    subject    text NOT NULL,
    aspect     text NOT NULL,
    value      text NOT NULL,
    reason     text,
    at_ms      bigint NOT NULL,   -- when it became true (Meta's event time): older never replaces newer
    source     text NOT NULL,     -- webhook | send | doctor
    updated_at bigint NOT NULL,
    PRIMARY KEY (kind, subject, aspect)
);

-- Recent management events: a replayed one (same hash) changes nothing. Bounded (the newest
-- 1,000 are kept).
CREATE TABLE sender_health_events (
    seq         bigserial PRIMARY KEY,
    hash        bytea NOT NULL UNIQUE,
    field       text NOT NULL,
    summary     text NOT NULL,
    at_ms       bigint NOT NULL,
    received_at bigint NOT NULL
);
