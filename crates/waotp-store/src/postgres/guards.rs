//! Guards on PostgreSQL: counters, quotas, blocklists and idempotency keys, counted in the
//! transaction of the send or verify they guard. A counter is bumped first (its row stays
//! locked until the commit) and checked after; a refusal rolls the transaction back, so
//! concurrent requests on any node see each other's counts exactly.

use deadpool_postgres::GenericClient;
use uuid::Uuid;
use waotp_core::policy::{sliding_estimate, wait_for_room, window_start};
use waotp_core::{Msisdn, SealedCode};

use super::{exec, query, query_opt, small};
use crate::{BlockEntry, IdempotencyKey, IdempotentReplay, Limit, Refusal, Result, SignalRule, IDEMPOTENCY_TTL_MS};

/// Counts one event; returns the previous window's count and the current window's count
/// before this event.
pub(super) async fn bump<C: GenericClient>(c: &C, key: &str, window_ms: i64, now_ms: i64) -> Result<(u64, u64)> {
    let start = window_start(now_ms, window_ms);
    let row = query_opt(
        c,
        "WITH b AS (INSERT INTO counters (key, window_start, count, expires_at) VALUES ($1, $2, 1, $3) \
           ON CONFLICT (key, window_start) DO UPDATE SET count = counters.count + 1 RETURNING count) \
         SELECT (SELECT count FROM b), \
                COALESCE((SELECT count FROM counters WHERE key = $1 AND window_start = $4), 0)",
        &[&key, &start, &(start + 2 * window_ms), &(start - window_ms)],
    )
    .await?
    .expect("a SELECT without FROM returns one row");
    let (after, prev): (i64, i64) = (row.get(0), row.get(1));
    Ok((prev.max(0) as u64, (after - 1).max(0) as u64))
}

/// The previous and current window counts of a key, without counting.
async fn counts<C: GenericClient>(c: &C, key: &str, window_ms: i64, now_ms: i64) -> Result<(u64, u64)> {
    let current = window_start(now_ms, window_ms);
    let rows = query(
        c,
        "SELECT window_start, count FROM counters WHERE key = $1 AND window_start IN ($2, $3)",
        &[&key, &(current - window_ms), &current],
    )
    .await?;
    let (mut prev, mut cur) = (0, 0);
    for r in rows {
        let (start, count): (i64, i64) = (r.get(0), r.get(1));
        if start == current {
            cur = count.max(0) as u64;
        } else {
            prev = count.max(0) as u64;
        }
    }
    Ok((prev, cur))
}

/// Counts one event under `limit`; `Some(refusal)` if it was one too many (the caller rolls
/// the count back with its transaction).
pub(super) async fn count_within<C: GenericClient>(c: &C, limit: &Limit, now_ms: i64) -> Result<Option<Refusal>> {
    let (prev, cur) = bump(c, &limit.key, limit.window_ms, now_ms).await?;
    let wait = wait_for_room(prev, cur, limit.limit, now_ms, limit.window_ms);
    Ok((wait > 0).then_some(Refusal::RateLimited { code: limit.code, retry_after_ms: wait }))
}

/// Counts a send for a pumping rule; whether the rule fires for it.
pub(super) async fn count_signal<C: GenericClient>(c: &C, rule: &SignalRule, now_ms: i64) -> Result<bool> {
    Ok(match rule {
        SignalRule::Sequential { key, threshold, window_ms } => {
            let (prev, cur) = bump(c, key, *window_ms, now_ms).await?;
            sliding_estimate(prev, cur, now_ms, *window_ms) + 1.0 > *threshold as f64
        }
        SignalRule::Conversion { sent_key, verified_key, min_sends, min_rate, window_ms } => {
            let (prev, cur) = bump(c, sent_key, *window_ms, now_ms).await?;
            let sent = sliding_estimate(prev, cur, now_ms, *window_ms);
            let (prev, cur) = counts(c, verified_key, *window_ms, now_ms).await?;
            let verified = sliding_estimate(prev, cur, now_ms, *window_ms);
            sent >= *min_sends as f64 && verified < sent * min_rate
        }
    })
}

/// The nil UUID: a blocklist entry for every app.
fn scope(app_id: Option<Uuid>) -> Uuid {
    app_id.unwrap_or(Uuid::nil())
}

/// `blocked_number` or `blocked_prefix` if the msisdn is blocked for this app or all apps:
/// the number and each of its prefixes looked up together in the primary key.
pub(super) async fn blocked<C: GenericClient>(c: &C, app_id: Uuid, msisdn: &Msisdn) -> Result<Option<&'static str>> {
    let digits = msisdn.as_str();
    let candidates: Vec<&str> = (1..=digits.len()).map(|end| &digits[..end]).collect();
    let rows = query(
        c,
        "SELECT entry, is_prefix FROM blocklist WHERE scope IN ($1, $2) AND entry = ANY($3)",
        &[&app_id, &Uuid::nil(), &candidates],
    )
    .await?;
    let mut found = None;
    for row in rows {
        let (entry, is_prefix): (String, bool) = (row.get(0), row.get(1));
        if !is_prefix && entry == digits {
            return Ok(Some("blocked_number"));
        }
        if is_prefix {
            found = Some("blocked_prefix");
        }
    }
    Ok(found)
}

