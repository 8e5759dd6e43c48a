//! Guards on PostgreSQL: counters, quotas, blocklists and idempotency keys.
//!
//! A send's counters (its rate limits and pumping signals) are bumped before its session is
//! written, all in one statement that increments each and returns the result: two requests on
//! any nodes can never both take the last unit of a limit. The statement commits at once
//! (asynchronously: a lost increment after a database crash only makes a limit more lenient
//! for one window), so a hot counter — a whole number range's conversion count — is locked
//! for microseconds, not for a session's durable commit. A send refused afterwards (or whose
//! session is not written) gives its counts back. A verify's limit is counted the same way, in
//! the statement that loads its session (see `sessions::verify`).

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use uuid::Uuid;
use waotp_core::policy::window_start;
use waotp_core::{Msisdn, SealedCode};

use super::{exec, fresh_exec, prefixes, query, query_opt, small};
use crate::{
    BlockEntry, Blocklisted, IdempotencyKey, IdempotentReplay, Refusal, RefusalCount, Result, SendGuards, SignalRule,
    IDEMPOTENCY_TTL_MS,
};

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

/// Rows a signal counter is split in.
const SHARDS: u8 = 10;

/// The shard of a msisdn's signal counts: its last digit.
pub(super) fn shard_of(msisdn: &Msisdn) -> u8 {
    msisdn.as_str().bytes().last().map_or(0, |d| d.wrapping_sub(b'0') % SHARDS)
}

pub(super) fn shard_key(key: &str, shard: u8) -> String {
    format!("{key}#{shard}")
}

/// What counting a send's guards decided.
pub(super) enum Counted {
    /// Within every limit: `keys` were counted (given back if the send is not stored after
    /// all); `fired` lists the monitored signals that fired.
    Passed { keys: Vec<(String, i64)>, fired: Vec<waotp_core::PumpingRule> },
    /// Refused; nothing stays counted.
    Refused(Refusal),
}

