-- waotp_verify_write (migration 0009) writes the session once: the caller, which decided on the
-- session's status (the write only applies if it is unchanged), also walks the decision's
-- report from it in Rust (waotp_store::Timeline::walk) and passes the status it ends at, the
-- timeline columns to stamp (sent, delivered, read, failed, closed; each keeps its first time)
-- and the callbacks to queue in order (the first held behind the session's pending ones, the
-- rest behind it, as waotp_advance queues them). Before, the state and the status were two
-- updates of the row (waotp_advance locked and rewrote it again): two row versions per verify.
DROP FUNCTION waotp_verify_write(bigint, bigint, uuid, boolean, text, text, bigint, bigint, bigint, bigint, bigint,
                                 bigint[], bigint, int[], int[]);

CREATE FUNCTION waotp_verify_write(
    p_lock bigint, p_row bigint, p_app_id uuid, p_sandbox boolean, p_msisdn text, p_challenge text,
    p_state bigint, p_status bigint, p_wrong bigint, p_new_state bigint, p_new_wrong bigint,
    p_new_status bigint, p_stamps boolean[], p_callbacks bigint[], p_now bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    url text;
    step bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    UPDATE sessions
    SET state = p_new_state, wrong_attempts = coalesce(p_new_wrong, wrong_attempts), status = p_new_status,
        updated_at = p_now,
        sent_at = CASE WHEN p_stamps[1] THEN coalesce(sent_at, p_now) ELSE sent_at END,
        delivered_at = CASE WHEN p_stamps[2] THEN coalesce(delivered_at, p_now) ELSE delivered_at END,
        read_at = CASE WHEN p_stamps[3] THEN coalesce(read_at, p_now) ELSE read_at END,
        failed_at = CASE WHEN p_stamps[4] THEN coalesce(failed_at, p_now) ELSE failed_at END,
        closed_at = CASE WHEN p_stamps[5] THEN coalesce(closed_at, p_now) ELSE closed_at END
    WHERE id = p_row AND state = p_state AND status = p_status AND wrong_attempts = p_wrong
      AND NOT EXISTS (SELECT 1 FROM sessions n WHERE n.app_id = p_app_id AND n.sandbox = p_sandbox
                      AND n.msisdn = p_msisdn AND n.challenge = p_challenge AND n.id > p_row)
    RETURNING callback_url INTO url;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- One at a time, in order (their ids are the order they are delivered in).
    IF url IS NOT NULL THEN
        FOREACH step IN ARRAY p_callbacks LOOP
            PERFORM waotp_enqueue_callback(p_row, step, url, p_now);
        END LOOP;
    END IF;
    RETURN true;
END $$;
