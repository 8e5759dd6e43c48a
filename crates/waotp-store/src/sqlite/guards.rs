//! Guards in the store: quotas, blocklists and idempotency keys (the counters for
//! sliding-window limits and pumping signals are in the writer's memory: [`super::counters`]).
//! Every check and its counting happen in the same write as the send or verify they guard, so
//! concurrent requests can never oversell a quota or slip past a limit.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;
use waotp_core::{Msisdn, SealedCode};

use super::uuid_from;
use crate::{BlockEntry, Blocklisted, IdempotencyKey, IdempotentReplay, Result};
use waotp_core::RefusalReason;

use crate::{RefusalCount, IDEMPOTENCY_TTL_MS};

/// Whether the msisdn is blocked for this app or all apps. One statement: the number and
/// each of its prefixes are looked up together in the primary key.
pub(super) fn blocked(c: &Connection, app_id: Uuid, msisdn: &Msisdn) -> Result<Option<Blocklisted>> {
    const MAX_DIGITS: usize = 17;
    let digits = msisdn.as_str();
    // Unused slots repeat the full number (IN ignores duplicates).
    let candidates: Vec<&str> = (1..=MAX_DIGITS).map(|end| &digits[..end.min(digits.len())]).collect();
    let mut stmt = c.prepare_cached(
        "SELECT entry, is_prefix FROM blocklist WHERE (scope = ?1 OR scope = X'') AND entry IN \
         (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?;
    let mut params: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(MAX_DIGITS + 1);
    let scope = app_id.as_bytes();
    params.push(&scope);
    for candidate in &candidates {
        params.push(candidate);
    }
    let mut rows = stmt.query(params.as_slice())?;
    let (mut number, mut prefix) = (false, false);
    while let Some(row) = rows.next()? {
        let (entry, is_prefix): (String, bool) = (row.get(0)?, row.get(1)?);
        number |= !is_prefix && entry == digits;
        prefix |= is_prefix;
    }
    Ok(Blocklisted::from_matches(number, prefix))
}

/// What an idempotency key says about a send: nothing yet, a replay, or a mismatch.
pub(super) enum Idempotent {
    New,
    Replay(IdempotentReplay),
    Mismatch,
}

pub(super) fn idempotent(c: &Connection, app_id: Uuid, k: &IdempotencyKey, now_ms: i64) -> Result<Idempotent> {
    let row = c
        .prepare_cached(
            "SELECT body_hash, session_id, msisdn, try_count, sealed_code FROM idempotency \
             WHERE app_id = ?1 AND key = ?2 AND created_at > ?3",
        )?
        .query_row(params![app_id.as_bytes(), k.key, now_ms - IDEMPOTENCY_TTL_MS], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                uuid_from(r.get(1)?)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })
        .optional()?;
    Ok(match row {
        None => Idempotent::New,
        Some((hash, ..)) if hash != k.body_hash => Idempotent::Mismatch,
        Some((_, session_id, msisdn, try_count, sealed)) => Idempotent::Replay(IdempotentReplay {
            session_id,
            msisdn: Msisdn::from_trusted(msisdn),
            try_count,
            sealed_code: SealedCode(sealed),
        }),
    })
}

pub(super) fn remember(
    c: &Connection,
    app_id: Uuid,
    k: &IdempotencyKey,
    replay: &IdempotentReplay,
    now_ms: i64,
) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO idempotency (app_id, key, body_hash, session_id, msisdn, try_count, sealed_code, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        app_id.as_bytes(),
        k.key,
        &k.body_hash[..],
        replay.session_id.as_bytes(),
        replay.msisdn.as_str(),
        replay.try_count,
        replay.sealed_code.0,
        now_ms
    ])?;
    Ok(())
}

/// The app's quota: `None` unlimited, `Some(n)` sends left.
pub(super) fn quota(c: &Connection, app_id: Uuid) -> Result<Option<i64>> {
    let quota: Option<Option<i64>> = c
        .prepare_cached("SELECT quota FROM apps WHERE app_id = ?1")?
        .query_row([app_id.as_bytes()], |r| r.get(0))
        .optional()?;
    Ok(quota.unwrap_or(Some(0)))
}

pub(super) fn use_quota(c: &Connection, app_id: Uuid) -> Result<()> {
    c.prepare_cached("UPDATE apps SET quota = quota - 1 WHERE app_id = ?1 AND quota > 0")?
        .execute([app_id.as_bytes()])?;
    Ok(())
}

fn scope(app_id: Option<Uuid>) -> Vec<u8> {
    app_id.map(|a| a.as_bytes().to_vec()).unwrap_or_default()
}

pub(super) fn block(c: &Connection, e: &BlockEntry) -> Result<bool> {
    let n = c
        .prepare_cached(
            "INSERT OR IGNORE INTO blocklist (scope, entry, is_prefix, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![scope(e.app_id), e.entry, e.is_prefix, e.created_at_ms])?;
    Ok(n == 1)
}

pub(super) fn unblock(c: &Connection, app_id: Option<Uuid>, entry: &str, is_prefix: bool) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM blocklist WHERE scope = ?1 AND entry = ?2 AND is_prefix = ?3")?
        .execute(params![scope(app_id), entry, is_prefix])?;
    Ok(n == 1)
}

pub(super) fn list_blocked(c: &Connection) -> Result<Vec<BlockEntry>> {
    let mut stmt =
        c.prepare_cached("SELECT scope, entry, is_prefix, created_at FROM blocklist ORDER BY scope, entry")?;
    let rows = stmt.query_map([], |r| {
        let scope: Vec<u8> = r.get(0)?;
        Ok(BlockEntry {
            app_id: if scope.is_empty() { None } else { Some(uuid_from(scope)?) },
            entry: r.get(1)?,
            is_prefix: r.get(2)?,
            created_at_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn prune(c: &Connection, now_ms: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM idempotency WHERE created_at <= ?1")?.execute([now_ms - IDEMPOTENCY_TTL_MS])?;
    Ok(())
}

pub(super) fn add_refusals(c: &Connection, counts: &[RefusalCount]) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO refusals (app_id, day, reason, count) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (app_id, day, reason) DO UPDATE SET count = count + excluded.count",
    )?;
    for r in counts {
        stmt.execute(params![r.app_id.as_bytes(), r.day, r.reason.code(), r.count as i64])?;
    }
    Ok(())
}

pub(super) fn refusals(c: &Connection, since_day: i64) -> Result<Vec<RefusalCount>> {
    let mut stmt = c.prepare_cached(
        "SELECT app_id, day, reason, count FROM refusals WHERE day >= ?1 ORDER BY day, app_id, reason",
    )?;
    let rows = stmt.query_map([since_day], |r| -> rusqlite::Result<Option<RefusalCount>> {
        let Some(reason) = RefusalReason::from_code(&r.get::<_, String>(2)?) else { return Ok(None) };
        Ok(Some(RefusalCount {
            app_id: super::uuid_from(r.get(0)?)?,
            day: r.get(1)?,
            reason,
            count: r.get::<_, i64>(3)? as u64,
        }))
    })?;
    Ok(rows.filter_map(|row| row.transpose()).collect::<rusqlite::Result<_>>()?)
}
