//! Sessions on SQLite, read: a session's record, the dashboard's and the admin API's searches,
//! the funnel, the newest inbox messages, the counts by status, and the facts of a delivery's
//! last look. Nothing here writes.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;
use waotp_core::DeliveryFacts;
use waotp_core::{Msisdn, Status};

use super::rows::{inbox_message, state_from, status_from};
use super::{guards, uuid_from};
use crate::{DeliveryCheck, FunnelRow, InboxMessage, Result, SessionQuery, SessionRecord, Timeline, DAY_MS};

/// The columns [`session_record`] reads, in its order.
const RECORD_COLUMNS: &str = "session_id, app_id, msisdn, challenge, state, status, wrong_attempts, try_count, \
     template_name, lang_code, callback_url, provider_id, error_code, error_text, sealed_code IS NULL, created_at, \
     expires_at, not_requested_at IS NOT NULL, sandbox, sent_at, delivered_at, read_at, failed_at, closed_at";

fn session_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        session_id: uuid_from(r.get(0)?)?,
        app_id: uuid_from(r.get(1)?)?,
        msisdn: Msisdn::from_trusted(r.get(2)?),
        challenge: r.get(3)?,
        state: state_from(r.get(4)?)?,
        status: status_from(r.get(5)?)?,
        wrong_attempts: r.get(6)?,
        try_count: r.get(7)?,
        template_name: r.get(8)?,
        lang_code: r.get(9)?,
        callback_url: r.get(10)?,
        provider_id: r.get(11)?,
        error_code: r.get(12)?,
        error_text: r.get(13)?,
        delivered_to_channel: r.get(14)?,
        created_at_ms: r.get(15)?,
        expires_at_ms: r.get(16)?,
        not_requested: r.get(17)?,
        sandbox: r.get(18)?,
        timeline: Timeline {
            sent_at_ms: r.get(19)?,
            delivered_at_ms: r.get(20)?,
            read_at_ms: r.get(21)?,
            failed_at_ms: r.get(22)?,
            closed_at_ms: r.get(23)?,
        },
    })
}

pub(super) fn get(c: &Connection, app_id: Uuid, session_id: Uuid) -> Result<Option<SessionRecord>> {
    Ok(c.prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM sessions WHERE session_id = ?1 AND app_id = ?2"))?
        .query_row(params![session_id.as_bytes(), app_id.as_bytes()], session_record)
        .optional()?)
}

/// A search's statement, naming only the fields given, so SQLite can use the index that fits
/// (the unique session id, `sessions_by_key`); `?1 IS NULL OR …` terms would make every search a
/// full scan. A msisdn is found through `sessions_by_key`, which leads with (app, sandbox): the
/// search names every app (apps are never deleted) and both sandbox values, so that no index of
/// its own is written on every send for the dashboard's sake.
fn search_sql(q: &SessionQuery) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut terms = Vec::new();
    let mut values = Vec::new();
    let mut term = |column: &str, value: Value| {
        values.push(value);
        terms.push(format!("{column} = ?{}", terms.len() + 1));
    };
    if let Some(id) = q.session_id {
        term("session_id", Value::Blob(id.as_bytes().to_vec()));
    }
    if let Some(id) = q.app_id {
        term("app_id", Value::Blob(id.as_bytes().to_vec()));
    }
    if let Some(m) = &q.msisdn {
        term("msisdn", Value::Text(m.clone()));
    }
    if let Some(ch) = &q.challenge {
        term("challenge", Value::Text(ch.clone()));
    }
    if q.msisdn.is_some() {
        if q.app_id.is_none() {
            terms.push("app_id IN (SELECT app_id FROM apps)".into());
        }
        terms.push("sandbox IN (0, 1)".into());
    }
    let filter = if terms.is_empty() { String::new() } else { format!("WHERE {}", terms.join(" AND ")) };
    values.push(Value::Integer(q.limit as i64));
    let sql = format!("SELECT {RECORD_COLUMNS} FROM sessions {filter} ORDER BY id DESC LIMIT ?{}", values.len());
    (sql, values)
}

