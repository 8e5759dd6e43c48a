-- Issue 31: what each verification costs. Self-contained: it touches no table another
-- migration of the same release changes but by adding its own columns.
--
-- Each message's pricing as Meta reported it on a delivered (or read) status, once per message
-- (its provider id), with its session, app and the recipient's country (ISO 3166-1 alpha-2 of
-- the session's number; NULL when the number has none). Pruned with the sessions (retention).
CREATE TABLE message_costs (
    id            INTEGER PRIMARY KEY,
    provider_id   TEXT NOT NULL UNIQUE,    -- e.g. WhatsApp's wamid
    app_id        BLOB NOT NULL,
    session_id    BLOB NOT NULL,
    country       TEXT,
    billable      INTEGER NOT NULL,        -- 1: Meta charges for it
    category      TEXT NOT NULL,           -- authentication, marketing, utility, … as given
    pricing_model TEXT NOT NULL,           -- PMP, CBP, … ('' when absent)
    pricing_type  TEXT,                    -- regular, free_customer_service, … (NULL when absent)
    created_at    INTEGER NOT NULL         -- when it was recorded (unix ms)
);
CREATE INDEX message_costs_by_time ON message_costs (created_at);

-- Billable messages recorded per app and UTC calendar month (months since 1970-01): what a
-- monthly ceiling is checked against, one row read per send.
CREATE TABLE billable_months (
    app_id   BLOB NOT NULL,
    month    INTEGER NOT NULL,
    billable INTEGER NOT NULL,
    PRIMARY KEY (app_id, month)
) WITHOUT ROWID;

-- A pricing kept for a message id no session has recorded yet (as its status is): NULL
-- category for the other kept events.
ALTER TABLE early_webhook_events ADD COLUMN pricing_billable INTEGER;
ALTER TABLE early_webhook_events ADD COLUMN pricing_category TEXT;
ALTER TABLE early_webhook_events ADD COLUMN pricing_model TEXT;
ALTER TABLE early_webhook_events ADD COLUMN pricing_type TEXT;

-- An app's ceiling of billable messages per calendar month (UTC); NULL: none.
ALTER TABLE apps ADD COLUMN billable_ceiling INTEGER;
