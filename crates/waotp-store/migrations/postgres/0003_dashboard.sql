-- The dashboard (as SQLite's migration 0004): when each session reached each stage (its
-- timeline and the funnel), refusals by app, day and reason, and indexes for searching by
-- msisdn and listing failed callbacks.

ALTER TABLE sessions
    ADD COLUMN sent_at      bigint,
    ADD COLUMN delivered_at bigint,
    ADD COLUMN read_at      bigint,
    ADD COLUMN failed_at    bigint,     -- a delivery failure (6–10)
    ADD COLUMN closed_at    bigint;     -- 4 Verified or 5 Unverified
CREATE INDEX sessions_by_msisdn ON sessions (msisdn, id);

CREATE INDEX callbacks_failed ON callbacks (id) WHERE state = 2;

CREATE TABLE refusals (
    app_id  uuid NOT NULL,
    day     bigint NOT NULL,    -- days since 1970-01-01, UTC
    reason  text NOT NULL,      -- the refusal's code, e.g. rate_limited_msisdn
    count   bigint NOT NULL,
    PRIMARY KEY (app_id, day, reason)
);

-- waotp_advance (migration 0002), now also stamping the timeline: each step taken sets its
-- column (Timeline::slot: 1 sent_at, 2 delivered_at, 3 read_at, 6–10 failed_at, 4/5
-- closed_at; Requested has none) in the same row update, and each column keeps its first
-- time. Delivery progress (1, 2, 3) is a fact about the message even when the status has
-- moved past it (a read receipt after the code was verified): its time is kept then too,
-- with no status change and no callback. Every status change goes through this function.
CREATE OR REPLACE FUNCTION waotp_advance(p_row bigint, p_steps bigint[], p_now bigint,
                                         p_forget_code boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
    url text;
    moved boolean := false;
    step bigint;
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
        CASE step
            WHEN 1 THEN stamp_sent := stamp_sent OR NOT has_sent;
            WHEN 2 THEN stamp_delivered := stamp_delivered OR NOT has_delivered;
            WHEN 3 THEN stamp_read := stamp_read OR NOT has_read;
            ELSE NULL;
        END CASE;
        IF waotp_rank(step) > waotp_rank(current) THEN
            current := step;
            moved := true;
            IF step IN (4, 5) THEN
                stamp_closed := true;
            ELSIF step >= 6 THEN
                stamp_failed := true;
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
