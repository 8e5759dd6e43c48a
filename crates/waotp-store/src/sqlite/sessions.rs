//! Sessions: the send and verify hot path, delivery bookkeeping, the local inbox.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;
use waotp_core::{Msisdn, SealedCode, SessionState, Status, VerifyDecision, VerifyFacts};

use super::counters::Counters;
use super::guards::{self, Idempotent};
use super::rows::{inbox_message, locate, session_ref, state_from, status_from, SessionRef};
use super::timeline::{advance, advance_steps, walk_and_write};
use super::{callbacks, early_events, uuid_from};
use crate::code_hash;
use crate::types::ProviderEvent;
use crate::{
    DeliveryOutcome, IdempotentReplay, InboxMessage, NewSession, PendingDelivery, ProviderReport, RecordedCost,
    Refusal, Result, SendGuards, SendOutcome, StoreError, VerifyAttempt, VerifyOutcome, BLOCKED_AFTER_ACCEPTED, DAY_MS,
};

pub(super) fn create(c: &Connection, k: &mut Counters, s: &NewSession, g: &SendGuards) -> Result<SendOutcome> {
    let now = s.created_at_ms;
    if let Some(key) = &s.reverse_key {
        super::reverse::check_free(c, key)?;
    }
    if let Some(k) = &g.idempotency {
        match guards::idempotent(c, s.app_id, k, now)? {
            Idempotent::Replay(replay) => return Ok(SendOutcome::Replayed(replay)),
            Idempotent::Mismatch => {
                return Ok(SendOutcome::Refused(Refusal::new(waotp_core::RefusalReason::IdempotencyMismatch)))
            }
            Idempotent::New => {}
        }
    }
    if let Some(ceiling) = &g.billable_ceiling {
        if let Some(refusal) = ceiling.refusal(super::costs::billable_in_month(c, s.app_id, ceiling.month)?) {
            return Ok(SendOutcome::Refused(refusal));
        }
    }
    if g.check_blocklist {
        if let Some(blocked) = guards::blocked(c, s.app_id, &s.msisdn)? {
            return Ok(SendOutcome::Refused(Refusal::new(blocked.into())));
        }
    }
    let counted = g.judge(now, |key, window_ms| Ok::<_, StoreError>(k.counts(key, window_ms, now)))?;
    let fired = match counted {
        Ok(fired) => fired,
        Err(refusal) => return Ok(SendOutcome::Refused(refusal)),
    };
    let quota = if g.use_quota { guards::quota(c, s.app_id)? } else { None };
    if quota.is_some_and(|left| left <= 0) {
        return Ok(SendOutcome::Refused(Refusal::new(waotp_core::RefusalReason::QuotaExhausted)));
    }
    for limit in &g.limits {
        k.bump(&limit.key, limit.window_ms, now);
    }
    for signal in &g.signals {
        k.count_signal(&signal.rule, now);
    }
    if quota.is_some() {
        guards::use_quota(c, s.app_id)?;
    }
    let try_count = insert(c, s)?;
    if let Some(key) = &s.reverse_key {
        let sealed =
            s.sealed_code.as_ref().ok_or_else(|| StoreError::Corrupt("a reverse session without its code".into()))?;
        super::reverse::record(c, key, s.session_id, sealed, s.reverse_text.as_deref())?;
    }
    if let (Some(k), Some(sealed)) = (&g.idempotency, &s.sealed_code) {
        let replay = IdempotentReplay {
            session_id: s.session_id,
            msisdn: s.msisdn.clone(),
            try_count,
            sealed_code: sealed.clone(),
        };
        guards::remember(c, s.app_id, k, &replay, now)?;
    }
    Ok(SendOutcome::Created { try_count, signals: fired })
}

