//! Message costs on SQLite (migration 0014): each message's pricing once, with its session's
//! app and country, and the billable messages of each app and month.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;
use waotp_core::calendar::month_of;
use waotp_core::MessagePricing;

use super::uuid_from;
use crate::{CostWindow, CountryCount, MessageCount, RecordedCost, Result, DAY_MS};

/// Records the pricing of message `provider_id` of session row `row_id` unless that message's
/// was recorded before; what was recorded.
pub(super) fn record(
    c: &Connection,
    row_id: i64,
    provider_id: &str,
    p: &MessagePricing,
    now_ms: i64,
) -> Result<Option<RecordedCost>> {
    let session = c
        .prepare_cached("SELECT app_id, session_id, msisdn FROM sessions WHERE id = ?1")?
        .query_row([row_id], |r| Ok((uuid_from(r.get(0)?)?, uuid_from(r.get(1)?)?, r.get::<_, String>(2)?)))
        .optional()?;
    let Some((app_id, session_id, msisdn)) = session else { return Ok(None) };
    let country = waotp_core::numbering::region(&msisdn);
    let inserted = c
        .prepare_cached(
            "INSERT INTO message_costs (provider_id, app_id, session_id, country, billable, category, pricing_model, \
             pricing_type, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (provider_id) DO NOTHING",
        )?
        .execute(params![
            provider_id,
            app_id.as_bytes(),
            session_id.as_bytes(),
            country,
            p.billable,
            p.category,
            p.pricing_model,
            p.pricing_type,
            now_ms
        ])?;
    if inserted == 0 {
        return Ok(None);
    }
    if p.billable {
        c.prepare_cached(
            "INSERT INTO billable_months (app_id, month, billable) VALUES (?1, ?2, 1) \
             ON CONFLICT (app_id, month) DO UPDATE SET billable = billable + 1",
        )?
        .execute(params![app_id.as_bytes(), month_of(now_ms)])?;
    }
    Ok(Some(RecordedCost { app_id, session_id, country, pricing: p.clone() }))
}

pub(super) fn billable_in_month(c: &Connection, app_id: Uuid, month: i64) -> Result<u64> {
    let n: Option<i64> = c
        .prepare_cached("SELECT billable FROM billable_months WHERE app_id = ?1 AND month = ?2")?
        .query_row(params![app_id.as_bytes(), month], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

pub(super) fn message_counts(c: &Connection, w: &CostWindow) -> Result<Vec<MessageCount>> {
    let mut stmt = c.prepare_cached(
        "SELECT country, category, billable, created_at / ?4 AS day, count(*) FROM message_costs \
         WHERE created_at >= ?1 AND created_at < ?2 AND (?3 IS NULL OR app_id = ?3) \
         GROUP BY country, category, billable, day ORDER BY day, country, category, billable",
    )?;
    let rows = stmt.query_map(params![w.from_ms, w.to_ms, w.app_id.as_ref().map(Uuid::as_bytes), DAY_MS], |r| {
        Ok(MessageCount {
            country: r.get(0)?,
            category: r.get(1)?,
            billable: r.get(2)?,
            day: r.get(3)?,
            messages: r.get::<_, i64>(4)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The verified production sessions of the window, by country: read within the window's ids
/// ([`crate::costs::WINDOW_IDS_SQL`]) through the primary key (`NOT INDEXED`: never an app's
/// whole range of `sessions_by_key`), grouped by number here, counted by country in this
/// reader thread.
pub(super) fn verified_by_country(c: &Connection, w: &CostWindow) -> Result<Vec<CountryCount>> {
    let Some((first, end)) = window_ids(c, w)? else { return Ok(Vec::new()) };
    let verified = waotp_core::Status::Verified.code();
    let rows = |sql: &str, app: Option<&[u8; 16]>| -> Result<Vec<(String, u64)>> {
        let mut stmt = c.prepare_cached(sql)?;
        let row = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64));
        Ok(match app {
            Some(app) => stmt.query_map(params![first, end, w.from_ms, w.to_ms, verified, app], row)?,
            None => stmt.query_map(params![first, end, w.from_ms, w.to_ms, verified], row)?,
        }
        .collect::<rusqlite::Result<Vec<_>>>()?)
    };
    let numbers = match &w.app_id {
        Some(app_id) => rows(VERIFIED_OF_APP, Some(app_id.as_bytes()))?,
        None => rows(VERIFIED, None)?,
    };
    Ok(crate::costs::by_country(numbers))
}

const VERIFIED: &str = "SELECT msisdn, count(*) FROM sessions NOT INDEXED WHERE id >= ?1 AND id < ?2 \
    AND created_at >= ?3 AND created_at < ?4 AND status = ?5 AND sandbox = 0 GROUP BY msisdn";
const VERIFIED_OF_APP: &str = "SELECT msisdn, count(*) FROM sessions NOT INDEXED WHERE id >= ?1 AND id < ?2 \
    AND created_at >= ?3 AND created_at < ?4 AND status = ?5 AND sandbox = 0 AND app_id = ?6 GROUP BY msisdn";

/// The ids the window's sessions may have (`None`: no session at all).
fn window_ids(c: &Connection, w: &CostWindow) -> Result<Option<(i64, i64)>> {
    let (from, to) = crate::costs::window_id_targets(w);
    let sql = crate::costs::WINDOW_IDS_SQL.replace('$', "?");
    let (first, end): (Option<i64>, Option<i64>) =
        c.prepare_cached(&sql)?.query_row(params![from, to], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(first.zip(end))
}

/// Retention: the oldest `limit` costs of those created before `before_ms`, and the billable
/// counts of months that ended before it; how many costs went.
pub(super) fn prune_older_than(c: &Connection, before_ms: i64, limit: usize) -> Result<usize> {
    let costs = c
        .prepare_cached(
            "DELETE FROM message_costs WHERE id IN (SELECT id FROM message_costs ORDER BY id LIMIT ?2) \
             AND created_at < ?1",
        )?
        .execute(params![before_ms, limit as i64])?;
    c.prepare_cached("DELETE FROM billable_months WHERE month < ?1")?.execute([month_of(before_ms)])?;
    Ok(costs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan of `sql`, one line per step.
    fn plan(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    /// A report reads the window's sessions through the primary key (the ids' binary search,
    /// then the window's id range), with or without an app: never a scan of `sessions`, nor an
    /// app's whole range of an index.
    #[test]
    fn a_report_reads_sessions_by_id_range_only() {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrations::apply(&mut c).unwrap();
        let app = [7u8; 16];
        let plans = [
            plan(&c, &crate::costs::WINDOW_IDS_SQL.replace('$', "?"), params![1, 2]),
            plan(&c, VERIFIED, params![1, 2, 3, 4, 4]),
            plan(&c, VERIFIED_OF_APP, params![1, 2, 3, 4, 4, app]),
        ];
        for lines in plans {
            let sessions: Vec<&String> = lines.iter().filter(|l| l.contains("sessions")).collect();
            assert!(!sessions.is_empty(), "{lines:#?}");
            // `SEARCH sessions` alone: the first or last id (min/max), one row.
            for line in sessions {
                assert!(
                    line == "SEARCH sessions" || line.starts_with("SEARCH sessions USING INTEGER PRIMARY KEY (rowid>?"),
                    "not a probe or range of ids: {line} in {lines:#?}"
                );
            }
        }
    }
}
