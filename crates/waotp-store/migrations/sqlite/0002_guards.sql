-- Guards: quotas, per-app limits and rule modes, blocklists, counters, idempotency keys.

ALTER TABLE apps ADD COLUMN quota INTEGER;                              -- NULL: unlimited
ALTER TABLE apps ADD COLUMN rps_limit INTEGER;                          -- sends per second; NULL: none
ALTER TABLE apps ADD COLUMN msisdn_send_limit INTEGER NOT NULL DEFAULT 5;
ALTER TABLE apps ADD COLUMN msisdn_send_window INTEGER NOT NULL DEFAULT 600;   -- seconds
ALTER TABLE apps ADD COLUMN msisdn_verify_limit INTEGER NOT NULL DEFAULT 10;
ALTER TABLE apps ADD COLUMN msisdn_verify_window INTEGER NOT NULL DEFAULT 600; -- seconds
ALTER TABLE apps ADD COLUMN ip_send_limit INTEGER;                      -- sends per minute per client IP; NULL: none
ALTER TABLE apps ADD COLUMN allowed_countries TEXT NOT NULL DEFAULT ''; -- comma-separated calling codes; '': all
ALTER TABLE apps ADD COLUMN sequential_mode TEXT NOT NULL DEFAULT 'monitor';
ALTER TABLE apps ADD COLUMN conversion_mode TEXT NOT NULL DEFAULT 'monitor';

-- Blocked numbers and prefixes; scope is an app id, or the empty blob for every app.
CREATE TABLE blocklist (
    scope       BLOB NOT NULL,
    entry       TEXT NOT NULL,      -- digits
    is_prefix   INTEGER NOT NULL,   -- 1: every number starting with entry
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (entry, is_prefix, scope)
) WITHOUT ROWID;

-- Fixed-window event counters behind the sliding-window rate limits and pumping signals.
CREATE TABLE counters (
    key           TEXT NOT NULL,
    window_start  INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
) WITHOUT ROWID;
CREATE INDEX counters_expiry ON counters (expires_at);

-- Idempotency-Key: the answer of the first send with a key, for 24 hours.
CREATE TABLE idempotency (
    app_id      BLOB NOT NULL,
    key         TEXT NOT NULL,
    body_hash   BLOB NOT NULL,
    session_id  BLOB NOT NULL,
    msisdn      TEXT NOT NULL,
    try_count   INTEGER NOT NULL,
    sealed_code BLOB NOT NULL,      -- the code sealed under the server secret, for the replayed answer
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_by_age ON idempotency (created_at);
