-- A verify in two statements instead of a six-round-trip transaction. The first (Rust's
-- sessions::verify) counts the verify under its rate limit and loads the newest session of the
-- key; Rust decides (waotp_core::VerifyDecision::decide); this function stores the decision.
-- It decides nothing: under the key's advisory lock (a send of the key takes turns with it, as
-- in waotp_store_session), if the row is still the key's newest session, with the state, status
-- and wrong tries the decision was made on, it writes the new state and wrong tries and moves
-- the status through `p_report` (waotp_advance, with the caller's ranks and slots). Returns
-- false, writing nothing, when the session changed meanwhile: the caller loads and decides again.
CREATE FUNCTION waotp_verify_write(
    p_lock bigint, p_row bigint, p_app_id uuid, p_sandbox boolean, p_msisdn text, p_challenge text,
    p_state bigint, p_status bigint, p_wrong bigint, p_new_state bigint, p_new_wrong bigint, p_report bigint[],
    p_now bigint, p_ranks int[], p_slots int[])
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    UPDATE sessions SET state = p_new_state, wrong_attempts = coalesce(p_new_wrong, wrong_attempts),
                        updated_at = p_now
    WHERE id = p_row AND state = p_state AND status = p_status AND wrong_attempts = p_wrong
      AND NOT EXISTS (SELECT 1 FROM sessions n WHERE n.app_id = p_app_id AND n.sandbox = p_sandbox
                      AND n.msisdn = p_msisdn AND n.challenge = p_challenge AND n.id > p_row);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF cardinality(p_report) > 0 THEN
        PERFORM waotp_advance(p_row, p_report, p_now, p_ranks, p_slots);
    END IF;
    RETURN true;
END $$;
