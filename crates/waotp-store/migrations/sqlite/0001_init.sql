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
CREATE INDEX sessions_by_key ON sessions (app_id, msisdn, challenge, id);
CREATE INDEX sessions_undelivered ON sessions (id) WHERE sealed_code IS NOT NULL;

CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    app_id      BLOB NOT NULL,
    session_id  BLOB NOT NULL,
    msisdn      TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX inbox_by_msisdn ON inbox (app_id, msisdn, id);