/// What an idempotency key says about a send.
pub(super) enum Idempotent {
    New,
    Replay(IdempotentReplay),
    Mismatch,
}

pub(super) async fn idempotent<C: GenericClient>(
    c: &C,
    app_id: Uuid,
    k: &IdempotencyKey,
    now_ms: i64,
) -> Result<Idempotent> {
    let row = query_opt(
        c,
        "SELECT body_hash, session_id, msisdn, try_count, sealed_code FROM idempotency \
         WHERE app_id = $1 AND key = $2 AND created_at > $3",
        &[&app_id, &k.key, &(now_ms - IDEMPOTENCY_TTL_MS)],
    )
    .await?;
    let Some(row) = row else { return Ok(Idempotent::New) };
    let hash: Vec<u8> = row.get(0);
    if hash != k.body_hash {
        return Ok(Idempotent::Mismatch);
    }
    Ok(Idempotent::Replay(IdempotentReplay {
        session_id: row.get(1),
        msisdn: Msisdn::from_trusted(row.get(2)),
        try_count: small(row.get(3))?,
        sealed_code: SealedCode(row.get(4)),
    }))
}

pub(super) async fn remember<C: GenericClient>(
    c: &C,
    app_id: Uuid,
    k: &IdempotencyKey,
    replay: &IdempotentReplay,
    now_ms: i64,
) -> Result<()> {
    exec(
        c,
        "INSERT INTO idempotency (app_id, key, body_hash, session_id, msisdn, try_count, sealed_code, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (app_id, key) DO UPDATE SET \
         body_hash = EXCLUDED.body_hash, session_id = EXCLUDED.session_id, msisdn = EXCLUDED.msisdn, \
         try_count = EXCLUDED.try_count, sealed_code = EXCLUDED.sealed_code, created_at = EXCLUDED.created_at",
        &[
            &app_id,
            &k.key,
            &&k.body_hash[..],
            &replay.session_id,
            &replay.msisdn.as_str(),
            &i64::from(replay.try_count),
            &replay.sealed_code.0,
            &now_ms,
        ],
    )
    .await?;
    Ok(())
}

/// Uses one send of the app's quota. `Ok(true)`: used, or the app is unlimited; `Ok(false)`:
/// exhausted. A limited app's row stays locked until the commit, so concurrent sends on every
/// node take turns and none oversells.
pub(super) async fn use_quota<C: GenericClient>(c: &C, app_id: Uuid) -> Result<bool> {
    let quota: Option<Option<i64>> =
        query_opt(c, "SELECT quota FROM apps WHERE app_id = $1", &[&app_id]).await?.map(|r| r.get(0));
    match quota {
        None => Ok(false),
        Some(None) => Ok(true),
        Some(Some(_)) => Ok(query_opt(
            c,
            "UPDATE apps SET quota = quota - 1 WHERE app_id = $1 AND quota > 0 RETURNING quota",
            &[&app_id],
        )
        .await?
        .is_some()),
    }
}

pub(super) async fn block<C: GenericClient>(c: &C, e: &BlockEntry) -> Result<bool> {
    let n = exec(
        c,
        "INSERT INTO blocklist (scope, entry, is_prefix, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[&scope(e.app_id), &e.entry, &e.is_prefix, &e.created_at_ms],
    )
    .await?;
    Ok(n == 1)
}

pub(super) async fn unblock<C: GenericClient>(
    c: &C,
    app_id: Option<Uuid>,
    entry: &str,
    is_prefix: bool,
) -> Result<bool> {
    let n = exec(
        c,
        "DELETE FROM blocklist WHERE scope = $1 AND entry = $2 AND is_prefix = $3",
        &[&scope(app_id), &entry, &is_prefix],
    )
    .await?;
    Ok(n == 1)
}

pub(super) async fn list_blocked<C: GenericClient>(c: &C) -> Result<Vec<BlockEntry>> {
    // The nil scope (every app) sorts first, as SQLite's empty blob does.
    let rows = query(c, "SELECT scope, entry, is_prefix, created_at FROM blocklist ORDER BY scope, entry", &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let scope: Uuid = r.get(0);
            BlockEntry {
                app_id: (!scope.is_nil()).then_some(scope),
                entry: r.get(1),
                is_prefix: r.get(2),
                created_at_ms: r.get(3),
            }
        })
        .collect())
}

/// Forgets expired counters and idempotency keys, in batches that skip rows other nodes are
/// pruning or counting right now.
pub(super) async fn prune<C: GenericClient>(c: &C, now_ms: i64) -> Result<()> {
    while exec(
        c,
        "DELETE FROM counters WHERE (key, window_start) IN (SELECT key, window_start FROM counters \
         WHERE expires_at <= $1 LIMIT 5000 FOR UPDATE SKIP LOCKED)",
        &[&now_ms],
    )
    .await?
        == 5000
    {}
    while exec(
        c,
        "DELETE FROM idempotency WHERE (app_id, key) IN (SELECT app_id, key FROM idempotency \
         WHERE created_at <= $1 LIMIT 5000 FOR UPDATE SKIP LOCKED)",
        &[&(now_ms - IDEMPOTENCY_TTL_MS)],
    )
    .await?
        == 5000
    {}
    Ok(())
}