pub(super) fn search(c: &Connection, q: &SessionQuery) -> Result<Vec<SessionRecord>> {
    let (sql, values) = search_sql(q);
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), session_record)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn funnel(c: &Connection, since_ms: i64) -> Result<Vec<FunnelRow>> {
    let mut stmt = c.prepare_cached(
        // A stage counts the sessions that reached it or a later one; a verified code was
        // received, whatever receipts came (read receipts can be off).
        "SELECT app_id, created_at / ?2 AS day, count(*), \
         count(coalesce(sent_at, delivered_at, read_at, CASE WHEN status = ?3 THEN 0 END)), \
         count(coalesce(delivered_at, read_at, CASE WHEN status = ?3 THEN 0 END)), \
         count(coalesce(read_at, CASE WHEN status = ?3 THEN 0 END)), count(CASE WHEN status = ?3 THEN 1 END) \
         FROM sessions WHERE sandbox = 0 AND created_at >= ?1 \
         AND NOT EXISTS (SELECT 1 FROM reverse_sessions r WHERE r.session_id = sessions.session_id) \
         GROUP BY app_id, day ORDER BY day, app_id",
    )?;
    let rows = stmt.query_map(params![since_ms, DAY_MS, Status::Verified.code()], |r| {
        Ok(FunnelRow {
            app_id: uuid_from(r.get(0)?)?,
            day: r.get(1)?,
            requested: r.get::<_, i64>(2)? as u64,
            sent: r.get::<_, i64>(3)? as u64,
            delivered: r.get::<_, i64>(4)? as u64,
            read: r.get::<_, i64>(5)? as u64,
            verified: r.get::<_, i64>(6)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn recent_inbox(c: &Connection, limit: usize) -> Result<Vec<InboxMessage>> {
    let mut stmt =
        c.prepare_cached("SELECT app_id, session_id, msisdn, text, created_at FROM inbox ORDER BY id DESC LIMIT ?1")?;
    let rows = stmt.query_map([limit as i64], inbox_message)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn by_status(c: &Connection) -> Result<Vec<(Status, u64)>> {
    let mut stmt = c.prepare_cached("SELECT status, COUNT(*) FROM sessions GROUP BY status ORDER BY status")?;
    let rows = stmt.query_map([], |r| Ok((status_from(r.get(0)?)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn delivery_check(
    c: &Connection,
    app_id: Uuid,
    session_id: Uuid,
    msisdn: &Msisdn,
    now_ms: i64,
) -> Result<DeliveryCheck> {
    let session = c
        .prepare_cached("SELECT state, expires_at FROM sessions WHERE session_id = ?1 AND app_id = ?2")?
        .query_row(params![session_id.as_bytes(), app_id.as_bytes()], |r| {
            Ok((state_from(r.get(0)?)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    let blocked = guards::blocked(c, app_id, msisdn)?;
    Ok(DeliveryCheck::decide(DeliveryFacts { session, blocked }, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for a search: an index for an id or a msisdn, never a full scan.
    #[test]
    fn searches_use_an_index() {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrations::apply(&mut c).unwrap();
        let plan = |q: SessionQuery| {
            let (sql, values) = search_sql(&q);
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get::<_, String>(3)).unwrap();
            rows.collect::<rusqlite::Result<Vec<_>>>().unwrap().join("; ")
        };
        let by_id = plan(SessionQuery { session_id: Some(Uuid::new_v4()), limit: 1, ..SessionQuery::default() });
        assert!(by_id.contains("USING INDEX") && !by_id.contains("SCAN sessions"), "{by_id}");
        let by_msisdn =
            plan(SessionQuery { msisdn: Some("6281234567890".into()), limit: 100, ..SessionQuery::default() });
        assert!(by_msisdn.contains("sessions_by_key (app_id=? AND sandbox=? AND msisdn=?)"), "{by_msisdn}");
        let by_app_and_msisdn = plan(SessionQuery {
            app_id: Some(Uuid::new_v4()),
            msisdn: Some("6281234567890".into()),
            limit: 100,
            ..SessionQuery::default()
        });
        assert!(by_app_and_msisdn.contains("(app_id=? AND sandbox=? AND msisdn=?)"), "{by_app_and_msisdn}");
        let by_app = plan(SessionQuery { app_id: Some(Uuid::new_v4()), limit: 100, ..SessionQuery::default() });
        assert!(by_app.contains("USING INDEX"), "{by_app}");
    }
}