/// Inserts a session, superseding the pending one of its key; returns its `try_count`.
fn insert(c: &Connection, s: &NewSession) -> Result<u32> {
    let newest = c
        .prepare_cached(
            "SELECT id, state, expires_at, try_count FROM sessions \
             WHERE app_id = ?1 AND sandbox = ?4 AND msisdn = ?2 AND challenge = ?3 ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![s.app_id.as_bytes(), s.msisdn.as_str(), s.challenge, s.sandbox], |r| {
            Ok((r.get::<_, i64>(0)?, state_from(r.get(1)?)?, r.get::<_, i64>(2)?, r.get::<_, u32>(3)?))
        })
        .optional()?;
    let try_count = match newest {
        Some((id, SessionState::Pending, expires_at, tries)) if expires_at > s.created_at_ms => {
            c.prepare_cached("UPDATE sessions SET state = ?2, updated_at = ?3 WHERE id = ?1")?.execute(params![
                id,
                SessionState::Superseded.code(),
                s.created_at_ms
            ])?;
            tries.saturating_add(1)
        }
        _ => 1,
    };
    let content = if s.content.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&s.content).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    };
    // The session is written once, as it stands after its birth's steps (sandbox scenarios;
    // the inbox's sent and delivered), with a callback for each status it took.
    let birth = s.birth();
    let at = |slot: usize| birth.stamps[slot].then_some(s.created_at_ms);
    c.prepare_cached(
        "INSERT INTO sessions (session_id, app_id, msisdn, challenge, code_hash, sealed_code, state, status, \
         try_count, template_name, lang_code, content, callback_url, created_at, expires_at, updated_at, sandbox, \
         sent_at, delivered_at, read_at, failed_at, closed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?14, ?16, ?17, ?18, ?19, ?20, ?21)",
    )?
    .execute(params![
        s.session_id.as_bytes(),
        s.app_id.as_bytes(),
        s.msisdn.as_str(),
        s.challenge,
        &s.code_hash.0[..],
        s.stored_sealed_code().map(|sealed| &sealed.0),
        SessionState::Pending.code(),
        birth.status.code(),
        try_count,
        s.template_name,
        s.lang_code,
        content,
        s.callback_url,
        s.created_at_ms,
        s.expires_at_ms,
        s.sandbox,
        at(0),
        at(1),
        at(2),
        at(3),
        at(4),
    ])?;
    let row_id = c.last_insert_rowid();
    if let Some(url) = &s.callback_url {
        for status in birth.taken {
            callbacks::enqueue(c, row_id, status, url, s.created_at_ms)?;
        }
    }
    if let Some(text) = &s.inbox_text {
        c.prepare_cached(
            "INSERT INTO inbox (app_id, session_id, msisdn, text, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            s.app_id.as_bytes(),
            s.session_id.as_bytes(),
            s.msisdn.as_str(),
            text,
            s.created_at_ms
        ])?;
    }
    Ok(try_count)
}

pub(super) fn verify(c: &Connection, k: &mut Counters, a: &VerifyAttempt) -> Result<VerifyOutcome> {
    if let Some(limit) = &a.limit {
        if let Some(refusal) = k.check_limit(limit, a.now_ms) {
            return Ok(VerifyOutcome::Refused(refusal));
        }
        k.bump(&limit.key, limit.window_ms, a.now_ms);
    }
    let decision = decide(c, a)?;
    if decision == VerifyDecision::Verified {
        for (counter, window_ms) in &a.on_verified {
            k.bump(counter, *window_ms, a.now_ms);
        }
    }
    Ok(VerifyOutcome::Decided(decision))
}

/// Loads the newest session of the attempt's key, lets [`VerifyDecision::decide`] decide, and
/// stores what it decided.
fn decide(c: &Connection, a: &VerifyAttempt) -> Result<VerifyDecision> {
    let newest = c
        .prepare_cached(
            "SELECT id, session_id, code_hash, state, status, wrong_attempts, expires_at, callback_url, \
             EXISTS (SELECT 1 FROM reverse_sessions r WHERE r.session_id = sessions.session_id) \
             FROM sessions WHERE app_id = ?1 AND sandbox = ?4 AND msisdn = ?2 AND challenge = ?3 \
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![a.app_id.as_bytes(), a.msisdn.as_str(), a.challenge, a.sandbox], |r| {
            let facts = VerifyFacts {
                state: state_from(r.get(3)?)?,
                status: status_from(r.get(4)?)?,
                wrong_attempts: r.get(5)?,
                expires_at_ms: r.get(6)?,
            };
            let session =
                SessionRef { row_id: r.get(0)?, app_id: a.app_id, status: facts.status, callback_url: r.get(7)? };
            Ok((session, uuid_from(r.get(1)?)?, r.get::<_, Vec<u8>>(2)?, facts, r.get::<_, bool>(8)?))
        })
        .optional()?;
    // A reverse session is verified only by an inbound message from its number: for the
    // verify route there is no pending code.
    let newest = match newest {
        Some((_, _, _, _, true)) | None => None,
        Some((session, session_id, hash, facts, false)) => Some((session, session_id, code_hash(hash)?, facts)),
    };
    let decision = VerifyDecision::decide(newest.as_ref().map(|n| n.3), a.now_ms, || {
        newest.as_ref().is_some_and(|(_, session_id, hash, _)| a.guess.matches(session_id, hash))
    });
    if let (Some(write), Some((mut session, ..))) = (decision.write(), newest) {
        walk_and_write(c, &mut session, write.report, Some(write), a.now_ms)?;
    }
    Ok(decision)
}

