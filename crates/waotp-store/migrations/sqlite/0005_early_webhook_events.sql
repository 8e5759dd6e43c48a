-- A provider's status event (or "I didn't request this code") for a message id no session has
-- recorded yet: Meta's webhooks can beat the send's own answer to waotp. Kept for a while and
-- applied, in arrival order (`id`), when the send records that id; bounded in count (the
-- oldest go first) and in age (see waotp_store::EARLY_EVENT_TTL_MS).
CREATE TABLE early_webhook_events (
    id            INTEGER PRIMARY KEY,
    provider_id   TEXT NOT NULL,       -- e.g. WhatsApp's wamid
    received_at   INTEGER NOT NULL,
    steps         TEXT NOT NULL,       -- the statuses to step through, e.g. '1,2,3' ('' for none)
    error_code    INTEGER,
    error_text    TEXT,
    not_requested INTEGER NOT NULL     -- 1: the user said they did not request the code
);
CREATE INDEX early_webhook_events_by_provider ON early_webhook_events (provider_id, id);
CREATE INDEX early_webhook_events_by_age ON early_webhook_events (received_at);
