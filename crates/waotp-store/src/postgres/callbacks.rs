//! The callback outbox on PostgreSQL: queued with each status change (under the session's
//! row lock), claimed by one node at a time with a lease, in order per session.

use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;
use waotp_core::Status;

use super::rows::owned_row;
use super::{exec, live, query, query_fresh, query_one, query_opt, small, status_from};
use std::collections::HashMap;

use tokio_postgres::Row;
use waotp_core::Msisdn;

use crate::{
    AttemptRecord, CallbackJob, CallbackNext, CallbackRecord, CallbackState, FailedCallback, Result, StoreError, HELD,
};

pub(super) async fn claim<C: GenericClient>(
    c: &C,
    now_ms: i64,
    lease_until_ms: i64,
    limit: usize,
    node: Uuid,
    ttl_ms: i64,
) -> Result<Vec<CallbackJob>> {
    // Only the first pending callback of a session is meant to be due (the others are held
    // behind it: see `waotp_advance`, `finish` and `replay`); the check against an earlier
    // pending one stays as a guard. Planned afresh on every run (see `query_fresh`).
    let sql = format!(
        "WITH c AS (SELECT cb.id FROM callbacks cb \
           WHERE cb.state = 0 AND cb.next_attempt_at <= $1 \
             AND (cb.lease_until IS NULL OR cb.lease_until <= $1 OR NOT {}) \
             AND NOT EXISTS (SELECT 1 FROM callbacks p WHERE p.session_row = cb.session_row AND p.state = 0 \
                             AND p.id < cb.id) \
           ORDER BY cb.next_attempt_at, cb.id LIMIT $3 FOR UPDATE OF cb SKIP LOCKED), \
         claimed AS (UPDATE callbacks cb SET lease_until = $2, lease_owner = $4 \
           WHERE cb.id = ANY (ARRAY(SELECT id FROM c)) \
           RETURNING cb.id, cb.session_row, cb.status, cb.url, cb.webhook_id, cb.attempts, cb.created_at, \
           cb.next_attempt_at) \
         SELECT k.id, s.session_id, s.app_id, k.status, k.url, k.webhook_id, k.attempts, s.challenge, k.created_at \
         FROM claimed k JOIN sessions s ON s.id = k.session_row ORDER BY k.next_attempt_at, k.id",
        live("cb.lease_owner", ttl_ms)
    );
    query_fresh(c, &sql, &[&now_ms, &lease_until_ms, &(limit as i64), &node])
        .await?
        .iter()
        .map(|r| {
            Ok(CallbackJob {
                id: r.get(0),
                session_id: r.get(1),
                app_id: r.get(2),
                status: status_from(r.get(3))?,
                url: r.get(4),
                webhook_id: r.get(5),
                attempts: small(r.get(6))?,
                challenge: r.get(7),
                happened_at_ms: r.get(8),
                lease_until_ms,
            })
        })
        .collect()
}

/// Settles an attempt, only if this node still holds the lease it claimed with.
pub(super) async fn finish(
    t: &Transaction<'_>,
    job: &CallbackJob,
    attempt: Option<&AttemptRecord>,
    next: &CallbackNext,
    now_ms: i64,
    node: Uuid,
) -> Result<()> {
    let (state, next_at) = next.outcome();
    let settled = state != CallbackState::Pending;
    // Settling releases the session's next callback, and a retry looks at its session's other
    // callbacks: take the session's row lock, as every status change and replay does.
    exec(
        t,
        "SELECT 1 FROM sessions WHERE id = (SELECT session_row FROM callbacks WHERE id = $1) FOR UPDATE",
        &[&job.id],
    )
    .await?;
    if let Some(a) = attempt {
        exec(
            t,
            "INSERT INTO callback_attempts (callback_id, attempted_at, http_status, error, latency_ms) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&job.id, &a.at_ms, &a.http_status.map(i64::from), &a.error, &a.latency_ms],
        )
        .await?;
    }
    let counted = i64::from(attempt.is_some());
    let updated = exec(
        t,
        // A retry waits behind an earlier callback of its session that is pending again (replayed).
        "UPDATE callbacks SET state = $2, attempts = attempts + $3, updated_at = $5, \
         next_attempt_at = CASE WHEN $4::bigint IS NULL THEN next_attempt_at \
           WHEN EXISTS (SELECT 1 FROM callbacks p WHERE p.session_row = callbacks.session_row AND p.state = 0 \
                        AND p.id < callbacks.id) THEN $8::bigint ELSE $4::bigint END, \
         lease_until = NULL, lease_owner = NULL WHERE id = $1 AND lease_until = $6 AND lease_owner = $7",
        &[&job.id, &state.code(), &counted, &next_at, &now_ms, &job.lease_until_ms, &node, &HELD],
    )
    .await?;
    if updated == 1 && settled {
        exec(
            t,
            "UPDATE callbacks SET next_attempt_at = $2 WHERE id = (SELECT id FROM callbacks WHERE state = 0 AND \
             session_row = (SELECT session_row FROM callbacks WHERE id = $1) ORDER BY id LIMIT 1) \
             AND next_attempt_at >= $3",
            &[&job.id, &now_ms, &HELD],
        )
        .await?;
    }
    Ok(())
}

/// Releases the leases of nodes that are gone (the claim query ignores them anyway; this
/// makes them visible as free to operators).
pub(super) async fn release_dead_leases<C: GenericClient>(c: &C, ttl_ms: i64) -> Result<()> {
    exec(
        c,
        &format!(
            "UPDATE callbacks SET lease_until = NULL, lease_owner = NULL \
             WHERE state = 0 AND lease_until IS NOT NULL AND NOT {}",
            live("lease_owner", ttl_ms)
        ),
        &[],
    )
    .await?;
    Ok(())
}

