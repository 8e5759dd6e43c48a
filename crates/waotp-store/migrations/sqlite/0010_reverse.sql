-- Reverse verification (issue 20): the user sends the code to the business over WhatsApp.
-- A session found here is a reverse one: its code is never entered on the verify route, and
-- an inbound message finds it by the keyed hash of its code (CodeKey::reverse_lookup), one
-- primary-key read, whatever app it belongs to.
CREATE TABLE reverse_sessions (
    reverse_key  BLOB PRIMARY KEY,            -- HMAC-SHA256 of the code, bound to no session
    session_id   BLOB NOT NULL UNIQUE REFERENCES sessions (session_id) ON DELETE CASCADE,
    sealed_code  BLOB NOT NULL                -- the code sealed for its link and QR code (never delivered)
) WITHOUT ROWID;

-- Inbound messages that changed a reverse session (verified it, or counted a wrong try): a
-- replayed webhook with the same message id changes nothing. Only messages that found a
-- session are written, at most a few per session, and they go with their session.
CREATE TABLE reverse_messages (
    message_id   TEXT PRIMARY KEY,
    session_id   BLOB NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX reverse_messages_by_session ON reverse_messages (session_id);
