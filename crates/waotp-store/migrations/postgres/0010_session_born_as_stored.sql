-- waotp_store_session (migration 0002) writes the session once, as it stands after its birth's
-- steps, which the caller walks in Rust (waotp_store::NewSession::birth): a sandbox scenario's
-- statuses, or, when its message goes to the local inbox with it, sent and delivered. The caller
-- passes the status it ends at, which timeline columns to stamp (sent, delivered, read, failed,
-- closed: the order of waotp_store::Timeline::slot), the callbacks to queue in order (the first
-- due now, the rest held behind it, as waotp_advance queues them) and the inbox message's text.
-- One row version and one statement per send: before, the inbox delivery wrote the session
-- again in a second transaction (a new row version in every index, and a second commit).

-- A callback queued for a session's status: due now, or held behind the session's pending ones
-- (released in order as each is settled), as waotp_advance (0007) and SQLite's
-- callbacks::enqueue queue them. This function and waotp_verify_write (0012) queue through it.
CREATE FUNCTION waotp_enqueue_callback(p_row bigint, p_status bigint, p_url text, p_now bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO callbacks (session_row, status, url, webhook_id, state, next_attempt_at, created_at, updated_at)
    VALUES (p_row, p_status, p_url, 'msg_' || replace(gen_random_uuid()::text, '-', ''), 0,
            CASE WHEN EXISTS (SELECT 1 FROM callbacks WHERE session_row = p_row AND state = 0)
                 THEN waotp_held() ELSE p_now END,
            p_now, p_now)
    ON CONFLICT DO NOTHING;
$$;

DROP FUNCTION waotp_store_session(bigint, boolean, uuid, uuid, text, text, boolean, bytea, bytea, uuid, text, text,
                                  text, text, bigint, bigint);

CREATE FUNCTION waotp_store_session(
    p_lock bigint, p_use_quota boolean, p_session_id uuid, p_app_id uuid, p_msisdn text, p_challenge text,
    p_sandbox boolean, p_code_hash bytea, p_sealed bytea, p_owner uuid, p_template text, p_lang text,
    p_content text, p_callback_url text, p_now bigint, p_expires bigint,
    p_status bigint, p_stamps boolean[], p_callbacks bigint[], p_inbox_text text)
RETURNS TABLE (out_tries bigint)
LANGUAGE plpgsql AS $$
DECLARE
    left_ bigint;
    prev record;
    tries bigint := 1;
    new_row bigint;
    step bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    IF p_use_quota THEN
        SELECT quota INTO left_ FROM apps WHERE app_id = p_app_id;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF left_ IS NOT NULL THEN
            UPDATE apps SET quota = quota - 1 WHERE app_id = p_app_id AND quota > 0;
            IF NOT FOUND THEN
                RETURN;
            END IF;
        END IF;
    END IF;
    SELECT s.id, s.state, s.expires_at, s.try_count INTO prev FROM sessions s
    WHERE s.app_id = p_app_id AND s.sandbox = p_sandbox AND s.msisdn = p_msisdn AND s.challenge = p_challenge
    ORDER BY s.id DESC LIMIT 1;
    IF FOUND AND prev.state = 0 AND prev.expires_at > p_now THEN
        UPDATE sessions SET state = 2, updated_at = p_now WHERE id = prev.id;
        tries := prev.try_count + 1;
    END IF;
    INSERT INTO sessions (session_id, app_id, msisdn, challenge, code_hash, sealed_code, delivery_owner, state,
                          status, try_count, template_name, lang_code, content, callback_url, created_at,
                          expires_at, updated_at, sandbox, sent_at, delivered_at, read_at, failed_at, closed_at)
    VALUES (p_session_id, p_app_id, p_msisdn, p_challenge, p_code_hash, p_sealed,
            CASE WHEN p_sealed IS NULL THEN NULL ELSE p_owner END, 0, p_status, tries, p_template, p_lang, p_content,
            p_callback_url, p_now, p_expires, p_now, p_sandbox,
            CASE WHEN p_stamps[1] THEN p_now END, CASE WHEN p_stamps[2] THEN p_now END,
            CASE WHEN p_stamps[3] THEN p_now END, CASE WHEN p_stamps[4] THEN p_now END,
            CASE WHEN p_stamps[5] THEN p_now END)
    RETURNING id INTO new_row;
    -- One at a time, in order: their ids are the order they are delivered in.
    IF p_callback_url IS NOT NULL THEN
        FOREACH step IN ARRAY p_callbacks LOOP
            PERFORM waotp_enqueue_callback(new_row, step, p_callback_url, p_now);
        END LOOP;
    END IF;
    IF p_inbox_text IS NOT NULL THEN
        INSERT INTO inbox (app_id, session_id, msisdn, text, created_at)
        VALUES (p_app_id, p_session_id, p_msisdn, p_inbox_text, p_now);
    END IF;
    out_tries := tries;
    RETURN NEXT;
END $$;
