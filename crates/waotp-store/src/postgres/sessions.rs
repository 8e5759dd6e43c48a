//! Sessions on PostgreSQL: the send and verify hot path, delivery ownership, the inbox.

use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;
use waotp_core::policy::window_start;
use waotp_core::{Msisdn, SealedCode, Status, VerifyDecision};

use super::guards::{self, Idempotent};
use super::locks::{lock_key, lock_provider_id, session_lock};
use super::rows::{locate, session_ref, Newest, SessionRef};
use super::timeline::{advance, advance_steps, codes, write_verify, SessionKey};
use super::{early_events, exec, fresh_exec, live, query_fresh, query_one, query_opt, small};
use crate::types::ProviderEvent;
use crate::{
    DeliveryOutcome, IdempotentReplay, Limit, NewSession, PendingDelivery, ProviderReport, RecordedCost, Refusal,
    Result, SendGuards, SendOutcome, StoreError, Timeline, VerifyAttempt, VerifyOutcome, DAY_MS,
};

/// Stores a session with `waotp_store_session` (migrations 0002, 0010): quota, supersede, and
/// the session written once as it stands after its birth ([`NewSession::birth`]: a sandbox
/// scenario's statuses, or the local inbox's sent and delivered, with the message) with a
/// callback per status it took, under the key's lock; its `try_count`. `None`: no quota left,
/// nothing written.
/// Outside a transaction this is one round trip and one commit (the hot path).
pub(super) async fn store<C: GenericClient>(c: &C, s: &NewSession, use_quota: bool, node: Uuid) -> Result<Option<u32>> {
    let content = if s.content.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&s.content).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    };
    let sealed = s.stored_sealed_code().map(|sealed| sealed.0.as_slice());
    let birth = s.birth();
    let row = query_opt(
        c,
        "SELECT out_tries FROM waotp_store_session($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20)",
        &[
            &session_lock(&s.app_id, s.sandbox, &s.msisdn, &s.challenge),
            &use_quota,
            &s.session_id,
            &s.app_id,
            &s.msisdn.as_str(),
            &s.challenge,
            &s.sandbox,
            &&s.code_hash.0[..],
            &sealed,
            &node,
            &s.template_name,
            &s.lang_code,
            &content,
            &s.callback_url,
            &s.created_at_ms,
            &s.expires_at_ms,
            &i64::from(birth.status.code()),
            &&birth.stamps[..],
            &codes(&birth.taken),
            &s.inbox_text,
        ],
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(small(row.get(0))?))
}

/// A send's durable part when it needs more than [`store`]: an idempotency key (checked
/// again under its lock, a concurrent retry may have won, and remembered). `signals` in the
/// outcome are left for the caller.
pub(super) async fn create(t: &Transaction<'_>, s: &NewSession, g: &SendGuards, node: Uuid) -> Result<SendOutcome> {
    let now = s.created_at_ms;
    if let Some(k) = &g.idempotency {
        lock_key(t, &[b"idempotency", s.app_id.as_bytes(), k.key.as_bytes()]).await?;
        match guards::idempotent(t, s.app_id, k, now).await? {
            Idempotent::Replay(replay) => return Ok(SendOutcome::Replayed(replay)),
            Idempotent::Mismatch => {
                return Ok(SendOutcome::Refused(Refusal::new(waotp_core::RefusalReason::IdempotencyMismatch)))
            }
            Idempotent::New => {}
        }
    }
    let Some(try_count) = store(t, s, g.use_quota, node).await? else {
        return Ok(SendOutcome::Refused(Refusal::new(waotp_core::RefusalReason::QuotaExhausted)));
    };
    if let Some(key) = &s.reverse_key {
        let sealed =
            s.sealed_code.as_ref().ok_or_else(|| StoreError::Corrupt("a reverse session without its code".into()))?;
        super::reverse::record(t, key, s.session_id, sealed, s.reverse_text.as_deref()).await?;
    }
    if let (Some(k), Some(sealed)) = (&g.idempotency, &s.sealed_code) {
        let replay = IdempotentReplay {
            session_id: s.session_id,
            msisdn: s.msisdn.clone(),
            try_count,
            sealed_code: sealed.clone(),
        };
        guards::remember(t, s.app_id, k, &replay, now).await?;
    }
    Ok(SendOutcome::Created { try_count, signals: Vec::new() })
}

