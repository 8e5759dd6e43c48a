-- Reverse verification, hardened (issue 38): a message from another number than the session's
-- no longer counts as the owner's wrong try (five strangers could lock the owner out); it is
-- counted here instead, apart, up to waotp_core::reverse::MAX_WRONG_SENDERS (the cap is Rust's:
-- the store writes the count it is given). And a session is now found by the keyed hash of
-- its whole prefilled text (CodeKey::reverse_lookup), not of its code alone: reverse_key keeps
-- its column, with the new meaning. The app's own text in force when the session started is kept
-- with it (NULL: waotp's default for its language), so that its link and QR code show the text
-- its key was made from. A constant default: no table rewrite.
ALTER TABLE reverse_sessions ADD COLUMN wrong_senders integer NOT NULL DEFAULT 0;
ALTER TABLE reverse_sessions ADD COLUMN custom_text text;
