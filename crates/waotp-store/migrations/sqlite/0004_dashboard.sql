-- The dashboard: when each session reached each stage (its timeline and the funnel), refusals
-- by app, day and reason, and indexes for searching by msisdn and listing failed callbacks.

ALTER TABLE sessions ADD COLUMN sent_at INTEGER;
ALTER TABLE sessions ADD COLUMN delivered_at INTEGER;
ALTER TABLE sessions ADD COLUMN read_at INTEGER;
ALTER TABLE sessions ADD COLUMN failed_at INTEGER;     -- a delivery failure (6–10)
ALTER TABLE sessions ADD COLUMN closed_at INTEGER;     -- 4 Verified or 5 Unverified
CREATE INDEX sessions_by_msisdn ON sessions (msisdn, id);

CREATE INDEX callbacks_failed ON callbacks (id) WHERE state = 2;

CREATE TABLE refusals (
    app_id  BLOB NOT NULL,
    day     INTEGER NOT NULL,   -- days since 1970-01-01, UTC
    reason  TEXT NOT NULL,      -- the refusal's code, e.g. rate_limited_msisdn
    count   INTEGER NOT NULL,
    PRIMARY KEY (app_id, day, reason)
) WITHOUT ROWID;
