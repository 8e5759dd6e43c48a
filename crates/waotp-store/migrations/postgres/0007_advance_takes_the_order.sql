-- waotp_advance (migrations 0002, 0003) without its own copy of the lifecycle: the caller
-- passes each status's rank (waotp_core::Status::ranks) and timeline slot
-- (waotp_store::Timeline::slots), both indexed by status code + 1, so the order of statuses
-- lives in Rust once and this statement only applies it, under the session's row lock. Slots:
-- 0 sent_at, 1 delivered_at, 2 read_at, 3 failed_at, 4 closed_at, -1 none. Otherwise as in
-- 0003: each step taken sets its column, each column keeps its first time, delivery progress
-- (slots 0–2) is stamped even when the status has moved past it (no status change, no
-- callback), and a step taken queues its callback, held behind the session's pending ones.
DROP FUNCTION waotp_advance(bigint, bigint[], bigint, boolean);
DROP FUNCTION waotp_rank(bigint);

CREATE FUNCTION waotp_advance(p_row bigint, p_steps bigint[], p_now bigint, p_ranks int[], p_slots int[],
                              p_forget_code boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
    url text;
    moved boolean := false;
    step bigint;
    slot int;
    has_sent boolean;
    has_delivered boolean;
    has_read boolean;
    stamp_sent boolean := false;
    stamp_delivered boolean := false;
    stamp_read boolean := false;
    stamp_failed boolean := false;
    stamp_closed boolean := false;
BEGIN
    SELECT status, callback_url, sent_at IS NOT NULL, delivered_at IS NOT NULL, read_at IS NOT NULL
    INTO current, url, has_sent, has_delivered, has_read
    FROM sessions WHERE id = p_row FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    FOREACH step IN ARRAY p_steps LOOP
        slot := p_slots[step + 1];
        CASE slot
            WHEN 0 THEN stamp_sent := stamp_sent OR NOT has_sent;
            WHEN 1 THEN stamp_delivered := stamp_delivered OR NOT has_delivered;
            WHEN 2 THEN stamp_read := stamp_read OR NOT has_read;
            ELSE NULL;
        END CASE;
        IF p_ranks[step + 1] > p_ranks[current + 1] THEN
            current := step;
            moved := true;
            IF slot = 3 THEN
                stamp_failed := true;
            ELSIF slot = 4 THEN
                stamp_closed := true;
            END IF;
            IF url IS NOT NULL THEN
                INSERT INTO callbacks (session_row, status, url, webhook_id, state, next_attempt_at, created_at,
                                       updated_at)
                VALUES (p_row, step, url, 'msg_' || replace(gen_random_uuid()::text, '-', ''), 0,
                        CASE WHEN EXISTS (SELECT 1 FROM callbacks WHERE session_row = p_row AND state = 0)
                             THEN waotp_held() ELSE p_now END,
                        p_now, p_now)
                ON CONFLICT DO NOTHING;
            END IF;
        END IF;
    END LOOP;
    IF NOT moved THEN
        IF stamp_sent OR stamp_delivered OR stamp_read THEN
            UPDATE sessions
            SET sealed_code = CASE WHEN p_forget_code THEN NULL ELSE sealed_code END,
                sent_at = CASE WHEN stamp_sent THEN coalesce(sent_at, p_now) ELSE sent_at END,
                delivered_at = CASE WHEN stamp_delivered THEN coalesce(delivered_at, p_now) ELSE delivered_at END,
                read_at = CASE WHEN stamp_read THEN coalesce(read_at, p_now) ELSE read_at END
            WHERE id = p_row;
        ELSIF p_forget_code THEN
            UPDATE sessions SET sealed_code = NULL WHERE id = p_row;
        END IF;
        RETURN NULL;
    END IF;
    UPDATE sessions
    SET status = current, updated_at = p_now, sealed_code = CASE WHEN p_forget_code THEN NULL ELSE sealed_code END,
        sent_at = CASE WHEN stamp_sent THEN coalesce(sent_at, p_now) ELSE sent_at END,
        delivered_at = CASE WHEN stamp_delivered THEN coalesce(delivered_at, p_now) ELSE delivered_at END,
        read_at = CASE WHEN stamp_read THEN coalesce(read_at, p_now) ELSE read_at END,
        failed_at = CASE WHEN stamp_failed THEN coalesce(failed_at, p_now) ELSE failed_at END,
        closed_at = CASE WHEN stamp_closed THEN coalesce(closed_at, p_now) ELSE closed_at END
    WHERE id = p_row;
    RETURN current;
END $$;
