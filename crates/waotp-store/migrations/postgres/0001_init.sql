-- waotp schema for PostgreSQL, version 1: the same tables as SQLite's migrations 0001-0003,
-- plus what several nodes on one database need (`nodes`, delivery owners, callback lease
-- owners). Never edit a migration that has shipped: add a new file.
-- Times are unix milliseconds (bigint), as in the SQLite schema.

-- The database's own clock in unix ms: node liveness is judged by one clock, not each node's.
CREATE FUNCTION waotp_now_ms() RETURNS bigint LANGUAGE sql VOLATILE
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE TABLE apps (
    app_id               uuid PRIMARY KEY,
    name                 text NOT NULL,
    api_key_hash         bytea NOT NULL,            -- SHA-256 of the API key
    code_length          bigint NOT NULL,
    time_limit           bigint NOT NULL,           -- seconds
    template_name        text NOT NULL,
    lang_code            text NOT NULL,
    return_code          boolean NOT NULL,
    callback_secret      text NOT NULL,             -- whsec_…: signs status callbacks
    callback_mode        text NOT NULL,             -- 'get' (Verihubs) or 'post'
    callback_signing     boolean NOT NULL,
    quota                bigint,                    -- NULL: unlimited
    rps_limit            bigint,
    msisdn_send_limit    bigint NOT NULL,
    msisdn_send_window   bigint NOT NULL,
    msisdn_verify_limit  bigint NOT NULL,
    msisdn_verify_window bigint NOT NULL,
    ip_send_limit        bigint,
    allowed_countries    text NOT NULL,             -- comma-separated calling codes; '': all
    sequential_mode      text NOT NULL,
    conversion_mode      text NOT NULL,
    wa_phone_number_id   text,
    wa_access_token      text,
    created_at           bigint NOT NULL
);

CREATE TABLE templates (
    app_id            uuid NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    name              text NOT NULL,
    language          text NOT NULL,
    category          text NOT NULL,
    body              text NOT NULL,
    code_placeholder  bigint NOT NULL,
    copy_code_button  boolean NOT NULL,
    PRIMARY KEY (app_id, name, language)
);

CREATE TABLE sessions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
    session_id       uuid NOT NULL UNIQUE,
    app_id           uuid NOT NULL,
    msisdn           text NOT NULL,
    challenge        text NOT NULL,
    sandbox          boolean NOT NULL,
    code_hash        bytea NOT NULL,            -- HMAC-SHA256 under the server secret
    sealed_code      bytea,                     -- set until a channel has taken the message
    delivery_owner   uuid,                      -- the node delivering it (see `nodes`)
    state            bigint NOT NULL,           -- 0 pending, 1 verified, 2 superseded, 3 locked
    status           bigint NOT NULL,           -- lifecycle status 0..10
    wrong_attempts   bigint NOT NULL DEFAULT 0,
    try_count        bigint NOT NULL,
    template_name    text NOT NULL,
    lang_code        text NOT NULL,
    content          text,                      -- JSON array of strings, or NULL
    callback_url     text,
    provider_id      text,
    error_code       bigint,
    error_text       text,
    not_requested_at bigint,
    created_at       bigint NOT NULL,
    expires_at       bigint NOT NULL,
    updated_at       bigint NOT NULL
);
CREATE INDEX sessions_by_key ON sessions (app_id, sandbox, msisdn, challenge, id);
CREATE INDEX sessions_undelivered ON sessions (id) WHERE sealed_code IS NOT NULL;
CREATE INDEX sessions_unfinished ON sessions (expires_at) WHERE status NOT IN (4, 5);
CREATE INDEX sessions_by_provider ON sessions (provider_id) WHERE provider_id IS NOT NULL;

CREATE TABLE inbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id      uuid NOT NULL,
    session_id  uuid NOT NULL,
    msisdn      text NOT NULL,
    text        text NOT NULL,
    created_at  bigint NOT NULL
);
CREATE INDEX inbox_by_msisdn ON inbox (app_id, msisdn, id);

CREATE TABLE callbacks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_row      bigint NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    status           bigint NOT NULL,
    url              text NOT NULL,
    webhook_id       text NOT NULL UNIQUE,
    state            bigint NOT NULL,           -- 0 pending, 1 delivered, 2 failed
    attempts         bigint NOT NULL DEFAULT 0,
    next_attempt_at  bigint NOT NULL,
    lease_until      bigint,                    -- a node is delivering it until then…
    lease_owner      uuid,                      -- …this one (a dead node's lease is void)
    created_at       bigint NOT NULL,
    updated_at       bigint NOT NULL,
    UNIQUE (session_row, status)
);
CREATE INDEX callbacks_pending ON callbacks (next_attempt_at) WHERE state = 0;
CREATE INDEX callbacks_by_session ON callbacks (session_row, id) WHERE state = 0;

CREATE TABLE callback_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    callback_id  bigint NOT NULL REFERENCES callbacks (id) ON DELETE CASCADE,
    attempted_at bigint NOT NULL,
    http_status  bigint,
    error        text,
    latency_ms   bigint NOT NULL
);
CREATE INDEX callback_attempts_by_callback ON callback_attempts (callback_id, id);

-- Blocked numbers and prefixes; scope is an app id, or the nil UUID for every app.
CREATE TABLE blocklist (
    scope       uuid NOT NULL,
    entry       text NOT NULL,
    is_prefix   boolean NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (entry, is_prefix, scope)
);

CREATE TABLE counters (
    key           text NOT NULL,
    window_start  bigint NOT NULL,
    count         bigint NOT NULL,
    expires_at    bigint NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX counters_expiry ON counters (expires_at);

CREATE TABLE idempotency (
    app_id      uuid NOT NULL,
    key         text NOT NULL,
    body_hash   bytea NOT NULL,
    session_id  uuid NOT NULL,
    msisdn      text NOT NULL,
    try_count   bigint NOT NULL,
    sealed_code bytea NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (app_id, key)
);
CREATE INDEX idempotency_by_age ON idempotency (created_at);

-- The nodes sharing this database: each beats every couple of seconds. Deliveries and
-- callback leases of a node whose heartbeat is older than the liveness limit are taken over.
CREATE TABLE nodes (
    node_id       uuid PRIMARY KEY,
    started_at    bigint NOT NULL,
    heartbeat_at  bigint NOT NULL
);
