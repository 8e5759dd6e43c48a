-- A provider's status event (or "I didn't request this code") for a message id no session has
-- recorded yet (as SQLite's migration 0005): Meta's webhooks can beat the send's own answer,
-- and may land on another node than the one that sent. Kept for a while and applied, in
-- arrival order (`id`), when the send records that id; bounded in count (the oldest go
-- first) and in age (see waotp_store::EARLY_EVENT_TTL_MS).
CREATE TABLE early_webhook_events (
    id            bigserial PRIMARY KEY,
    provider_id   text NOT NULL,        -- e.g. WhatsApp's wamid
    received_at   bigint NOT NULL,
    steps         bigint[] NOT NULL,    -- the statuses to step through, in order
    error_code    bigint,
    error_text    text,
    not_requested boolean NOT NULL      -- the user said they did not request the code
);
CREATE INDEX early_webhook_events_by_provider ON early_webhook_events (provider_id, id);
CREATE INDEX early_webhook_events_by_age ON early_webhook_events (received_at);
