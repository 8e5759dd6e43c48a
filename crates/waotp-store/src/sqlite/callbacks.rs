//! The callback outbox: queued with each status change, claimed in order per session,
//! every attempt logged.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;
use waotp_core::Status;

use super::rows::{locate, status_from};
use super::uuid_from;
use crate::{AttemptRecord, CallbackJob, CallbackNext, CallbackRecord, CallbackState, FailedCallback, Result, HELD};

/// Queues the callback for a status change (part of the status change's transaction): due
/// now if it is the session's only pending callback, held otherwise.
pub(super) fn enqueue(c: &Connection, session_row: i64, status: Status, url: &str, now_ms: i64) -> Result<()> {
    let webhook_id = format!("msg_{}", Uuid::new_v4().simple());
    c.prepare_cached(
        "INSERT OR IGNORE INTO callbacks (session_row, status, url, webhook_id, state, next_attempt_at, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, 0, \
         CASE WHEN EXISTS (SELECT 1 FROM callbacks WHERE session_row = ?1 AND state = 0) THEN ?6 ELSE ?5 END, ?5, ?5)",
    )?
    .execute(params![session_row, status.code(), url, webhook_id, now_ms, HELD])?;
    Ok(())
}

/// Makes the session's next pending callback due once its predecessor is settled.
fn release_next(c: &Connection, settled_id: i64, now_ms: i64) -> Result<()> {
    c.prepare_cached(
        "UPDATE callbacks SET next_attempt_at = ?2 WHERE id = (SELECT id FROM callbacks WHERE state = 0 AND \
         session_row = (SELECT session_row FROM callbacks WHERE id = ?1) ORDER BY id LIMIT 1) AND next_attempt_at >= ?3",
    )?
    .execute(params![settled_id, now_ms, HELD])?;
    Ok(())
}

