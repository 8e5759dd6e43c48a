-- Business-scoped user ids (issue 31): since April 2026 Meta names a WhatsApp user by a BSUID
-- too, and leaves the number out of the messages of a user who adopted a username. What a BSUID
-- stands for is learned from the webhooks that name both (the statuses of messages sent to a
-- number, messages whose sender's number is shared), per business: the WhatsApp Business
-- Account the webhook came for, or 'parent' for parent BSUIDs (shared across the portfolios of
-- one enterprise). A number has one BSUID per business at a time. seen_at is refreshed at most
-- daily while Meta keeps naming the pair; a pair not seen for the retention period goes with
-- the sessions of that age. The rules are Rust's (waotp_store::UserIdFact): the store writes.
CREATE TABLE whatsapp_user_ids (
    business  text NOT NULL,
    user_id   text NOT NULL,
    wa_id     text NOT NULL,
    seen_at   bigint NOT NULL,
    PRIMARY KEY (business, user_id)
);
CREATE INDEX whatsapp_user_ids_by_number ON whatsapp_user_ids (business, wa_id);
CREATE INDEX whatsapp_user_ids_by_age ON whatsapp_user_ids (seen_at);

-- Messages with a reverse session's text from a user Meta names only by a BSUID waotp has not
-- learned: nothing verified, nothing counted against the session, counted here (at most
-- waotp_core::reverse::MAX_WRONG_SENDERS) so the session view can say why. A constant default:
-- no table rewrite.
ALTER TABLE reverse_sessions ADD COLUMN number_not_shared integer NOT NULL DEFAULT 0;
