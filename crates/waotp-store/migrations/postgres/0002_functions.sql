-- The hot path's writes as functions: a send's durable part, a status change, the local
-- inbox's delivery — each one round trip, and (outside an explicit transaction) one commit.
-- The Rust backend calls these for every such change, so each rule lives here once.

-- A status's position in the lifecycle (waotp_core::Status::rank): a session only ever moves
-- to a higher rank. Delivery progress 0–3, a delivery failure 6–10, then the outcome 4, 5.
CREATE FUNCTION waotp_rank(status bigint) RETURNS int LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN status <= 3 THEN status::int WHEN status IN (4, 5) THEN 5 ELSE 4 END $$;

-- `next_attempt_at` of a callback held behind an earlier pending one of its session.
CREATE FUNCTION waotp_held() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT 2305843009213693951::bigint $$;

-- Moves a session through `steps` in order (skipping any that would not move it forward),
-- with one row update and a callback for each step taken; the callback is due now if it is
-- the session's only pending one, held behind the earlier ones otherwise. Locks the
-- session's row first: every status change and callback settlement of a session take turns.
-- With `p_forget_code`, the sealed code is erased in the same row update (one new row
-- version instead of two: the columns are indexed, so every version costs index entries).
-- Returns the new status, or NULL if nothing moved.
CREATE FUNCTION waotp_advance(p_row bigint, p_steps bigint[], p_now bigint, p_forget_code boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
    url text;
    moved boolean := false;
    step bigint;
BEGIN
    SELECT status, callback_url INTO current, url FROM sessions WHERE id = p_row FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    FOREACH step IN ARRAY p_steps LOOP
        IF waotp_rank(step) > waotp_rank(current) THEN
            current := step;
            moved := true;
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
        IF p_forget_code THEN
            UPDATE sessions SET sealed_code = NULL WHERE id = p_row;
        END IF;
        RETURN NULL;
    END IF;
    UPDATE sessions
    SET status = current, updated_at = p_now, sealed_code = CASE WHEN p_forget_code THEN NULL ELSE sealed_code END
    WHERE id = p_row;
    RETURN current;
END $$;

-- The durable part of a send, after its counters passed: under the (app, sandbox, msisdn,
-- challenge) key's advisory lock, uses one unit of a limited app's quota (its row stays
-- locked until the commit: concurrent sends on every node take turns and none oversells),
-- supersedes the key's pending session, stores the new one (its message this node's to
-- deliver) and queues its status-0 callback. Returns (row id, try_count), or no row when the
-- app has no quota left (then nothing was written).
CREATE FUNCTION waotp_store_session(
    p_lock bigint, p_use_quota boolean, p_session_id uuid, p_app_id uuid, p_msisdn text, p_challenge text,
    p_sandbox boolean, p_code_hash bytea, p_sealed bytea, p_owner uuid, p_template text, p_lang text,
    p_content text, p_callback_url text, p_now bigint, p_expires bigint)
RETURNS TABLE (out_row bigint, out_tries bigint)
LANGUAGE plpgsql AS $$
DECLARE
    left_ bigint;
    prev record;
    tries bigint := 1;
    new_row bigint;
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
                          expires_at, updated_at, sandbox)
    VALUES (p_session_id, p_app_id, p_msisdn, p_challenge, p_code_hash, p_sealed,
            CASE WHEN p_sealed IS NULL THEN NULL ELSE p_owner END, 0, 0, tries, p_template, p_lang, p_content,
            p_callback_url, p_now, p_expires, p_now, p_sandbox)
    RETURNING id INTO new_row;
    IF p_callback_url IS NOT NULL THEN
        INSERT INTO callbacks (session_row, status, url, webhook_id, state, next_attempt_at, created_at, updated_at)
        VALUES (new_row, 0, p_callback_url, 'msg_' || replace(gen_random_uuid()::text, '-', ''), 0, p_now, p_now,
                p_now);
    END IF;
    out_row := new_row;
    out_tries := tries;
    RETURN NEXT;
END $$;

-- Whether a session's message should still go out now: 'send', 'blocked_number',
-- 'blocked_prefix', or 'stale:' and why not. `p_prefixes` are the msisdn's prefixes (the
-- number itself among them).
CREATE FUNCTION waotp_delivery_check(p_session_id uuid, p_app_id uuid, p_msisdn text, p_prefixes text[],
                                     p_now bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s record;
    blocked text;
BEGIN
    SELECT state, expires_at INTO s FROM sessions WHERE session_id = p_session_id AND app_id = p_app_id;
    IF NOT FOUND THEN
        RETURN 'stale:the session is gone';
    END IF;
    SELECT CASE WHEN bool_or(NOT is_prefix) THEN 'blocked_number' WHEN bool_or(is_prefix) THEN 'blocked_prefix' END
    INTO blocked FROM blocklist
    WHERE scope IN (p_app_id, '00000000-0000-0000-0000-000000000000') AND entry = ANY (p_prefixes)
      AND (is_prefix OR entry = p_msisdn);
    IF blocked IS NOT NULL THEN
        RETURN blocked;
    END IF;
    RETURN CASE
        WHEN s.state = 2 THEN 'stale:superseded by a newer code before it was sent'
        WHEN s.state = 1 THEN 'stale:verified before it was sent'
        WHEN s.state = 3 THEN 'stale:locked before it was sent'
        WHEN p_now >= s.expires_at THEN 'stale:expired before it was sent'
        ELSE 'send'
    END;
END $$;

-- The local inbox channel's delivery in one call: the last look, then the message stored and
-- the session marked sent and delivered (a blocked number reports 9, a stale code is not
-- delivered), the sealed code forgotten. Returns what happened: the check's answer, or
-- 'done' if the session was no longer waiting for its message.
CREATE FUNCTION waotp_deliver_to_inbox(p_session_id uuid, p_app_id uuid, p_msisdn text, p_prefixes text[],
                                       p_text text, p_now bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    row_ bigint;
    waiting boolean;
    verdict text;
BEGIN
    SELECT id, sealed_code IS NOT NULL INTO row_, waiting FROM sessions WHERE session_id = p_session_id FOR UPDATE;
    IF NOT FOUND OR NOT waiting THEN
        RETURN 'done';
    END IF;
    verdict := waotp_delivery_check(p_session_id, p_app_id, p_msisdn, p_prefixes, p_now);
    IF verdict = 'send' THEN
        INSERT INTO inbox (app_id, session_id, msisdn, text, created_at)
        VALUES (p_app_id, p_session_id, p_msisdn, p_text, p_now);
        PERFORM waotp_advance(row_, ARRAY[1, 2]::bigint[], p_now, true);
    ELSIF verdict LIKE 'stale:%' THEN
        UPDATE sessions SET sealed_code = NULL, error_text = substr(verdict, 7) WHERE id = row_;
    ELSE
        UPDATE sessions SET error_code = NULL, error_text = verdict || ': blocked after the request was accepted'
        WHERE id = row_;
        PERFORM waotp_advance(row_, ARRAY[9]::bigint[], p_now, true);
    END IF;
    RETURN verdict;
END $$;
