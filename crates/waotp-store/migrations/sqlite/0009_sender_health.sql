-- Issue 19: the sender's health from Meta's management webhooks, and each app's backup
-- templates (comma-separated names, tried in order when the template a send would use is
-- unusable).
ALTER TABLE apps ADD COLUMN backup_templates TEXT NOT NULL DEFAULT '';

-- The newest word on each (kind, subject, aspect): e.g. ('template', 'auth_a/en_US', 'status').
CREATE TABLE sender_health (
    kind       TEXT NOT NULL,     -- template | number | account
    subject    TEXT NOT NULL,
    aspect     TEXT NOT NULL,
    value      TEXT NOT NULL,
    reason     TEXT,
    at_ms      INTEGER NOT NULL,  -- when it became true (Meta's event time): older never replaces newer
    source     TEXT NOT NULL,     -- webhook | send | doctor
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, subject, aspect)
) WITHOUT ROWID;

-- Recent management events: a replayed one (same hash) changes nothing. Bounded (the newest
-- 1,000 are kept).
CREATE TABLE sender_health_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    hash        BLOB NOT NULL UNIQUE,
    field       TEXT NOT NULL,
    summary     TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