/// Counts a send under its limits and signals in one statement, then checks them in order
/// (the app's monthly ceiling of billable messages, the blocklist, limits, then signals);
/// nothing is counted past the ceiling or for a blocked number, and a refusal by a limit or a
/// signal gives every count back.
pub(super) async fn count_send<C: GenericClient>(
    c: &C,
    g: &SendGuards,
    app_id: Uuid,
    msisdn: &Msisdn,
    now_ms: i64,
) -> Result<Counted> {
    // Limits are counted exactly, one row per key. Signal counters are shared by a whole
    // number block or range, so they are split in `SHARDS` rows (by the msisdn's last
    // digit) and read as their sum: an estimate, as signals are, that no two sends of a
    // range wait on each other for. Each key bumped maps to its window and whether its own
    // count is read back (a limit's; a shard's is only read in its range's sum).
    let shard = shard_of(msisdn);
    let mut bumps: BTreeMap<String, (i64, bool)> = BTreeMap::new();
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    for limit in &g.limits {
        bumps.insert(limit.key.clone(), (limit.window_ms, true));
    }
    for signal in &g.signals {
        match &signal.rule {
            SignalRule::Sequential { key, window_ms, .. } => {
                bumps.insert(shard_key(key, shard), (*window_ms, false));
                sums.insert(key, *window_ms);
            }
            SignalRule::Conversion { sent_key, verified_key, window_ms, .. } => {
                bumps.insert(shard_key(sent_key, shard), (*window_ms, false));
                sums.insert(sent_key, *window_ms);
                sums.insert(verified_key, *window_ms);
            }
        }
    }
    if bumps.is_empty() && sums.is_empty() && !g.check_blocklist && g.billable_ceiling.is_none() {
        return Ok(Counted::Passed { keys: Vec::new(), fired: Vec::new() });
    }
    // In a fixed (sorted) order: concurrent statements lock the rows they share in the same
    // order, never in a cycle.
    let (mut keys, mut starts, mut expiries, mut prevs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (key, (window_ms, read)) in &bumps {
        let start = window_start(now_ms, *window_ms);
        keys.push(key.clone());
        starts.push(start);
        expiries.push(start + 2 * window_ms);
        // No previous window: the key's counts are not read back (nor looked up).
        prevs.push(read.then_some(start - window_ms));
    }
    let (mut sum_bases, mut sum_starts, mut sum_prevs) = (Vec::new(), Vec::new(), Vec::new());
    for (base, window_ms) in &sums {
        let start = window_start(now_ms, *window_ms);
        sum_bases.push(*base);
        sum_starts.push(start);
        sum_prevs.push(start - window_ms);
    }
    // The statement below reads a range's shards (`base#0` … `base#9`, as `shard_key` names
    // them) as one range of the counters' primary key (key, window_start): they sort together,
    // between `base#0` and `base#9`, in any collation that orders the digits (this range is in
    // the key column's collation, so that the index serves it). So each sum is one index
    // descent and a few neighbouring entries (the shards' current and previous windows, which
    // the window range keeps to), not one descent per shard and window. A key in the range
    // that is not one of the shards (a collation other than "C" may sort other keys between
    // them) is left out by the exact test on the key, which the index does not evaluate.
    const _: () = assert!(SHARDS == 10);
    let digits = msisdn.as_str();
    let prefixes = prefixes(msisdn);
    // One statement: the app's billable messages this month (with a ceiling) and the
    // blocklist looked up; unless the ceiling is reached (`BillableCeiling::refusal`'s rule) or
    // the number is blocked, every key counted; the limits' counts after this send and the
    // signals' sums before it. (All of it reads the counters as they were before the
    // statement: its INSERT's effects are seen only through `b`.)
    let (month, ceiling) = g
        .billable_ceiling
        .as_ref()
        .map_or((None, None), |c| (Some(c.month), Some(i64::try_from(c.limit).unwrap_or(i64::MAX))));
    let rows = query(
        c,
        concat!(
            "WITH bl AS (",
            blocklist_lookup!("$5", "$6", "$7", "$8", "$9"),
            "), \
         ce AS (SELECT COALESCE((SELECT billable FROM billable_months WHERE $14::bigint IS NOT NULL \
           AND app_id = $6 AND month = $13), 0) AS billable), \
         k AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS k(key, ws, ex, prev) \
           WHERE NOT EXISTS (SELECT 1 FROM bl WHERE number OR prefix) \
           AND NOT EXISTS (SELECT 1 FROM ce WHERE ce.billable >= $14::bigint)), \
         b AS (INSERT INTO counters (key, window_start, count, expires_at) SELECT key, ws, 1, ex FROM k ORDER BY key \
           ON CONFLICT (key, window_start) DO UPDATE SET count = counters.count + 1 RETURNING key, count), \
         c AS (SELECT k.key, b.count AS cur, \
             COALESCE((SELECT p.count FROM counters p WHERE p.key = k.key AND p.window_start = k.prev), 0) AS prev \
             FROM k JOIN b ON b.key = k.key WHERE k.prev IS NOT NULL \
           UNION ALL \
           SELECT r.base, (COALESCE(s.cur, 0) + 1)::bigint, COALESCE(s.prev, 0)::bigint \
             FROM unnest($10::text[], $11::bigint[], $12::bigint[]) AS r(base, ws, prev) \
             CROSS JOIN LATERAL (SELECT sum(x.count) FILTER (WHERE x.window_start = r.ws) AS cur, \
                 sum(x.count) FILTER (WHERE x.window_start = r.prev) AS prev \
               FROM counters x WHERE x.key >= r.base || '#0' AND x.key <= r.base || '#9' \
                 AND x.window_start >= r.prev AND x.window_start <= r.ws \
                 AND left(x.key, -1) = r.base || '#' AND right(x.key, 1) COLLATE \"C\" BETWEEN '0' AND '9') s) \
         SELECT bl.number, bl.prefix, c.key, c.cur, c.prev, (SELECT billable FROM ce) FROM bl LEFT JOIN c ON true"
        ),
        &[
            &keys,
            &starts,
            &expiries,
            &prevs,
            &g.check_blocklist,
            &app_id,
            &Uuid::nil(),
            &prefixes,
            &digits,
            &sum_bases,
            &sum_starts,
            &sum_prevs,
            &month,
            &ceiling,
        ],
    )
    .await?;
    let first = rows.first().expect("an aggregate returns a row");
    if let Some(ceiling) = &g.billable_ceiling {
        if let Some(refusal) = ceiling.refusal(first.get::<_, i64>(5).max(0) as u64) {
            return Ok(Counted::Refused(refusal));
        }
    }
    let (number, prefix): (Option<bool>, Option<bool>) = (first.get(0), first.get(1));
    if let Some(blocked) = Blocklisted::from_matches(number == Some(true), prefix == Some(true)) {
        return Ok(Counted::Refused(Refusal::new(blocked.into())));
    }
    // (previous window, current window before this send) per key.
    let counts: BTreeMap<String, (u64, u64)> = rows
        .iter()
        .filter_map(|r| {
            let key: Option<String> = r.get(2);
            let (after, prev): (Option<i64>, Option<i64>) = (r.get(3), r.get(4));
            Some((key?, (prev?.max(0) as u64, (after? - 1).max(0) as u64)))
        })
        .collect();
    let counted: Vec<(String, i64)> = keys.into_iter().zip(starts).collect();
    let get = |key: &str| counts.get(key).copied().unwrap_or((0, 0));

    let Ok(verdict) = g.judge(now_ms, |key, _| Ok::<_, std::convert::Infallible>(get(key)));
    match verdict {
        Err(refusal) => {
            if let Err(e) = give_back(c, &counted).await {
                tracing::warn!(error = %e, "could not give back a refused send's counts");
            }
            Ok(Counted::Refused(refusal))
        }
        Ok(fired) => Ok(Counted::Passed { keys: counted, fired }),
    }
}

/// Takes back a send's counts (it was refused, or its session was not stored). A failure
/// leaves a limit stricter for one window, never looser; the caller logs it, or tries again
/// later (the database went away between the count and the session).
pub(super) async fn give_back<C: GenericClient>(c: &C, counted: &[(String, i64)]) -> Result<()> {
    if counted.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = counted.iter().map(|(k, _)| k.as_str()).collect();
    let starts: Vec<i64> = counted.iter().map(|(_, s)| *s).collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&keys, &starts];
    // A deadlock or serialization failure is tried again, as every single-statement write is.
    super::retry(|| {
        exec(
            c,
            "WITH l AS (SELECT c.key, c.window_start FROM counters c \
               JOIN unnest($1::text[], $2::bigint[]) AS r(key, ws) ON c.key = r.key AND c.window_start = r.ws \
               ORDER BY c.key FOR UPDATE OF c) \
             UPDATE counters SET count = counters.count - 1 FROM l \
             WHERE counters.key = l.key AND counters.window_start = l.window_start AND counters.count > 0",
            &params,
        )
    })
    .await
    .map(drop)
}

