-- WhatsApp: find sessions by Meta's message id (status webhooks), the "I didn't request a code"
-- fraud signal, and a per-app sender (its own phone number id and token).

CREATE INDEX sessions_by_provider ON sessions (provider_id) WHERE provider_id IS NOT NULL;
ALTER TABLE sessions ADD COLUMN not_requested_at INTEGER;
ALTER TABLE apps ADD COLUMN wa_phone_number_id TEXT;
ALTER TABLE apps ADD COLUMN wa_access_token TEXT;
