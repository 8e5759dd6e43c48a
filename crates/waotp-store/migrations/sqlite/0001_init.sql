-- waotp schema, version 1. Never edit a migration that has shipped: add a new file.

CREATE TABLE apps (
    app_id          BLOB PRIMARY KEY,          -- UUID, 16 bytes
    name            TEXT NOT NULL,
    api_key_hash    BLOB NOT NULL,             -- SHA-256 of the API key
    code_length     INTEGER NOT NULL,
    time_limit      INTEGER NOT NULL,          -- seconds
    template_name   TEXT NOT NULL,
    lang_code       TEXT NOT NULL,
    return_code     INTEGER NOT NULL,          -- 1: the send response carries the code
    callback_secret TEXT NOT NULL,             -- whsec_…: signs status callbacks
    callback_mode   TEXT NOT NULL,             -- 'get' (Verihubs) or 'post' (JSON body)
    callback_signing INTEGER NOT NULL,         -- 1: Standard Webhooks signature headers
    created_at      INTEGER NOT NULL           -- unix ms
) WITHOUT ROWID;

CREATE TABLE templates (
    app_id            BLOB NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    language          TEXT NOT NULL,
    category          TEXT NOT NULL,
    body              TEXT NOT NULL,
    code_placeholder  INTEGER NOT NULL,
    copy_code_button  INTEGER NOT NULL,
    PRIMARY KEY (app_id, name, language)
) WITHOUT ROWID;

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,       -- insertion order: the newest row of a key wins
    session_id      BLOB NOT NULL UNIQUE,      -- UUID, 16 bytes, as on the wire
    app_id          BLOB NOT NULL,
    msisdn          TEXT NOT NULL,
    challenge       TEXT NOT NULL,
    sandbox         INTEGER NOT NULL,          -- 1: a sandbox session (never delivered, never counted)
    code_hash       BLOB NOT NULL,             -- HMAC-SHA256 under the server secret
    sealed_code     BLOB,                      -- set until the channel has taken the message
    state           INTEGER NOT NULL,          -- 0 pending, 1 verified, 2 superseded, 3 locked
    status          INTEGER NOT NULL,          -- lifecycle status 0..10 (contract section 7)
    wrong_attempts  INTEGER NOT NULL DEFAULT 0,
    try_count       INTEGER NOT NULL,
    template_name   TEXT NOT NULL,
    lang_code       TEXT NOT NULL,
    content         TEXT,                      -- JSON array of strings, or NULL
    callback_url    TEXT,
    provider_id     TEXT,                      -- e.g. WhatsApp's wamid
    error_code      INTEGER,
    error_text      TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX sessions_by_key ON sessions (app_id, sandbox, msisdn, challenge, id);

CREATE INDEX sessions_undelivered ON sessions (id) WHERE sealed_code IS NOT NULL;
-- Sessions still waiting for their final status (4 Verified or 5 Unverified), by expiry.
CREATE INDEX sessions_unfinished ON sessions (expires_at) WHERE status NOT IN (4, 5);

CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    app_id      BLOB NOT NULL,
    session_id  BLOB NOT NULL,
    msisdn      TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX inbox_by_msisdn ON inbox (app_id, msisdn, id);

-- The callback outbox: one row per (session, status), written in the same transaction as the
-- status change. Delivered in order per session by the callback worker.
CREATE TABLE callbacks (
    id               INTEGER PRIMARY KEY,
    session_row      INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    status           INTEGER NOT NULL,
    url              TEXT NOT NULL,
    webhook_id       TEXT NOT NULL UNIQUE,      -- Standard Webhooks id: the same on every retry
    state            INTEGER NOT NULL,          -- 0 pending, 1 delivered, 2 failed (gave up)
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,                   -- a worker is delivering it until then
    created_at       INTEGER NOT NULL,          -- when the status happened
    updated_at       INTEGER NOT NULL,
    UNIQUE (session_row, status)
);
CREATE INDEX callbacks_pending ON callbacks (next_attempt_at) WHERE state = 0;
CREATE INDEX callbacks_by_session ON callbacks (session_row, id) WHERE state = 0;

CREATE TABLE callback_attempts (
    id           INTEGER PRIMARY KEY,
    callback_id  INTEGER NOT NULL REFERENCES callbacks(id) ON DELETE CASCADE,
    attempted_at INTEGER NOT NULL,
    http_status  INTEGER,
    error        TEXT,
    latency_ms   INTEGER NOT NULL
);
CREATE INDEX callback_attempts_by_callback ON callback_attempts (callback_id, id);