pub(super) fn claim(c: &Connection, now_ms: i64, lease_until_ms: i64, limit: usize) -> Result<Vec<CallbackJob>> {
    let mut stmt = c.prepare_cached(
        "SELECT cb.id, s.session_id, s.app_id, cb.status, cb.url, cb.webhook_id, cb.attempts, s.challenge, cb.created_at \
         FROM callbacks cb JOIN sessions s ON s.id = cb.session_row \
         WHERE cb.state = 0 AND cb.next_attempt_at <= ?1 AND (cb.lease_until IS NULL OR cb.lease_until <= ?1) \
           AND NOT EXISTS (SELECT 1 FROM callbacks p WHERE p.session_row = cb.session_row AND p.state = 0 AND p.id < cb.id) \
         ORDER BY cb.next_attempt_at, cb.id LIMIT ?2",
    )?;
    let jobs = stmt
        .query_map(params![now_ms, limit as i64], |r| {
            Ok(CallbackJob {
                id: r.get(0)?,
                session_id: uuid_from(r.get(1)?)?,
                app_id: uuid_from(r.get(2)?)?,
                status: status_from(r.get(3)?)?,
                url: r.get(4)?,
                webhook_id: r.get(5)?,
                attempts: r.get(6)?,
                challenge: r.get(7)?,
                happened_at_ms: r.get(8)?,
                lease_until_ms,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut lease = c.prepare_cached("UPDATE callbacks SET lease_until = ?2 WHERE id = ?1")?;
    for job in &jobs {
        lease.execute(params![job.id, lease_until_ms])?;
    }
    Ok(jobs)
}

/// Settles an attempt — only if the caller still holds the lease it claimed with (a replay
/// meanwhile takes the callback over).
pub(super) fn finish(
    c: &Connection,
    id: i64,
    lease_until_ms: i64,
    attempt: Option<&AttemptRecord>,
    next: &CallbackNext,
    now_ms: i64,
) -> Result<()> {
    if let Some(a) = attempt {
        c.prepare_cached(
            "INSERT INTO callback_attempts (callback_id, attempted_at, http_status, error, latency_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, a.at_ms, a.http_status, a.error, a.latency_ms])?;
    }
    let counted = i64::from(attempt.is_some());
    let (state, next_at) = next.outcome();
    let settled = state != CallbackState::Pending;
    let updated = c
        .prepare_cached(
            "UPDATE callbacks SET state = ?2, attempts = attempts + ?3, next_attempt_at = COALESCE(?4, next_attempt_at), \
             lease_until = NULL, updated_at = ?5 WHERE id = ?1 AND lease_until = ?6",
        )?
        .execute(params![id, state.code(), counted, next_at, now_ms, lease_until_ms])?;
    if updated == 1 && settled {
        release_next(c, id, now_ms)?;
    }
    Ok(())
}

pub(super) fn release_leases(c: &Connection) -> Result<()> {
    c.prepare_cached("UPDATE callbacks SET lease_until = NULL WHERE lease_until IS NOT NULL")?.execute([])?;
    Ok(())
}

/// The row of `session_id` if it belongs to `app_id`.
fn owned_row(c: &Connection, app_id: Uuid, session_id: Uuid) -> Result<Option<i64>> {
    Ok(locate(c, session_id)?.filter(|s| s.app_id == app_id).map(|s| s.row_id))
}

pub(super) fn list(c: &Connection, app_id: Uuid, session_id: Uuid) -> Result<Option<Vec<CallbackRecord>>> {
    let Some(row) = owned_row(c, app_id, session_id)? else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached(
        "SELECT id, status, url, webhook_id, state, attempts, next_attempt_at, created_at FROM callbacks \
         WHERE session_row = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([row], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                status_from(r.get(1)?)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, status, url, webhook_id, state, count, next_at, created_at) in rows {
        let log = attempt_log(c, id)?;
        out.push(CallbackRecord {
            status,
            url,
            webhook_id,
            state: CallbackState::from_code(state)?,
            attempts: count,
            next_attempt_at_ms: next_at,
            happened_at_ms: created_at,
            log,
        });
    }
    Ok(Some(out))
}

pub(super) fn replay(c: &Connection, app_id: Uuid, session_id: Uuid, status: Status, now_ms: i64) -> Result<bool> {
    let Some(row) = owned_row(c, app_id, session_id)? else {
        return Ok(false);
    };
    let n = c
        .prepare_cached(
            "UPDATE callbacks SET state = 0, attempts = 0, lease_until = NULL, updated_at = ?3, next_attempt_at = \
             CASE WHEN EXISTS (SELECT 1 FROM callbacks p WHERE p.session_row = ?1 AND p.state = 0 AND p.id < callbacks.id) \
             THEN ?4 ELSE ?3 END WHERE session_row = ?1 AND status = ?2",
        )?
        .execute(params![row, status.code(), now_ms, HELD])?;
    Ok(n == 1)
}

pub(super) fn pending(c: &Connection) -> Result<u64> {
    Ok(c.prepare_cached("SELECT COUNT(*) FROM callbacks WHERE state = 0")?
        .query_row([], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0) as u64)
}

fn attempt_log(c: &Connection, callback_id: i64) -> Result<Vec<AttemptRecord>> {
    let mut attempts = c.prepare_cached(
        "SELECT attempted_at, http_status, error, latency_ms FROM callback_attempts WHERE callback_id = ?1 ORDER BY id",
    )?;
    let log = attempts
        .query_map([callback_id], |r| {
            Ok(AttemptRecord { at_ms: r.get(0)?, http_status: r.get(1)?, error: r.get(2)?, latency_ms: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(log)
}

pub(super) fn failed(c: &Connection, limit: usize) -> Result<Vec<FailedCallback>> {
    let mut stmt = c.prepare_cached(
        "SELECT cb.id, s.app_id, s.session_id, s.msisdn, cb.status, cb.url, cb.webhook_id, cb.attempts, \
         cb.next_attempt_at, cb.created_at FROM callbacks cb JOIN sessions s ON s.id = cb.session_row \
         WHERE cb.state = 2 ORDER BY cb.id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                FailedCallback {
                    app_id: super::uuid_from(r.get(1)?)?,
                    session_id: super::uuid_from(r.get(2)?)?,
                    msisdn: waotp_core::Msisdn::from_trusted(r.get(3)?),
                    callback: CallbackRecord {
                        status: status_from(r.get(4)?)?,
                        url: r.get(5)?,
                        webhook_id: r.get(6)?,
                        state: CallbackState::Failed,
                        attempts: r.get(7)?,
                        next_attempt_at_ms: r.get(8)?,
                        happened_at_ms: r.get(9)?,
                        log: Vec::new(),
                    },
                },
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, mut failed) in rows {
        failed.callback.log = attempt_log(c, id)?;
        out.push(failed);
    }
    Ok(out)
}