/// Times a verify loads and decides again when its session changed between its load and its
/// write (a concurrent verify, send or status change of the same session got there first).
const VERIFY_ATTEMPTS: u32 = 16;

/// A verify as two statements, each its own transaction (two round trips; one when the
/// decision writes nothing): [`load_verify`] counts the attempt under its limit and loads the
/// newest session of its key, [`VerifyDecision::decide`] decides, and `waotp_verify_write`
/// (migration 0009) stores the decision if the session is still as it was loaded; if it is
/// not, the verify loads and decides again (counted once). A refused verify gives its count
/// back, as a refused send does. The count and the load run on `counters` (asynchronous
/// commit: they write only counters), the write on `c`.
pub(super) async fn verify<K: GenericClient, C: GenericClient>(
    counters: &K,
    c: &C,
    a: &VerifyAttempt,
) -> Result<VerifyOutcome> {
    let mut limit = a.limit.as_ref();
    for _ in 0..VERIFY_ATTEMPTS {
        let (counts, newest) = super::retry(|| load_verify(counters, a, limit)).await?;
        if let (Some(limit), Some(counts)) = (limit, counts) {
            if let Some(refusal) = limit.refusal(counts, a.now_ms) {
                let counted = [(limit.key.clone(), window_start(a.now_ms, limit.window_ms))];
                if let Err(e) = guards::give_back(counters, &counted).await {
                    tracing::warn!(error = %e, "could not give back a refused verify's count");
                }
                return Ok(VerifyOutcome::Refused(refusal));
            }
        }
        limit = None;
        let decision = VerifyDecision::decide(newest.as_ref().map(|n| n.facts), a.now_ms, || {
            newest.as_ref().is_some_and(|n| a.guess.matches(&n.session_id, &n.hash))
        });
        let (Some(write), Some(newest)) = (decision.write(), newest) else {
            return Ok(VerifyOutcome::Decided(decision));
        };
        let key = SessionKey::of(a);
        if super::retry(|| write_verify(c, &key, &newest, write)).await? {
            return Ok(VerifyOutcome::Decided(decision));
        }
    }
    Err(StoreError::Conflict("a verify's session kept changing under it".into()))
}

/// One statement: counts the verify under `limit` (if any), returning the key's (previous
/// window, current window before it) counts, and loads the newest session of its key.
async fn load_verify<C: GenericClient>(
    c: &C,
    a: &VerifyAttempt,
    limit: Option<&Limit>,
) -> Result<(Option<(u64, u64)>, Option<Newest>)> {
    let (key, window_ms) = limit.map_or((None, 0), |l| (Some(l.key.as_str()), l.window_ms));
    let start = if key.is_some() { window_start(a.now_ms, window_ms) } else { 0 };
    let row = query_one(
        c,
        "WITH b AS (INSERT INTO counters (key, window_start, count, expires_at) \
           SELECT $5::text, $6::bigint, 1, $7::bigint WHERE $5::text IS NOT NULL \
           ON CONFLICT (key, window_start) DO UPDATE SET count = counters.count + 1 RETURNING count), \
         n AS (SELECT id, session_id, code_hash, state, status, wrong_attempts, expires_at FROM sessions \
           WHERE app_id = $1 AND sandbox = $2 AND msisdn = $3 AND challenge = $4 ORDER BY id DESC LIMIT 1) \
         SELECT (SELECT count FROM b), \
           COALESCE((SELECT count FROM counters WHERE key = $5::text AND window_start = $8::bigint), 0), \
           n.id, n.session_id, n.code_hash, n.state, n.status, n.wrong_attempts, n.expires_at, \
           EXISTS (SELECT 1 FROM reverse_sessions r WHERE r.session_id = n.session_id) \
         FROM (SELECT 1) one LEFT JOIN n ON true",
        &[
            &a.app_id,
            &a.sandbox,
            &a.msisdn.as_str(),
            &a.challenge,
            &key,
            &start,
            &(start + 2 * window_ms),
            &(start - window_ms),
        ],
    )
    .await?;
    let counts =
        row.get::<_, Option<i64>>(0).map(|after| (row.get::<_, i64>(1).max(0) as u64, (after - 1).max(0) as u64));
    // A reverse session is verified only by an inbound message from its number: for the
    // verify route there is no pending code.
    let newest = match row.get::<_, Option<i64>>(2) {
        None => None,
        Some(_) if row.get::<_, bool>(9) => None,
        Some(_) => Some(Newest::from_row(&row, 2)?),
    };
    Ok((counts, newest))
}