pub(super) async fn list<C: GenericClient>(
    c: &C,
    app_id: Uuid,
    session_id: Uuid,
) -> Result<Option<Vec<CallbackRecord>>> {
    let Some(row) =
        query_opt(c, "SELECT id FROM sessions WHERE session_id = $1 AND app_id = $2", &[&session_id, &app_id]).await?
    else {
        return Ok(None);
    };
    let session_row: i64 = row.get(0);
    let callbacks = query(
        c,
        "SELECT id, status, url, webhook_id, state, attempts, next_attempt_at, created_at FROM callbacks \
         WHERE session_row = $1 ORDER BY id",
        &[&session_row],
    )
    .await?;
    let attempts = query(
        c,
        "SELECT a.callback_id, a.attempted_at, a.http_status, a.error, a.latency_ms FROM callback_attempts a \
         JOIN callbacks cb ON cb.id = a.callback_id WHERE cb.session_row = $1 ORDER BY a.id",
        &[&session_row],
    )
    .await?;
    let mut out = Vec::with_capacity(callbacks.len());
    for r in &callbacks {
        let id: i64 = r.get(0);
        let log =
            attempts.iter().filter(|a| a.get::<_, i64>(0) == id).map(attempt_record).collect::<Result<Vec<_>>>()?;
        out.push(CallbackRecord {
            status: status_from(r.get(1))?,
            url: r.get(2),
            webhook_id: r.get(3),
            state: CallbackState::from_code(r.get(4))?,
            attempts: small(r.get(5))?,
            next_attempt_at_ms: r.get(6),
            happened_at_ms: r.get(7),
            log,
        });
    }
    Ok(Some(out))
}

pub(super) async fn replay(
    t: &Transaction<'_>,
    app_id: Uuid,
    session_id: Uuid,
    status: Status,
    now_ms: i64,
) -> Result<bool> {
    let Some(row) = owned_row(t, app_id, session_id).await? else {
        return Ok(false);
    };
    let n = exec(
        t,
        "UPDATE callbacks SET state = 0, attempts = 0, lease_until = NULL, lease_owner = NULL, updated_at = $3, \
         next_attempt_at = CASE WHEN EXISTS (SELECT 1 FROM callbacks p WHERE p.session_row = $1 AND p.state = 0 \
         AND p.id < callbacks.id) THEN $4::bigint ELSE $3::bigint END WHERE session_row = $1 AND status = $2",
        &[&row, &i64::from(status.code()), &now_ms, &HELD],
    )
    .await?;
    // Later pending callbacks of the session wait behind it again (one in flight now settles
    // or retries behind it: see `finish`): only a session's first pending callback is due.
    exec(
        t,
        "UPDATE callbacks SET next_attempt_at = $3 WHERE session_row = $1 AND state = 0 \
         AND id > (SELECT id FROM callbacks WHERE session_row = $1 AND status = $2) AND next_attempt_at < $3",
        &[&row, &i64::from(status.code()), &HELD],
    )
    .await?;
    Ok(n == 1)
}

pub(super) async fn pending<C: GenericClient>(c: &C) -> Result<u64> {
    Ok(query_one(c, "SELECT count(*) FROM callbacks WHERE state = 0", &[]).await?.get::<_, i64>(0) as u64)
}

/// An [`AttemptRecord`] from a row of `callback_id, attempted_at, http_status, error, latency_ms`.
fn attempt_record(a: &Row) -> Result<AttemptRecord> {
    Ok(AttemptRecord {
        at_ms: a.get(1),
        http_status: a
            .get::<_, Option<i64>>(2)
            .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("HTTP status {s}"))))
            .transpose()?,
        error: a.get(3),
        latency_ms: a.get(4),
    })
}

/// Callbacks given up on, newest first, with their sessions and attempt logs (two queries).
pub(super) async fn failed<C: GenericClient>(c: &C, limit: usize) -> Result<Vec<FailedCallback>> {
    let rows = query(
        c,
        "SELECT cb.id, s.app_id, s.session_id, s.msisdn, cb.status, cb.url, cb.webhook_id, cb.attempts, \
         cb.next_attempt_at, cb.created_at FROM callbacks cb JOIN sessions s ON s.id = cb.session_row \
         WHERE cb.state = 2 ORDER BY cb.id DESC LIMIT $1",
        &[&(limit as i64)],
    )
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let mut logs: HashMap<i64, Vec<AttemptRecord>> = HashMap::new();
    for a in &query(
        c,
        "SELECT callback_id, attempted_at, http_status, error, latency_ms FROM callback_attempts \
         WHERE callback_id = ANY ($1) ORDER BY id",
        &[&ids],
    )
    .await?
    {
        logs.entry(a.get(0)).or_default().push(attempt_record(a)?);
    }
    rows.iter()
        .map(|r| {
            Ok(FailedCallback {
                app_id: r.get(1),
                session_id: r.get(2),
                msisdn: Msisdn::from_trusted(r.get(3)),
                callback: CallbackRecord {
                    status: status_from(r.get(4))?,
                    url: r.get(5),
                    webhook_id: r.get(6),
                    state: CallbackState::Failed,
                    attempts: small(r.get(7))?,
                    next_attempt_at_ms: r.get(8),
                    happened_at_ms: r.get(9),
                    log: logs.remove(&r.get::<_, i64>(0)).unwrap_or_default(),
                },
            })
        })
        .collect()
}
