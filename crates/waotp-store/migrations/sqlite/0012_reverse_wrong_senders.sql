-- Reverse verification, hardened (issue 38): a message from another number than the session's
-- no longer counts as the owner's wrong try (five strangers could lock the owner out); it is
-- counted here instead, apart, up to waotp_core::reverse::MAX_WRONG_SENDERS. And a session is
-- now found by the keyed hash of its whole prefilled text (CodeKey::reverse_lookup), not of
-- its code alone: reverse_key keeps its column, with the new meaning. The app's own text in force
-- when the session started is kept with it (NULL: waotp's default for its language), so that
-- its link and QR code show the text its key was made from.
ALTER TABLE reverse_sessions ADD COLUMN wrong_senders INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reverse_sessions ADD COLUMN custom_text TEXT;