/// The nil UUID: a blocklist entry for every app.
fn scope(app_id: Option<Uuid>) -> Uuid {
    app_id.unwrap_or(Uuid::nil())
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
    while fresh_exec(
        c,
        "DELETE FROM counters WHERE (key, window_start) IN (SELECT key, window_start FROM counters \
         WHERE expires_at <= $1 LIMIT 5000 FOR UPDATE SKIP LOCKED)",
        &[&now_ms],
    )
    .await?
        == 5000
    {}
    while fresh_exec(
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

/// Adds to the per-day refusal counts, in one statement. The batch is summed by key first (a
/// row may be updated once per statement) and written in key order (concurrent flushes of
/// other nodes take the same rows' locks in the same order).
pub(super) async fn add_refusals<C: GenericClient>(c: &C, counts: &[RefusalCount]) -> Result<()> {
    let app_ids: Vec<Uuid> = counts.iter().map(|r| r.app_id).collect();
    let days: Vec<i64> = counts.iter().map(|r| r.day).collect();
    let reasons: Vec<&str> = counts.iter().map(|r| r.reason.code()).collect();
    let added: Vec<i64> = counts.iter().map(|r| r.count as i64).collect();
    exec(
        c,
        "INSERT INTO refusals (app_id, day, reason, count) \
         SELECT app_id, day, reason, sum(count)::bigint FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[]) \
           AS batch (app_id, day, reason, count) GROUP BY app_id, day, reason ORDER BY app_id, day, reason \
         ON CONFLICT (app_id, day, reason) DO UPDATE SET count = refusals.count + excluded.count",
        &[&app_ids, &days, &reasons, &added],
    )
    .await?;
    Ok(())
}

pub(super) async fn refusals<C: GenericClient>(c: &C, since_day: i64) -> Result<Vec<RefusalCount>> {
    // Reasons in byte order, as SQLite sorts them (not the database's collation).
    let rows = query(
        c,
        "SELECT app_id, day, reason, count FROM refusals WHERE day >= $1 ORDER BY day, app_id, reason COLLATE \"C\"",
        &[&since_day],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let reason = waotp_core::RefusalReason::from_code(r.get(2))?;
            Some(RefusalCount { app_id: r.get(0), day: r.get(1), reason, count: r.get::<_, i64>(3) as u64 })
        })
        .collect())
}