pub(super) fn undelivered(c: &Connection, after_id: i64, limit: usize) -> Result<Vec<PendingDelivery>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, session_id, app_id, msisdn, sealed_code, template_name, lang_code, content, expires_at \
         FROM sessions WHERE sealed_code IS NOT NULL AND id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after_id, limit as i64], |r| {
        Ok((
            PendingDelivery {
                row_id: r.get(0)?,
                session_id: uuid_from(r.get(1)?)?,
                app_id: uuid_from(r.get(2)?)?,
                msisdn: Msisdn::from_trusted(r.get(3)?),
                sealed_code: SealedCode(r.get(4)?),
                template_name: r.get(5)?,
                lang_code: r.get(6)?,
                content: Vec::new(),
                expires_at_ms: r.get(8)?,
            },
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    rows.map(|row| {
        let (mut pending, content) = row?;
        if let Some(json) = content {
            pending.content = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        Ok(pending)
    })
    .collect()
}

pub(super) fn record_delivery(c: &Connection, session_id: Uuid, outcome: &DeliveryOutcome, now_ms: i64) -> Result<()> {
    let Some(mut session) = locate(c, session_id)? else {
        return Ok(());
    };
    if !awaiting_delivery(c, session.row_id)? {
        return Ok(());
    }
    match outcome {
        DeliveryOutcome::Sent { provider_id } => {
            c.prepare_cached("UPDATE sessions SET sealed_code = NULL, provider_id = ?2 WHERE id = ?1")?
                .execute(params![session.row_id, provider_id])?;
            advance(c, &mut session, Status::Sent, now_ms)?;
            // The provider's events that came before this answer, as if they came now.
            for event in early_events::take(c, provider_id)? {
                apply(c, &mut session, provider_id, &event, now_ms)?;
            }
        }
        DeliveryOutcome::Failed { status: failed, error_code, error_text } => {
            c.prepare_cached("UPDATE sessions SET sealed_code = NULL, error_code = ?2, error_text = ?3 WHERE id = ?1")?
                .execute(params![session.row_id, error_code, error_text])?;
            advance(c, &mut session, *failed, now_ms)?;
        }
        DeliveryOutcome::Skipped(stale) => {
            c.prepare_cached("UPDATE sessions SET sealed_code = NULL, error_text = ?2 WHERE id = ?1")?
                .execute(params![session.row_id, stale.reason()])?;
        }
    }
    Ok(())
}

/// Whether a session's message still waits for its channel (a second delivery of the same
/// session, e.g. after a restart raced a running delivery, records nothing).
fn awaiting_delivery(c: &Connection, row_id: i64) -> Result<bool> {
    Ok(c.prepare_cached("SELECT sealed_code IS NOT NULL FROM sessions WHERE id = ?1")?
        .query_row([row_id], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

pub(super) fn deliver_to_inbox(c: &Connection, m: &InboxMessage) -> Result<()> {
    let Some(mut session) = locate(c, m.session_id)? else {
        return Ok(());
    };
    if !awaiting_delivery(c, session.row_id)? {
        return Ok(());
    }
    // The same last look as before any send, in the same transaction as the delivery.
    let check = super::session_reads::delivery_check(c, m.app_id, m.session_id, &m.msisdn, m.created_at_ms)?;
    if let Some(outcome) = DeliveryOutcome::stopped(check, BLOCKED_AFTER_ACCEPTED) {
        return record_delivery(c, m.session_id, &outcome, m.created_at_ms);
    }
    c.prepare_cached("INSERT INTO inbox (app_id, session_id, msisdn, text, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![m.app_id.as_bytes(), m.session_id.as_bytes(), m.msisdn.as_str(), m.text, m.created_at_ms])?;
    c.prepare_cached("UPDATE sessions SET sealed_code = NULL WHERE id = ?1")?.execute([session.row_id])?;
    advance_steps(c, &mut session, &[Status::Sent, Status::Delivered], m.created_at_ms)?;
    Ok(())
}

pub(super) fn inbox(c: &Connection, app_id: Uuid, msisdn: &Msisdn, limit: usize) -> Result<Vec<InboxMessage>> {
    let mut stmt = c.prepare_cached(
        "SELECT app_id, session_id, msisdn, text, created_at FROM inbox WHERE app_id = ?1 AND msisdn = ?2 \
         ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![app_id.as_bytes(), msisdn.as_str(), limit as i64], inbox_message)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn mark_read(c: &Connection, app_id: Uuid, session_ids: &[Uuid], now_ms: i64) -> Result<()> {
    for id in session_ids {
        if let Some(mut session) = locate(c, *id)? {
            if session.app_id == app_id {
                advance(c, &mut session, Status::Read, now_ms)?;
            }
        }
    }
    Ok(())
}

/// The session that sent provider message `provider_id`: the newest, should two have recorded
/// the same id (as PostgreSQL picks it).
fn by_provider_id(c: &Connection, provider_id: &str) -> Result<Option<SessionRef>> {
    Ok(c.prepare_cached(
        "SELECT id, app_id, status, callback_url FROM sessions WHERE provider_id = ?1 ORDER BY id DESC LIMIT 1",
    )?
    .query_row([provider_id], session_ref)
    .optional()?)
}

/// Applies a provider's event to the session that sent its message, or keeps it for the
/// delivery that will record its message id.
pub(super) fn report(c: &Connection, provider_id: &str, event: &ProviderEvent, now_ms: i64) -> Result<ProviderReport> {
    match by_provider_id(c, provider_id)? {
        Some(mut session) => Ok(ProviderReport::applied(apply(c, &mut session, provider_id, event, now_ms)?)),
        None => match super::replies::session_of(c, provider_id)? {
            Some(row_id) => super::replies::report(c, row_id, provider_id, event, now_ms),
            None => Ok(ProviderReport::Kept { evicted: early_events::keep(c, provider_id, event, now_ms)? }),
        },
    }
}

/// Applies an event on message `provider_id` to the session that sent it; the pricing it
/// recorded, if any.
fn apply(
    c: &Connection,
    session: &mut SessionRef,
    provider_id: &str,
    event: &ProviderEvent,
    now_ms: i64,
) -> Result<Option<RecordedCost>> {
    match event {
        ProviderEvent::Status { steps, error, pricing } => {
            // A late or duplicate report that moves nothing leaves the recorded error alone.
            if advance_steps(c, session, steps, now_ms)? {
                if let Some((code, text)) = error {
                    c.prepare_cached("UPDATE sessions SET error_code = ?2, error_text = ?3 WHERE id = ?1")?
                        .execute(params![session.row_id, code, text])?;
                }
            }
            if let Some(pricing) = pricing {
                return super::costs::record(c, session.row_id, provider_id, pricing, now_ms);
            }
        }
        ProviderEvent::NotRequested => {
            c.prepare_cached("UPDATE sessions SET not_requested_at = COALESCE(not_requested_at, ?2) WHERE id = ?1")?
                .execute(params![session.row_id, now_ms])?;
        }
    }
    Ok(None)
}

pub(super) fn expire_due(c: &Connection, now_ms: i64, limit: usize) -> Result<usize> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT id, app_id, status, callback_url FROM sessions WHERE ",
        unfinished_sql!(),
        " AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2"
    ))?;
    let due = stmt.query_map(params![now_ms, limit as i64], session_ref)?.collect::<rusqlite::Result<Vec<_>>>()?;
    for mut session in due.iter().cloned() {
        advance(c, &mut session, Status::Unverified, now_ms)?;
    }
    Ok(due.len())
}

/// Retention of sessions, inbox messages and refusal counts: the oldest rows first (ids grow
/// with time, so the scan stops early).
pub(super) fn prune_older_than(c: &Connection, before_ms: i64, limit: usize) -> Result<usize> {
    // Callbacks and their attempts go with their session (ON DELETE CASCADE).
    let sessions = c
        .prepare_cached(
            // The oldest `limit` rows by id (no scan past them), of which those old enough.
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY id LIMIT ?2) AND created_at < ?1",
        )?
        .execute(params![before_ms, limit as i64])?;
    let inbox = c
        .prepare_cached(
            "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox ORDER BY id LIMIT ?2) AND created_at < ?1",
        )?
        .execute(params![before_ms, limit as i64])?;
    // Refusal counts are per day: a day goes once all of it is older than the cut.
    c.prepare_cached("DELETE FROM refusals WHERE day < ?1 / ?2")?.execute(params![before_ms, DAY_MS])?;
    Ok(sessions + inbox)
}