/// Sessions this node should deliver, oldest first: its own, and those whose node is gone
/// (taken over here). Rows another node is handling right now are skipped, not waited for.
pub(super) async fn undelivered(
    t: &Transaction<'_>,
    after_id: i64,
    limit: usize,
    node: Uuid,
    ttl_ms: i64,
) -> Result<Vec<PendingDelivery>> {
    let sql = format!(
        "WITH c AS (SELECT id, delivery_owner IS NOT DISTINCT FROM $3 AS mine FROM sessions \
           WHERE sealed_code IS NOT NULL AND id > $1 \
             AND (delivery_owner IS NULL OR delivery_owner = $3 OR NOT {}) \
           ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED), \
         taken AS (UPDATE sessions s SET delivery_owner = $3 \
           WHERE s.id = ANY (ARRAY(SELECT id FROM c WHERE NOT mine)) RETURNING s.id) \
         SELECT s.id, s.session_id, s.app_id, s.msisdn, s.sealed_code, s.template_name, s.lang_code, s.content, \
           s.expires_at, s.id IN (SELECT id FROM taken) FROM sessions s WHERE s.id = ANY (ARRAY(SELECT id FROM c)) ORDER BY s.id",
        live("delivery_owner", ttl_ms)
    );
    let rows = query_fresh(t, &sql, &[&after_id, &(limit as i64), &node]).await?;
    let mut taken = 0usize;
    let out = rows
        .iter()
        .map(|r| {
            let content: Option<String> = r.get(7);
            if r.get::<_, bool>(9) {
                taken += 1;
            }
            Ok(PendingDelivery {
                row_id: r.get(0),
                session_id: r.get(1),
                app_id: r.get(2),
                msisdn: Msisdn::from_trusted(r.get(3)),
                sealed_code: SealedCode(r.get(4)),
                template_name: r.get(5),
                lang_code: r.get(6),
                content: match content {
                    Some(json) => serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    None => Vec::new(),
                },
                expires_at_ms: r.get(8),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if taken > 0 {
        tracing::info!(sessions = taken, "took over deliveries of a node that is gone");
    }
    Ok(out)
}

pub(super) async fn record_delivery(
    t: &Transaction<'_>,
    session_id: Uuid,
    outcome: &DeliveryOutcome,
    now_ms: i64,
) -> Result<()> {
    if let DeliveryOutcome::Sent { provider_id } = outcome {
        lock_provider_id(t, provider_id).await?;
    }
    // A second delivery of the same session (two nodes raced a takeover) records nothing.
    let Some((mut session, true)) = locate(t, session_id).await? else {
        return Ok(());
    };
    match outcome {
        DeliveryOutcome::Sent { provider_id } => {
            exec(
                t,
                "UPDATE sessions SET sealed_code = NULL, provider_id = $2 WHERE id = $1",
                &[&session.row_id, provider_id],
            )
            .await?;
            advance(t, &mut session, Status::Sent, now_ms).await?;
            // The provider's events that came before this answer, as if they came now.
            for event in early_events::take(t, provider_id).await? {
                apply(t, &mut session, provider_id, &event, now_ms).await?;
            }
        }
        DeliveryOutcome::Failed { status: failed, error_code, error_text } => {
            exec(
                t,
                "UPDATE sessions SET sealed_code = NULL, error_code = $2, error_text = $3 WHERE id = $1",
                &[&session.row_id, error_code, error_text],
            )
            .await?;
            advance(t, &mut session, *failed, now_ms).await?;
        }
        DeliveryOutcome::Skipped(stale) => {
            exec(
                t,
                "UPDATE sessions SET sealed_code = NULL, error_text = $2 WHERE id = $1",
                &[&session.row_id, &stale.reason()],
            )
            .await?;
        }
    }
    Ok(())
}

/// Applies a provider's event to the session that sent its message, or keeps it for the
/// delivery that will record its message id (under the id's lock: see [`lock_provider_id`]).
pub(super) async fn report(
    t: &Transaction<'_>,
    provider_id: &str,
    event: &ProviderEvent,
    now_ms: i64,
) -> Result<ProviderReport> {
    lock_provider_id(t, provider_id).await?;
    let row = query_opt(
        t,
        "SELECT id, app_id, status FROM sessions WHERE provider_id = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE",
        &[&provider_id],
    )
    .await?;
    match row {
        Some(row) => Ok(ProviderReport::applied(apply(t, &mut session_ref(&row)?, provider_id, event, now_ms).await?)),
        None => match super::replies::session_of(t, provider_id).await? {
            Some(row_id) => super::replies::report(t, row_id, provider_id, event, now_ms).await,
            None => Ok(ProviderReport::Kept { evicted: early_events::keep(t, provider_id, event, now_ms).await? }),
        },
    }
}

/// Applies an event on message `provider_id` to the session that sent it; the pricing it
/// recorded, if any.
async fn apply(
    t: &Transaction<'_>,
    session: &mut SessionRef,
    provider_id: &str,
    event: &ProviderEvent,
    now_ms: i64,
) -> Result<Option<RecordedCost>> {
    match event {
        ProviderEvent::Status { steps, error, pricing } => {
            // A late or duplicate report that moves nothing leaves the recorded error alone.
            if advance_steps(t, session, steps, now_ms).await? {
                if let Some((code, text)) = error {
                    exec(
                        t,
                        "UPDATE sessions SET error_code = $2, error_text = $3 WHERE id = $1",
                        &[&session.row_id, code, text],
                    )
                    .await?;
                }
            }
            if let Some(pricing) = pricing {
                return super::costs::record(t, session.row_id, provider_id, pricing, now_ms).await;
            }
        }
        ProviderEvent::NotRequested => {
            exec(
                t,
                "UPDATE sessions SET not_requested_at = COALESCE(not_requested_at, $2) WHERE id = $1",
                &[&session.row_id, &now_ms],
            )
            .await?;
        }
    }
    Ok(None)
}

/// Reports 5 for due sessions, in one statement. Rows another node (or a verify) holds are
/// skipped: every node may sweep at once.
/// Reports 5 for due sessions, each through `waotp_advance` with its row locked (so its
/// callback is queued after a fresh look at the session's others). Rows another node (or a
/// verify) holds are skipped: every node may sweep at once.
pub(super) async fn expire_due(t: &Transaction<'_>, now_ms: i64, limit: usize) -> Result<usize> {
    let row = query_fresh(
        t,
        concat!(
            "SELECT count(waotp_advance(due.id, $3, $1, $4, $5)) FROM (SELECT id FROM sessions WHERE ",
            unfinished_sql!(),
            " AND expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) due"
        ),
        &[
            &now_ms,
            &(limit as i64),
            &vec![i64::from(Status::Unverified.code())],
            &&Status::ranks()[..],
            &&Timeline::slots()[..],
        ],
    )
    .await?
    .pop()
    .ok_or_else(|| StoreError::Corrupt("no row from a count".into()))?;
    Ok(row.get::<_, i64>(0) as usize)
}

/// Retention of sessions, inbox messages and refusal counts: among the oldest `limit` rows (no
/// scan past them), those old enough.
pub(super) async fn prune_older_than(t: &Transaction<'_>, before_ms: i64, limit: usize) -> Result<usize> {
    // Callbacks and their attempts go with their session (ON DELETE CASCADE).
    let sessions = fresh_exec(
        t,
        "DELETE FROM sessions WHERE id IN (SELECT id FROM (SELECT id, created_at FROM sessions ORDER BY id LIMIT $2) \
         oldest WHERE created_at < $1)",
        &[&before_ms, &(limit as i64)],
    )
    .await?;
    let inbox = fresh_exec(
        t,
        "DELETE FROM inbox WHERE id IN (SELECT id FROM (SELECT id, created_at FROM inbox ORDER BY id LIMIT $2) \
         oldest WHERE created_at < $1)",
        &[&before_ms, &(limit as i64)],
    )
    .await?;
    // Refusal counts are per day: a day goes once all of it is older than the cut.
    exec(t, "DELETE FROM refusals WHERE day < $1", &[&(before_ms / DAY_MS)]).await?;
    Ok((sessions + inbox) as usize)
}
